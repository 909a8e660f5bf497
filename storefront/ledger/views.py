"""The learner's side of the ledger: the balance widget and the credit history."""
from __future__ import annotations

from flask import Blueprint, current_app, g, has_request_context, request
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..web import add_triggers, parse_int, render, trigger
from . import service
from .models import Account, Entry
from .signals import credits_changed

bp = Blueprint("credits", __name__, url_prefix="/credits")

PAGE_SIZE = 50


@credits_changed.connect
def _on_credits_changed(_user_id, **_):
    # Whatever view changed credits, its response tells htmx to refresh the widgets.
    if has_request_context():
        trigger("credits-changed")


@bp.app_context_processor
def widget_context():
    def credit_summary():
        if not current_user.is_authenticated:
            return None
        if "credit_summary" not in g:
            g.credit_summary = service.summary(current_user.id)
        return g.credit_summary

    return {"credit_summary": credit_summary,
            "widget_poll_seconds": current_app.config["WIDGET_POLL_SECONDS"]}


@bp.record_once
def _register(state):
    state.app.after_request(add_triggers)


@bp.get("/widget")
def widget():
    """The "My training credits" block alone: what htmx swaps in on every refresh."""
    return render("credits/_widget.html")


@bp.get("")
@login_required
def history():
    before = parse_int(request.args.get("before"), minimum=1)
    account_id = db.session.scalar(select(Account.id).where(Account.user_id == current_user.id))
    query = (select(Entry).where(Entry.account_id == account_id)
             .order_by(Entry.id.desc()).limit(PAGE_SIZE + 1))
    if before:
        query = query.where(Entry.id < before)
    entries = db.session.scalars(query).all() if account_id else []
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return render("credits/history.html", fragment="credits/_history_rows.html",
                  entries=entries, next_before=entries[-1].id if more else None)
