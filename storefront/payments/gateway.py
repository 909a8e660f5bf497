"""The thin adapter around the official `stripe` library: the ONLY module that imports it.

Everything the shop asks Stripe goes through `StripeProvider` and comes back as plain
dicts, so that the rules (fulfilment, refunds) are testable and readable without the
SDK, and an SDK upgrade touches one file. `STRIPE_API_BASE` points the client at
another API base (the tests' local fake Stripe server).
"""
from __future__ import annotations

from functools import lru_cache

import stripe

from .providers import ProviderError, SignatureError

WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's default: older signatures are replays


def verify_event(payload: bytes, signature_header: str | None, secret: str | None) -> dict:
    """Check the `Stripe-Signature` header on the raw body; the event as a dict."""
    if not secret or not signature_header:
        raise SignatureError("unsigned event or no webhook secret configured")
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret,
                                               tolerance=WEBHOOK_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise SignatureError(str(exc)) from exc
    return event.to_dict()


class StripeProvider:
    name = "stripe"

    def __init__(self, api_key: str, api_base: str | None = None):
        base = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(api_key, base_addresses=base, max_network_retries=2)

    @classmethod
    def from_config(cls, config) -> "StripeProvider":
        return _provider(config["STRIPE_SECRET_KEY"], config.get("STRIPE_API_BASE"))

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe: {exc.user_message or exc}") from exc

    def create_session(self, *, order, success_url: str, cancel_url: str) -> dict:
        params = {
            "mode": "payment",
            "client_reference_id": str(order.user_id),
            "customer_email": order.user.email,
            "metadata": {"order_id": str(order.id), "product_type": order.product_type},
            "line_items": [{
                "quantity": order.quantity,
                "price_data": {"currency": order.currency, "unit_amount": order.unit_amount_cents,
                               "product_data": {"name": order.description}},
            }],
            "payment_intent_data": {"metadata": {"order_id": str(order.id)}},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        session = self._call(self.client.v1.checkout.sessions.create, params,
                             {"idempotency_key": f"storefront-order-{order.id}"})
        return session.to_dict()

    def retrieve_session(self, session_id: str) -> dict | None:
        try:
            return self.client.v1.checkout.sessions.retrieve(session_id).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise ProviderError(str(exc)) from exc
        except stripe.StripeError as exc:
            raise ProviderError(str(exc)) from exc

    def expire_session(self, session_id: str) -> None:
        """Close an open Checkout Session so it can no longer be paid. Stripe refuses
        (400) a session that is no longer open: the caller re-reads it either way."""
        try:
            self.client.v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status not in (400, 404):
                raise ProviderError(str(exc)) from exc
        except stripe.StripeError as exc:
            raise ProviderError(str(exc)) from exc

    def list_sessions(self, *, created_after: int | None = None, payment_intent: str | None = None,
                      limit: int = 1000) -> list[dict]:
        params: dict = {"limit": 100}
        if created_after is not None:
            params["created"] = {"gte": created_after}
        if payment_intent:
            params["payment_intent"] = payment_intent
        return self._all(self.client.v1.checkout.sessions.list, params, limit)

    def list_refunds(self, payment_intent: str) -> list[dict]:
        return self._all(self.client.v1.refunds.list, {"payment_intent": payment_intent, "limit": 100})

    def _all(self, method, params: dict, limit: int = 1000) -> list[dict]:
        """Every page of a list call (later pages are fetched lazily, hence the try)."""
        items = []
        try:
            for item in method(params).auto_paging_iter():
                items.append(item.to_dict())
                if len(items) >= limit:
                    break
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe: {exc.user_message or exc}") from exc
        return items

    def create_refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str) -> dict:
        refund = self._call(self.client.v1.refunds.create,
                            {"payment_intent": payment_intent, "amount": amount_cents},
                            {"idempotency_key": idempotency_key})
        return refund.to_dict()


@lru_cache(maxsize=8)
def _provider(api_key: str, api_base: str | None) -> StripeProvider:
    """One client per configuration: it keeps its HTTP connections (thread-local) alive."""
    return StripeProvider(api_key, api_base)
