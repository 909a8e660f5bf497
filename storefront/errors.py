"""Error pages: every error is a readable page (or fragment for htmx), never a trace."""
from __future__ import annotations

from flask import Flask, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, InternalServerError

from .web import is_htmx


def _page(status: int, title: str, message: str):
    from flask import render_template

    if is_htmx() or request.path.startswith("/credits/widget"):
        return Markup('<p class="error" role="alert">{}: {}</p>').format(title, message), status
    return render_template("errors/error.html", title=title, message=message), status


def _has_nul() -> bool:
    """A NUL character in the path, the query string, a form field or an upload's name."""
    texts = [request.path]
    for fields in (request.args, request.form):
        for key, values in fields.lists():
            texts += [key, *values]
    for key, upload in request.files.items(multi=True):
        texts += [key, upload.filename or ""]
    return any("\x00" in text for text in texts)


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_nul():
        # Never part of an address, an email, a name or a date; and PostgreSQL cannot
        # store or even compare text holding one (a 500 wherever a view queried it).
        if _has_nul():
            return _page(400, _("Bad request"), _("The address or the form contains an invalid character "
                                                  "(a null byte). Nothing was changed."))
        return None

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return _page(400, _("Form expired"), _("The form was too old or incomplete. Reload the page and try again."))

    @app.errorhandler(403)
    def forbidden(exc):
        return _page(403, _("Forbidden"), _("You do not have access to this page."))

    @app.errorhandler(404)
    def not_found(exc):
        return _page(404, _("Not found"), _("This page does not exist."))

    @app.errorhandler(400)
    def bad_request(exc):
        return _page(400, _("Bad request"), _("The request could not be understood."))

    @app.errorhandler(405)
    def method_not_allowed(exc):
        # e.g. GET /auth/logout: logging out is a POST (a link must not log anyone out).
        body, status = _page(405, _("Method not allowed"), _("This address does not accept this kind of request."))
        return body, status, {"Allow": ", ".join(exc.valid_methods or ())}

    @app.errorhandler(429)
    def too_many(exc):
        return _page(429, _("Too many attempts"), _("Too many attempts. Wait a few minutes and try again."))

    @app.errorhandler(InternalServerError)
    def server_error(exc):
        # Kept minimal: whatever broke may also break the layout.
        return ("<!doctype html><title>Error</title><h1>Something went wrong</h1>"
                "<p>Nothing was changed. Please try again in a moment.</p>"), 500

    @app.errorhandler(HTTPException)
    def other_http(exc):
        return _page(exc.code or 500, exc.name, exc.description or "")
