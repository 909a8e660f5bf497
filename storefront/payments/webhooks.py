"""POST /stripe/webhook: signed Stripe events, dispatched through a table on event.type.

The signature is checked on the raw body before anything else (400 and no change when
it does not verify). Known events are handled idempotently on the provider's ids, so a
replay is harmless; a failure while handling answers 5xx so that Stripe retries; any
other event type is acknowledged (200) and ignored.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from ..extensions import csrf
from . import gateway
from .adjustments import record_dispute, sync_refunds
from .providers import ProviderError, SignatureError
from .service import close_checkout, fulfil_checkout

log = logging.getLogger(__name__)

bp = Blueprint("stripe_webhook", __name__)


def _refunds(obj: dict):
    # refund.* and charge.refund.updated carry the refund itself (its status may be a
    # final failed/canceled); charge.refunded carries the charge: the list is re-read.
    return sync_refunds(obj.get("payment_intent"), reported=obj if obj.get("object") == "refund" else None)


HANDLERS = {
    "checkout.session.completed": lambda obj: fulfil_checkout(obj["id"]),
    "checkout.session.async_payment_succeeded": lambda obj: fulfil_checkout(obj["id"]),
    "checkout.session.async_payment_failed": lambda obj: close_checkout(obj["id"], expired=False),
    "checkout.session.expired": lambda obj: close_checkout(obj["id"], expired=True),
    "charge.refunded": _refunds,
    "charge.refund.updated": _refunds,
    "refund.created": _refunds,
    "refund.updated": _refunds,
    "refund.failed": _refunds,
    "charge.dispute.created": record_dispute,
    "charge.dispute.updated": record_dispute,
    "charge.dispute.closed": record_dispute,
    "charge.dispute.funds_withdrawn": record_dispute,
    "charge.dispute.funds_reinstated": record_dispute,
}


@bp.post("/stripe/webhook")
@csrf.exempt
def webhook():
    try:
        event = gateway.verify_event(request.get_data(), request.headers.get("Stripe-Signature"),
                                     current_app.config.get("STRIPE_WEBHOOK_SECRET"))
    except SignatureError as exc:
        log.warning("webhook refused: %s", exc)
        return jsonify(error="invalid signature"), 400
    handler = HANDLERS.get(event.get("type"))
    if handler is None:
        return jsonify(received=True, ignored=True), 200
    try:
        handler(event["data"]["object"])
    except ProviderError:
        log.exception("webhook %s: provider unreachable", event.get("id"))
        return jsonify(error="provider unreachable, retry"), 503
    except Exception:
        log.exception("webhook %s (%s) failed", event.get("id"), event.get("type"))
        return jsonify(error="handling failed, retry"), 500
    return jsonify(received=True), 200
