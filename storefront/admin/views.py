"""The credits page: user list with a saved filter, per-row adjustments, one learner's ledger."""
from __future__ import annotations

import uuid
from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..auth.models import User
from ..cli import end_of_day
from ..db import utcnow
from ..audit import service as audit
from ..enrolment import service as enrolment_service
from ..enrolment.models import Enrolment
from ..enrolment.service import admin_cancellable, enrolments_of, today
from ..extensions import db
from ..ledger import service as ledger
from ..ledger.models import Entry, Lot
from ..payments.models import Order
from ..web import admin_required, is_htmx, parse_int, render, safe_next
from . import bp
from .adjust import DELTA, REASON_MAX, SET, AdjustError, Adjustment, adjust as apply_adjustment
from .models import SavedFilter
from .userlist import UserFilter, page_of_users, user_row

HISTORY_PAGE = 50
USER_ORDERS = 100  # newest orders shown on a learner's page (the rest: /admin/orders)


@bp.context_processor
def admin_helpers():
    # Each rendered adjustment form gets its own id: the ledger reference of its submit.
    return {"new_form_id": lambda: str(uuid.uuid4())}


def adjust_message(error: AdjustError) -> str:
    p = error.params
    messages = {
        "stale": lambda: _("Balance changed from %(expected)d to %(actual)d since you loaded this page",
                           expected=p["expected"], actual=p["actual"]),
        "nothing": lambda: _("The balance is already %(balance)d: nothing to change.", balance=p["balance"]),
        "too-large": lambda: _("A change can be at most %(max)d credits.", max=p["max"]),
        "insufficient": lambda: _("Cannot remove %(amount)d credits: the balance is only %(balance)d.",
                                  amount=p["amount"], balance=p["balance"]),
        "conflict": lambda: _("This form was already used for another change. Reload the page."),
        "delta": lambda: _("Enter a whole number of credits to add (like 10) or remove (like -5), "
                           "between -%(max)d and %(max)d, not 0.", max=ledger.MAX_AMOUNT),
        "set": lambda: _("Enter the new balance as a whole number from 0 to %(max)d.", max=ledger.MAX_AMOUNT),
        "one-mode": lambda: _("Fill in either the credits to add or remove, or the new balance (one of them)."),
        "reason": lambda: _("A reason is required (at most %(max)d characters).", max=REASON_MAX),
        "expires": lambda: _("The expiry must be a future date (YYYY-MM-DD)."),
        "expires-removal": lambda: _("An expiry date only applies to credits being added."),
        "form": lambda: _("The form is incomplete. Reload the page and try again."),
    }
    return messages[error.code]()


def parse_expiry(text: str | None):
    """'YYYY-MM-DD' -> end of that day (UTC), None when empty; AdjustError when bad."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        expires_at = end_of_day(date.fromisoformat(text))
    except ValueError:
        raise AdjustError("expires") from None
    if expires_at <= utcnow():
        raise AdjustError("expires")
    return expires_at


def parse_reason(text: str | None) -> str:
    reason = (text or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise AdjustError("reason")
    return reason


def parse_adjustment(form) -> Adjustment:
    delta_text, set_text = (form.get("delta") or "").strip(), (form.get("set") or "").strip()
    if bool(delta_text) == bool(set_text):
        raise AdjustError("one-mode")
    if delta_text:
        mode, amount = DELTA, parse_int(delta_text, minimum=-ledger.MAX_AMOUNT, maximum=ledger.MAX_AMOUNT)
        if not amount:
            raise AdjustError("delta")
    else:
        mode, amount = SET, parse_int(set_text, minimum=0, maximum=ledger.MAX_AMOUNT)
        if amount is None:
            raise AdjustError("set")
    expected = parse_int(form.get("expected_balance"), minimum=0)
    try:
        form_id = str(uuid.UUID(form.get("form_id") or ""))
    except ValueError:
        raise AdjustError("form") from None
    if expected is None:
        raise AdjustError("form")
    reason = parse_reason(form.get("reason"))
    expires_at = parse_expiry(form.get("expires"))
    if expires_at and mode == DELTA and amount < 0:
        raise AdjustError("expires-removal")
    return Adjustment(mode, amount, reason, expected, form_id, expires_at)


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


# --- list ------------------------------------------------------------------------------

def _saved_filter() -> SavedFilter | None:
    return db.session.scalar(select(SavedFilter).where(SavedFilter.admin_id == current_user.id))


@bp.get("/credits")
@admin_required
def credits():
    """Users and balances. Without parameters, the admin's saved filter applies."""
    saved = _saved_filter()
    params = request.args
    if not params and saved is not None:
        params = saved.params
    f = UserFilter.from_params(params)
    page = page_of_users(f)
    return render("admin/credits.html", fragment="admin/_user_table.html",
                  status=422 if f.errors else 200, f=f, page=page, saved=saved)


@bp.post("/credits/filter")
@admin_required
def save_filter():
    f = UserFilter.from_params(request.form)
    if f.errors:
        page = page_of_users(f)
        return render("admin/credits.html", status=422, f=f, page=page, saved=_saved_filter())
    try:
        with db.session.begin_nested():
            saved = _saved_filter()
            if saved is None:
                db.session.add(SavedFilter(admin_id=current_user.id, params=f.saved_params()))
            else:
                saved.params = f.saved_params()
    except IntegrityError:  # saved at the same moment from another tab: update that one
        _saved_filter().params = f.saved_params()
    flash(_("Filter saved: it applies whenever you open this page."), "success")
    return redirect(url_for("admin.credits", **f.saved_params()), code=303)


@bp.post("/credits/filter/clear")
@admin_required
def clear_filter():
    saved = _saved_filter()
    if saved is not None:
        db.session.delete(saved)
    flash(_("Saved filter removed."), "success")
    return redirect(url_for("admin.credits"), code=303)


# --- adjustment ------------------------------------------------------------------------

@bp.post("/credits/<int:user_id>/adjust")
@admin_required
def adjust(user_id: int):
    user = _user_or_404(user_id)
    try:
        outcome = apply_adjustment(current_user, user, parse_adjustment(request.form))
    except (AdjustError, ledger.LedgerError) as exc:
        message = adjust_message(exc) if isinstance(exc, AdjustError) else str(exc)
        return _adjust_answer(user, message, ok=False)
    entry = outcome.entry
    if outcome.replayed:
        message = _("Already applied: the balance of %(name)s is %(balance)d.",
                    name=user.display_name, balance=ledger.balance(user.id))
    else:
        message = _("Balance of %(name)s changed by %(delta)+d: now %(balance)d.",
                    name=user.display_name, delta=entry.delta, balance=entry.balance_after)
    return _adjust_answer(user, message, ok=True)


def _adjust_answer(user: User, message: str, ok: bool):
    """htmx: the row alone (with the message); browsers: redirect back, or the error page."""
    if not ok:
        db.session.rollback()  # nothing of a refused change may be shown or kept
    if is_htmx():
        return render("admin/_user_row.html", status=200 if ok else 422, row=user_row(user.id),
                      message=message, ok=ok, values=request.form if not ok else {})
    if ok:
        flash(message, "success")
        return redirect(safe_next(request.form.get("next"), "admin.credits"), code=303)
    return _user_page(user, status=422, error=message, values=request.form)


# --- one learner -----------------------------------------------------------------------

@bp.get("/credits/<int:user_id>")
@admin_required
def user_credits(user_id: int):
    return _user_page(_user_or_404(user_id))


def _user_page(user: User, status: int = 200, error: str | None = None, values=None):
    account = ledger.account_for(user.id)
    before = parse_int(request.args.get("before"), minimum=1)
    query = (select(Entry).where(Entry.account_id == account.id).options(joinedload(Entry.actor))
             .order_by(Entry.id.desc()).limit(HISTORY_PAGE + 1))
    if before:
        query = query.where(Entry.id < before)
    entries = db.session.scalars(query).all()
    more = len(entries) > HISTORY_PAGE
    entries = entries[:HISTORY_PAGE]
    next_before = entries[-1].id if more else None
    if is_htmx():  # "Older changes": the ledger rows alone
        return render("admin/_user_entries.html", status=status, user=user, entries=entries,
                      next_before=next_before)
    lots = db.session.scalars(select(Lot).where(Lot.account_id == account.id)
                              .order_by(Lot.remaining == 0, Lot.expires_at.is_(None), Lot.expires_at,
                                        Lot.id.desc()).limit(100)).all()
    return render("admin/user_credits.html", status=status, user=user, account=account,
                  row=user_row(user.id), entries=entries, lots=lots, now=utcnow(),
                  next_before=next_before, error=error, values=values or {}, **_user_extras(user.id))


@bp.post("/credits/<int:user_id>/enrolments/<int:enrolment_id>/cancel")
@admin_required
def cancel_enrolment(user_id: int, enrolment_id: int):
    """Cancel a learner's credit-paid enrolment (upcoming or running), with a reason: the
    seat is freed and the credits go back to the learner, once."""
    user = _user_or_404(user_id)
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.id == enrolment_id,
                                                          Enrolment.user_id == user.id))
    if enrolment is None:
        abort(404)
    try:
        reason = parse_reason(request.form.get("reason"))
    except AdjustError as exc:
        return _user_page(user, status=422, error=adjust_message(exc))
    if enrolment.cancelled_at is None:
        try:
            entries = enrolment_service.cancel(enrolment, current_user, reason=reason, by_admin=True)
        except enrolment_service.NotCancellable:
            db.session.rollback()
            enrolment = db.session.get(Enrolment, enrolment_id, populate_existing=True)
            if enrolment.cancelled_at is None:
                return _user_page(user, status=409, error=_(
                    "Only an enrolment paid with credits that has not ended can be cancelled here; "
                    "a card payment is undone by refunding its order."))
        else:
            returned = entries[0].delta
            audit.record(current_user, "enrolment-cancelled", target=user, enrolment_id=enrolment.id,
                         course=enrolment.course.title, start_date=enrolment.start_date.isoformat(),
                         credits_returned=returned, reason=reason)
            flash(ngettext("Enrolment in %(course)s cancelled: %(num)d credit returned.",
                           "Enrolment in %(course)s cancelled: %(num)d credits returned.", returned,
                           course=enrolment.course.title), "success")
            return redirect(url_for("admin.user_credits", user_id=user.id), code=303)
    flash(_("This enrolment is already cancelled."), "info")  # a double submit, or another admin
    return redirect(url_for("admin.user_credits", user_id=user.id), code=303)


def _user_extras(user_id: int) -> dict:
    """The learner's enrolments (each with its course: one joined query) and newest
    orders (one query; the template reads only the order's own columns)."""
    orders = db.session.scalars(select(Order).where(Order.user_id == user_id)
                                .order_by(Order.id.desc()).limit(USER_ORDERS + 1)).all()
    return {"enrolments": enrolments_of(user_id), "today": today(), "admin_cancellable": admin_cancellable,
            "orders": orders[:USER_ORDERS], "more_orders": len(orders) > USER_ORDERS}
