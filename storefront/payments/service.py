"""Checkout and fulfilment: the one path from "the provider says paid" to "goods granted".

`fulfil_checkout(session_id)` (`fulfil_order(order)` when the order is at hand) is
called by the webhook, the success page, the simulated provider and `flask payments
reconcile`. It never trusts its caller: it re-reads the session from the provider and
checks status, amount, currency and buyer against the order, then locks the order row
so that concurrent callers (ten webhook deliveries, the webhook racing the success
page) fulfil once; the ledger's UNIQUE reference "checkout:<session id>" is the last
line of defence.

Products plug in through `register_fulfiller(product_type, fulfil, reclaim=, restore=)`:
packs grant credits here; courses register their own.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app, has_request_context, request, url_for
from itsdangerous import Signer
from sqlalchemy import select

from ..db import utcnow
from ..extensions import db
from ..ledger import service as ledger
from ..ledger.models import Kind
from .models import Order, Status
from .providers import ProviderError, get_provider

log = logging.getLogger(__name__)

MAX_QUANTITY = 50


class PaymentError(Exception):
    """A checkout request refused for a reason the user can be told; nothing changed."""


@dataclass(frozen=True)
class Fulfiller:
    """What a product type does when paid, refunded or disputed.

    fulfil(order): grant what was bought (inside the caller's transaction). It must not
        raise for a business reason once the money is taken (a webhook would retry it
        forever): it records `order.problem` instead, and the order is kept paid for an
        admin to refund (`Order.needs_refund`).
    reclaim(order, reference, amount_cents, credits) -> credits recovered: take back the
        share of a refund/dispute (`credits` is the share of `order.credits_granted`; 0
        for products that grant no credits). Called once for every refund and dispute.
    restore(order, reclaim_reference, reference, cause) -> credits restored: undo what
        `reclaim` did under `reclaim_reference`. `cause` is "dispute-won" (called once for
        every dispute won) or "refund-failed" (called once for every counted refund that
        the provider reports failed or cancelled; the order's refunded amount is already
        recomputed without it).
    """

    fulfil: Callable[[Order], None]
    reclaim: Callable[[Order, str, int, int], int] | None = None
    restore: Callable[[Order, str, str, str], int] | None = None


FULFILLERS: dict[str, Fulfiller] = {}


def register_fulfiller(product_type: str, fulfil, *, reclaim=None, restore=None) -> None:
    FULFILLERS[product_type] = Fulfiller(fulfil, reclaim, restore)


# --- starting a checkout --------------------------------------------------------------

def base_url() -> str:
    configured = current_app.config.get("STOREFRONT_BASE_URL")
    if configured:
        return configured.rstrip("/")
    return request.host_url.rstrip("/") if has_request_context() else "http://127.0.0.1:5000"


def start_checkout(user, product_type: str, *, product_id: int | None, unit_amount_cents: int,
                   currency: str, description: str, quantity: int = 1,
                   details: dict | None = None) -> Order:
    """Create a pending order and its provider checkout session; returns the order
    (redirect the learner to `order.checkout_url`)."""
    if product_type not in FULFILLERS:
        raise PaymentError(f"nothing can fulfil a {product_type!r}")
    if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise PaymentError(f"quantity must be between 1 and {MAX_QUANTITY}")
    if not isinstance(unit_amount_cents, int) or unit_amount_cents <= 0:
        raise PaymentError("the price must be a positive number of cents")
    provider = get_provider()
    order = Order(user_id=user.id, user=user, product_type=product_type, product_id=product_id,
                  description=description[:200], quantity=quantity,
                  unit_amount_cents=unit_amount_cents, amount_cents=unit_amount_cents * quantity,
                  currency=currency.lower(), details=dict(details or {}), provider=provider.name,
                  status=Status.PENDING)
    db.session.add(order)
    db.session.flush()
    base = base_url()
    # Stripe substitutes {CHECKOUT_SESSION_ID}; url_for would escape the braces.
    success_url = base + url_for("checkout.success") + "?session_id={CHECKOUT_SESSION_ID}"
    cancel_url = base + url_for("checkout.cancel", order=order.id, token=cancel_token(order.id))
    session = provider.create_session(order=order, success_url=success_url, cancel_url=cancel_url)
    order.checkout_session_id, order.checkout_url = session["id"], session["url"]
    db.session.flush()
    return order


# --- fulfilment ------------------------------------------------------------------------

def lock_order(order_id: int) -> Order:
    """The order row, locked (FOR UPDATE on PostgreSQL; SQLite writers hold the DB lock)."""
    order = db.session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    db.session.expire(order, ["refunds", "disputes"])  # read them again under the lock
    return order


def order_for_session(session_id: str) -> Order | None:
    if not session_id or len(session_id) > 255:
        return None
    return db.session.scalar(select(Order).where(Order.checkout_session_id == session_id))


def _mismatch(order: Order, session: dict) -> str | None:
    """Why the provider's session does not describe this order (None when it does)."""
    if session.get("amount_total") != order.amount_cents:
        return f"amount {session.get('amount_total')} != {order.amount_cents}"
    if (session.get("currency") or "").lower() != order.currency:
        return f"currency {session.get('currency')} != {order.currency}"
    if session.get("client_reference_id") != str(order.user_id):
        return f"client_reference_id {session.get('client_reference_id')} != {order.user_id}"
    if (session.get("metadata") or {}).get("order_id") != str(order.id):
        return f"metadata order_id {(session.get('metadata') or {}).get('order_id')} != {order.id}"
    return None


def fulfil_checkout(session_id: str) -> Order | None:
    """Grant what the order bought if the provider says it is paid; idempotent.

    Returns the order (in whatever state it is), or None when the session is not one of
    ours. Raises ProviderError when the provider cannot be asked (callers retry).
    """
    order = order_for_session(session_id)
    return fulfil_order(order) if order is not None else None


def fulfil_order(order: Order, session: dict | None = None) -> Order:
    """`fulfil_checkout` for an order already at hand; `session`: the provider's session
    when the caller has just read it from the provider (else it is read here)."""
    if order.is_settled or order.status == Status.EXPIRED:
        return order  # a replay costs no more
    if session is None:
        session = get_provider(order.provider).retrieve_session(order.checkout_session_id)
        if session is None:
            raise ProviderError(f"the provider does not know session {order.checkout_session_id}")
    if session.get("status") != "complete" or session.get("payment_status") != "paid":
        return order  # still being confirmed (or abandoned): nothing to grant, no lock taken
    order = lock_order(order.id)
    if order.is_settled or order.status == Status.EXPIRED:
        return order
    problem = _mismatch(order, session)
    if problem:
        log.error("checkout %s refused for order %s: %s", order.checkout_session_id, order.id, problem)
        order.problem = problem
        if order.status == Status.PENDING:
            order.move_to(Status.FAILED)
        return order
    order.problem = None  # the fulfiller may record one (paid, but could not deliver)
    FULFILLERS[order.product_type].fulfil(order)
    order.payment_intent_id = session.get("payment_intent") or None
    order.paid_at = utcnow()
    order.move_to(Status.PAID)
    db.session.flush()
    from .adjustments import apply_adjustments
    from .mail import queue_receipt

    apply_adjustments(order)  # a refund or dispute that was reported before the payment
    queue_receipt(order)
    return order


def _cancel_signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt="storefront-checkout-cancel")


def cancel_token(order_id: int) -> str:
    """Proof, carried by the cancel URL given to the provider, that the learner came back
    from *this* checkout's cancel link (a cross-site link cannot close their checkout)."""
    return _cancel_signer().get_signature(str(order_id)).decode()


def cancel_checkout(order: Order, token: str) -> Order:
    """The learner cancelled on the checkout page: close the session at the provider so it
    can no longer be paid, and the order with it, unless it was paid meanwhile (then it
    is fulfilled). Without a valid token, or when the provider cannot be reached, the
    order stays pending and the provider's `checkout.session.expired` event closes it."""
    if order.status != Status.PENDING or not order.checkout_session_id:
        return order
    if not _cancel_signer().verify_signature(str(order.id), token or ""):
        return order
    try:
        get_provider(order.provider).expire_session(order.checkout_session_id)
        return close_order(order, expired=True)
    except ProviderError as exc:
        log.warning("order %s: could not close checkout %s on cancel: %s", order.id,
                    order.checkout_session_id, exc)
        return order


def close_checkout(session_id: str, *, expired: bool) -> Order | None:
    """An abandoned (expired) or declined (failed) checkout: confirmed with the provider."""
    order = order_for_session(session_id)
    return close_order(order, expired=expired) if order is not None else None


def close_order(order: Order, *, expired: bool) -> Order:
    """`close_checkout` for an order already at hand."""
    if order.status != Status.PENDING:
        return order
    session = get_provider(order.provider).retrieve_session(order.checkout_session_id)
    if session is None:
        return order
    if session.get("payment_status") == "paid":
        return fulfil_order(order, session)  # paid after all (another tab): no second read
    if expired and session.get("status") != "expired":
        return order
    order = lock_order(order.id)
    if order.status == Status.PENDING:
        order.move_to(Status.EXPIRED if expired else Status.FAILED)
    return order


# --- packs ------------------------------------------------------------------------------

def _fulfil_pack(order: Order) -> None:
    credits = int(order.details["credits"])
    validity = order.details.get("validity_days")
    ledger.grant(order.user_id, credits, reference=order.purchase_reference,
                 actor=ledger.Actor.provider(), kind=Kind.PURCHASE, reason=order.description,
                 expires_at=utcnow() + timedelta(days=int(validity)) if validity else None,
                 paid_cents=order.amount_cents, currency=order.currency)
    order.credits_granted = credits


def _reclaim_pack(order: Order, reference: str, _amount_cents: int, credits: int) -> int:
    if credits <= 0:
        return 0
    entry = ledger.clawback(order.purchase_reference, credits, reference=reference,
                            actor=ledger.Actor.provider(), reason=f"Payment {reference} for order {order.id}")
    return -entry.delta


def _restore_pack(order: Order, reclaim_reference: str, reference: str, cause: str) -> int:
    """Give back exactly what the clawback `reclaim_reference` recovered, to the same lot
    (the ledger expires it at once if that lot expired meanwhile)."""
    clawed = ledger.entry_by_reference(reclaim_reference)
    if clawed is None or clawed.delta == 0:
        return 0
    why = "Refund failed" if cause == "refund-failed" else "Dispute won"
    entries = ledger.reverse(reclaim_reference, reference=reference, actor=ledger.Actor.provider(),
                             reason=f"{why} for order {order.id}")
    return entries[0].delta


register_fulfiller("pack", _fulfil_pack, reclaim=_reclaim_pack, restore=_restore_pack)


def pack_details(pack, quantity: int) -> dict:
    return {"pack_id": pack.id, "credits_per_pack": pack.credits, "credits": pack.credits * quantity,
            "validity_days": pack.validity_days}
