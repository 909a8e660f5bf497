"""Admin: every order, its refunds and disputes, and refunds from the browser.

A refund is two steps: the admin picks "full" or "unspent share" and sees the money and
credits it means; confirming re-computes the figures and refuses (409) if they moved
in between (the learner spent credits meanwhile). The confirmation carries a one-time
id used as the provider's idempotency key, so a double submit refunds once.
"""
from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from ..extensions import db
from ..web import admin_required, parse_int, render
from .adjustments import RefundRefused, admin_refund, quote_refund
from .models import Order, Status
from .providers import ProviderError

bp = Blueprint("admin_orders", __name__, url_prefix="/admin/orders")

PAGE_SIZE = 50
NEEDS_REFUND = "needs-refund"  # a filter beside the statuses


@bp.get("")
@admin_required
def index():
    status = request.args.get("status")
    page = parse_int(request.args.get("page", "1"), minimum=1, maximum=100_000) or 1
    query = select(Order)
    if status in Status.ALL:
        query = query.where(Order.status == status)
    elif status == NEEDS_REFUND:  # Order.needs_refund, in SQL: paid, not delivered, not refunded yet
        query = query.where(Order.status.in_(Status.SETTLED), Order.problem.is_not(None),
                            Order.refunded_cents < Order.amount_cents)
    else:
        status = None
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Order.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    # `status=` would be render's HTTP status (the response's status line was "0 paid").
    return render("payments/admin_orders.html", orders=rows, status_filter=status,
                  statuses=Status.ALL, page=page, more=total > page * PAGE_SIZE)


def _order_or_404(order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None:
        abort(404)
    return order


@bp.get("/<int:order_id>")
@admin_required
def show(order_id, error: str | None = None, status: int = 200):
    order = _order_or_404(order_id)
    quote = quote_refund(order) if order.is_settled else None
    return render("payments/admin_order.html", status=status, order=order, quote=quote, error=error)


def _amount_for(mode: str, quote) -> int | None:
    if mode == "full":
        return quote.full_cents or None
    if mode == "unspent":
        return quote.unspent_cents or None
    return None


@bp.post("/<int:order_id>/refund")
@admin_required
def refund(order_id):
    order = _order_or_404(order_id)
    if not order.is_settled:
        return show(order_id, _("Only a paid order can be refunded."), 409)
    mode = request.form.get("mode")
    quote = quote_refund(order)
    amount = _amount_for(mode, quote)
    confirming = request.form.get("confirm") == "yes"
    if amount is None and not (confirming and mode in ("full", "unspent")):
        return show(order_id, _("Choose what to refund: there is nothing to refund that way."), 422)
    if not confirming:
        return render("payments/admin_refund_confirm.html", order=order, quote=quote, mode=mode,
                      amount=amount, form_id=str(uuid.uuid4()))
    try:
        form_id = str(uuid.UUID(request.form.get("form_id", "")))
    except ValueError:
        return show(order_id, _("The form was incomplete. Please review the refund again."), 422)
    if parse_int(request.form.get("amount_cents")) != amount:
        return show(order_id, _("The figures changed since you reviewed them (credits were spent or "
                                "refunded meanwhile). Please review the refund again."), 409)
    try:
        admin_refund(order, current_user, amount_cents=amount, idempotency_key=f"admin-refund:{form_id}")
    except RefundRefused:
        return show(order_id, _("This refund is not possible any more. Please review the order."), 409)
    except ProviderError:
        return show(order_id, _("The payment service cannot be reached: nothing was refunded. "
                                "Try again in a moment."), 503)
    flash(_("Refund done."), "success")
    return redirect(url_for("admin_orders.show", order_id=order_id), code=303)
