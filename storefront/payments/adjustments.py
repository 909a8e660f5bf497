"""Refunds and disputes: money going back, and the credits that go back with it.

Refund and dispute rows are keyed by the provider's ids (UNIQUE) and applied to the
ledger once, under the order's row lock. The credits to take back are computed on the
cumulative amount, so partial refunds add up exactly to the full pack, whatever order
they arrive in: after each one, the credits asked back in total are
floor(credits_granted * covered_cents / amount_cents). Only the purchase's own lot is
touched (ledger.clawback); what was already spent is recorded on the order.

Events that arrive before the payment is known (a refund before the completion)
first fulfil the order from the provider's own data, then apply; rows recorded while
the order is not paid yet are applied by fulfilment itself.

A refund that the provider later reports `failed` or `canceled` (final states: the
money stayed with the shop) is undone exactly once, under the same order lock: its
clawback is reversed in the ledger (`refund-failed:<id>`, credits back to the same lot,
expired at once if that lot expired meanwhile), its amount leaves the refunded total,
the status is derived again, and the product's restore hook decides what happens to
what the refund took back (a course enrolment). A refund reported failed before it was
ever counted is recorded as such and never applied.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..db import utcnow
from ..extensions import db
from ..ledger.models import Entry, Lot
from .models import Dispute, Order, Refund, RefundStatus, Status
from .providers import get_provider
from .service import FULFILLERS, fulfil_checkout, lock_order

log = logging.getLogger(__name__)

RESTORE_DISPUTE_WON, RESTORE_REFUND_FAILED = "dispute-won", "refund-failed"
CLOSED_DISPUTE_STATUSES = ("won", "lost", "warning_closed")


def _active_disputes(order: Order) -> list[Dispute]:
    return [d for d in order.disputes if d.applied and not d.restored]


def _covered_cents(order: Order) -> int:
    return min(order.amount_cents, order.refunded_cents + sum(d.amount_cents for d in _active_disputes(order)))


def fully_covered_after(order: Order, amount_cents: int) -> bool:
    """Whether refunds and open disputes, with this one, take back the whole payment
    (for a reclaim hook: the row being applied is not counted yet)."""
    return _covered_cents(order) + amount_cents >= order.amount_cents


def _active_requested(order: Order) -> int:
    return (sum(r.credits_requested for r in order.refunds if r.counts)
            + sum(d.credits_requested for d in _active_disputes(order)))


def _credits_for(order: Order, covered_cents: int) -> int:
    return order.credits_granted * min(covered_cents, order.amount_cents) // order.amount_cents


def _reclaim(order: Order, row, amount_cents: int) -> None:
    """Ask back this row's share of credits; record what was and was not recovered."""
    requested = max(0, _credits_for(order, _covered_cents(order) + amount_cents) - _active_requested(order))
    hook = FULFILLERS[order.product_type].reclaim
    # Called even when no credit is asked back: a course order takes back its enrolment.
    recovered = hook(order, row.reference, amount_cents, requested) if hook else 0
    row.credits_requested, row.credits_recovered, row.applied = requested, recovered, True
    order.credits_recovered += recovered
    order.credits_unrecovered += requested - recovered


def _unreclaim(order: Order, row, restore_reference: str, cause: str) -> None:
    """Undo what `_reclaim` did for this row: its share leaves the order's clawback
    totals, and the product's restore hook gives back what was taken under its reference."""
    order.credits_recovered -= row.credits_recovered
    order.credits_unrecovered -= row.credits_requested - row.credits_recovered
    hook = FULFILLERS[order.product_type].restore
    if hook:
        hook(order, row.reference, restore_reference, cause)


def _derive_status(order: Order) -> str:
    if _active_disputes(order):
        return Status.DISPUTED
    if order.refunded_cents >= order.amount_cents:
        return Status.REFUNDED
    return Status.PARTLY_REFUNDED if order.refunded_cents else Status.PAID


def _refunded_cents(order: Order) -> int:
    return min(order.amount_cents, sum(r.amount_cents for r in order.refunds if r.counts))


def _undo_refund(order: Order, refund: Refund) -> None:
    """A counted refund failed or was cancelled: undo its effect, once (order locked).

    `reversed` is set under the order lock, and the ledger reversal is idempotent on its
    reference (and on the clawback it reverses), so replays and concurrent deliveries
    give the credits back once. Only what was clawed back comes back.
    """
    refund.reversed = True
    order.refunded_cents = _refunded_cents(order)
    _unreclaim(order, refund, refund.reversal_reference, RESTORE_REFUND_FAILED)
    log.info("order %s: refund %s %s, its effect undone", order.id, refund.provider_refund_id, refund.status)


def apply_adjustments(order: Order) -> None:
    """Apply every recorded refund/dispute not applied yet, and undo every applied refund
    that failed since (caller holds the order lock)."""
    if not order.is_settled:
        return
    for refund in order.refunds:
        if refund.applied and refund.is_void and not refund.reversed:
            _undo_refund(order, refund)
    for refund in order.refunds:
        if not refund.applied and not refund.is_void:
            _reclaim(order, refund, refund.amount_cents)
            order.refunded_cents = _refunded_cents(order)
    for dispute in order.disputes:
        if not dispute.applied:
            _reclaim(order, dispute, dispute.amount_cents)
        if dispute.status == "won" and not dispute.restored:
            _unreclaim(order, dispute, dispute.restore_reference, RESTORE_DISPUTE_WON)
            dispute.restored = True
    order.move_to(_derive_status(order))
    db.session.flush()


def _insert_once(row) -> None:
    """Add a row keyed by a provider id; a concurrent twin means it already exists."""
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        pass


def order_for_payment_intent(payment_intent: str | None) -> Order | None:
    """Our order for a payment; fulfils it first when its completion was not seen yet."""
    if not payment_intent:
        return None
    order = db.session.scalar(select(Order).where(Order.payment_intent_id == payment_intent))
    if order is not None:
        return order
    for session in get_provider().list_sessions(payment_intent=payment_intent, limit=5):
        order = fulfil_checkout(session["id"])
        if order is not None and order.payment_intent_id == payment_intent:
            return order
    return None


def _record_refunds(order: Order, refunds: list[dict], admin_id: int | None = None) -> None:
    """Record the provider's refunds on the (locked) order: new rows for refunds not seen
    yet (counted or already void), and the final failed/canceled status of known ones.

    A void status is final at the provider, so it always wins over an older "succeeded"
    or "pending" that a late or replayed event may still carry; once void, a row never
    counts again. Applying is left to `apply_adjustments`.
    """
    rows = {r.provider_refund_id: r for r in order.refunds}
    for refund in refunds:
        status, amount = refund.get("status"), refund.get("amount")
        if status not in RefundStatus.COUNTED + RefundStatus.VOID or not amount:
            continue
        row = rows.get(refund["id"])
        if row is None:
            _insert_once(Refund(order_id=order.id, provider_refund_id=refund["id"], status=status,
                                amount_cents=int(amount), admin_id=admin_id))
        elif not row.is_void and status != row.status:
            row.status = status  # pending -> succeeded changes nothing; -> failed is undone
    db.session.flush()
    db.session.refresh(order, ["refunds"])


def sync_refunds(payment_intent: str | None, admin_id: int | None = None,
                 reported: dict | None = None) -> Order | None:
    """Record every refund the provider lists for this payment, then apply the new ones
    and undo the ones that failed.

    `reported`: the refund object of a signed `refund.*` event; it is trusted only for a
    final failed/canceled status (which cannot be stale), in case the provider's list
    does not show it yet.
    """
    order = order_for_payment_intent(payment_intent)
    if order is None:
        return None
    refunds = get_provider(order.provider).list_refunds(payment_intent)
    if reported and reported.get("status") in RefundStatus.VOID:
        refunds = [r for r in refunds if r.get("id") != reported.get("id")] + [reported]
    order = lock_order(order.id)
    _record_refunds(order, refunds, admin_id)
    apply_adjustments(order)
    return order


def record_dispute(dispute: dict) -> Order | None:
    """A dispute opened, changed or closed; trusted because the event is signed."""
    order = order_for_payment_intent(dispute.get("payment_intent"))
    if order is None:
        return None
    order = lock_order(order.id)
    row = db.session.scalar(select(Dispute).where(Dispute.provider_dispute_id == dispute["id"]))
    if row is None:
        _insert_once(Dispute(order_id=order.id, provider_dispute_id=dispute["id"],
                             amount_cents=int(dispute["amount"]), status=dispute["status"]))
        db.session.refresh(order, ["disputes"])
    elif row.status not in CLOSED_DISPUTE_STATUSES:  # a late "created" must not reopen it
        row.status = dispute["status"]
    apply_adjustments(order)
    return order


# --- admin refunds ----------------------------------------------------------------------

@dataclass(frozen=True)
class RefundQuote:
    """What an admin refund would do, shown before confirming."""

    full_cents: int          # everything not refunded yet
    full_credits: int        # credits a full refund asks back
    unspent_credits: int     # credits of this purchase still in its lot
    unspent_cents: int       # money for exactly those credits (0: nothing unspent)
    already_spent: int       # credits a full refund could not recover


def purchase_lot_remaining(order: Order) -> int:
    lot = db.session.scalar(select(Lot).join(Entry, Lot.entry_id == Entry.id)
                            .where(Entry.reference == order.purchase_reference))
    if lot is None or lot.expired(utcnow()):
        return 0
    return lot.remaining


def quote_refund(order: Order) -> RefundQuote:
    covered = _covered_cents(order)
    full_cents = order.amount_cents - covered
    asked = _active_requested(order)
    full_credits = max(0, order.credits_granted - asked)
    unspent = min(purchase_lot_remaining(order), full_credits)
    unspent_cents = 0
    if unspent and order.credits_granted:
        # Smallest amount whose cumulative share reaches the unspent credits (rounded up,
        # in the learner's favour), never more than what is left to refund.
        needed = -(-order.amount_cents * (asked + unspent) // order.credits_granted) - covered
        unspent_cents = max(1, min(full_cents, needed))
    return RefundQuote(full_cents, full_credits, unspent, unspent_cents, full_credits - unspent)


class RefundRefused(Exception):
    pass


def admin_refund(order: Order, admin, *, amount_cents: int, idempotency_key: str) -> Order:
    """Refund through the provider, claw back the credits, audit; one transaction."""
    if not order.is_settled or not order.payment_intent_id:
        raise RefundRefused("only a paid order can be refunded")
    if not 0 < amount_cents <= order.refundable_cents:
        raise RefundRefused("the amount is more than what is left to refund")
    refund = get_provider(order.provider).create_refund(
        payment_intent=order.payment_intent_id, amount_cents=amount_cents, idempotency_key=idempotency_key)
    order = lock_order(order.id)
    before = (order.credits_recovered, order.credits_unrecovered)
    _record_refunds(order, [refund], admin.id)
    apply_adjustments(order)
    audit.record(admin, "order-refund", target=order, refund_id=refund["id"], amount_cents=amount_cents,
                 currency=order.currency, credits_recovered=order.credits_recovered - before[0],
                 credits_unrecovered=order.credits_unrecovered - before[1])
    return order
