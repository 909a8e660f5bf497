"""Learner pages: packs to buy, the checkout return pages, orders and receipts."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import format_currency, gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..catalog.models import Pack
from ..db import writes_on_get
from ..extensions import db
from ..ledger.service import MAX_AMOUNT
from ..web import is_htmx, parse_int, render, trigger
from .models import Order
from .providers import ProviderError
from .service import (MAX_QUANTITY, PaymentError, cancel_checkout, fulfil_order, order_for_session, pack_details,
                      start_checkout)

packs = Blueprint("packs", __name__, url_prefix="/packs")
checkout = Blueprint("checkout", __name__, url_prefix="/checkout")
orders = Blueprint("orders", __name__, url_prefix="/orders")


@packs.app_template_global()
def money(cents: int, currency: str) -> str:
    """Minor units shown in the learner's locale (Decimal: exact, never a float)."""
    return format_currency(Decimal(cents) / 100, currency.upper())


@packs.app_template_filter("isodate")
def isodate(value):
    """A YYYY-MM-DD string kept in an order's details, as a date (None if it is not one)."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def active_packs() -> list[Pack]:
    return db.session.scalars(select(Pack).where(Pack.active).order_by(Pack.position, Pack.credits)).all()


def per_credit(pack: Pack) -> str:
    """Display only: the price of one credit, to the cent (Decimal, no float rounding)."""
    return format_currency((Decimal(pack.price_cents) / 100 / pack.credits).quantize(Decimal("0.01")),
                           pack.currency.upper())


@packs.get("")
def index(error: str | None = None, status: int = 200, chosen: int | None = None):
    return render("payments/packs.html", status=status, packs=active_packs(), per_credit=per_credit,
                  max_quantity=MAX_QUANTITY, error=error, chosen=chosen)


@packs.post("/<int:pack_id>/buy")
@login_required
def buy(pack_id):
    pack = db.session.get(Pack, pack_id)
    if pack is None or not pack.active:
        abort(404)
    quantity = parse_int(request.form.get("quantity", "1"), minimum=1, maximum=MAX_QUANTITY)
    if quantity is None or pack.credits * quantity > MAX_AMOUNT:
        return index(_("Choose a quantity between 1 and %(max)d.", max=MAX_QUANTITY), 422, pack.id)
    try:
        order = start_checkout(current_user, "pack", product_id=pack.id, unit_amount_cents=pack.price_cents,
                               currency=pack.currency, description=pack.name, quantity=quantity,
                               details=pack_details(pack, quantity))
    except (ProviderError, PaymentError):
        return index(_("The payment service cannot be reached right now. Nothing was charged; "
                       "please try again in a moment."), 503, pack.id)
    return redirect(order.checkout_url, code=303)


@checkout.get("/success")
@login_required
@writes_on_get
def success():
    """Where the provider sends the learner back; fulfils too (the webhook may be late).

    While the payment is being confirmed the status block polls this URL (htmx) and
    stops once the order is settled, telling the balance widget to refresh.
    """
    order = order_for_session(request.args.get("session_id", ""))
    if order is None or order.user_id != current_user.id:
        abort(404)  # another learner's session, or none: nothing to show, nothing done
    try:
        order = fulfil_order(order)
    except ProviderError:
        pass  # still "being confirmed": the next poll asks again
    if order.is_settled and is_htmx():
        trigger("credits-changed")  # the webhook may have granted: refresh the widget
    return render("payments/success.html", fragment="payments/_checkout_status.html", order=order)


def own_order(order_id) -> Order | None:
    """The current learner's order with this id (None for anyone else's, or none)."""
    order_id = parse_int(order_id, minimum=1)
    if order_id is None or not current_user.is_authenticated:
        return None
    order = db.session.get(Order, order_id)
    return order if order is not None and order.user_id == current_user.id else None


def back_from_checkout(order: Order | None, message: str, credits_message: str, category: str):
    """Back to where the learner started: the course page for a course, else the packs."""
    flash(credits_message if order is None or order.product_type == "pack" else message, category)
    return redirect((order.return_path if order else None) or url_for("packs.index"), code=303)


@checkout.get("/cancel")
@writes_on_get
def cancel():
    """Back from the provider's cancel link: the checkout is closed there so it can no
    longer be paid, and the order is marked expired; a checkout that was paid meanwhile
    (another tab) is fulfilled instead and the learner sees the success page."""
    order = own_order(request.args.get("order"))
    if order is not None:
        order = cancel_checkout(order, request.args.get("token", ""))
        if order.is_settled and order.checkout_session_id:
            return redirect(url_for("checkout.success", session_id=order.checkout_session_id), code=303)
    return back_from_checkout(order, _("Payment cancelled: nothing was charged."),
                              _("Payment cancelled: nothing was charged and no credits were added."), "info")


@orders.get("", endpoint="index")
@login_required
def list_orders():
    rows = db.session.scalars(select(Order).where(Order.user_id == current_user.id)
                              .order_by(Order.id.desc()).limit(200)).all()
    return render("payments/orders.html", orders=rows)


@orders.get("/<int:order_id>")
@login_required
def receipt(order_id):
    order = own_order(order_id)
    if order is None:
        abort(404)
    return render("payments/receipt.html", order=order)
