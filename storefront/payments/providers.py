"""Which payment provider is active, and the small interface fulfilment relies on.

Both providers answer with plain dicts shaped like Stripe's objects (id, status,
payment_status, amount_total, currency, client_reference_id, metadata,
payment_intent...), so the service code never sees SDK objects and never imports
`stripe` (only `gateway` does). The simulated provider is chosen only when no Stripe
key is configured, and its pages refuse to work when one is.
"""
from __future__ import annotations

from typing import Protocol

from flask import current_app


class ProviderError(Exception):
    """The provider could not be reached or refused the call: try again later."""


class SignatureError(Exception):
    """A webhook whose signature does not verify (unsigned, tampered, stale, wrong secret)."""


class Provider(Protocol):
    name: str

    def create_session(self, *, order, success_url: str, cancel_url: str) -> dict: ...

    def retrieve_session(self, session_id: str) -> dict | None: ...

    def expire_session(self, session_id: str) -> None: ...

    def list_sessions(self, *, created_after: int | None = None, payment_intent: str | None = None,
                      limit: int = 1000) -> list[dict]: ...

    def list_refunds(self, payment_intent: str) -> list[dict]: ...

    def create_refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str) -> dict: ...


def stripe_configured() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def get_provider(name: str | None = None) -> Provider:
    """The active provider (or the one named by an order, which must be the active one)."""
    if stripe_configured():
        if name not in (None, "stripe"):
            raise ProviderError(f"provider {name!r} is not active while a Stripe key is set")
        from .gateway import StripeProvider

        return StripeProvider.from_config(current_app.config)
    if name not in (None, "simulated"):
        raise ProviderError("Stripe is not configured (STRIPE_SECRET_KEY is unset)")
    from .simulated import SimulatedProvider

    return SimulatedProvider()
