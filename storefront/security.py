"""Security baseline for every response: headers, cookie flags, session invalidation."""
from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from .extensions import db, login_manager

# htmx is served from /static and configured with allowEval off and without its inline
# indicator styles, so neither scripts nor styles need 'unsafe-inline'.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'")


class SessionInterface(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over HTTPS (or config forces it)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


@login_manager.user_loader
def load_user(session_token: str):
    # The cookie holds a login-session token (auth.models.UserSession), not the user
    # id: a revoked session (logout, password change) no longer loads anyone.
    from .auth.models import User, UserSession

    user = db.session.execute(
        db.select(User).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.token == session_token, UserSession.revoked_at.is_(None))
    ).scalar_one_or_none()
    if user is not None:
        user.current_session_token = session_token
    return user


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.vary.add("HX-Request")
            response.headers.setdefault("Cache-Control", "no-store")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
