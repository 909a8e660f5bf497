"""Payments fixtures: a fake Stripe API server per test and a `shop` helper that buys
packs the way a learner does (through the pages) and delivers signed webhooks."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from storefront.db import write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.payments.models import Order

from .fake_stripe import WEBHOOK_SECRET, FakeStripe


@pytest.fixture
def fake_stripe():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def app_config(fake_stripe):
    return {"STRIPE_SECRET_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.base_url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "MAIL_BACKEND": "memory"}


class Shop:
    """What the tests do as learner, as Stripe and as an observer of the database."""

    def __init__(self, app, fake, make_user, login):
        self.app, self.fake, self.make_user, self.login = app, fake, make_user, login
        self.hook_client = app.test_client()

    def learner(self, **kwargs):
        user = self.make_user(**kwargs)
        client = self.app.test_client()
        self.login(client, user)
        return user, client

    def buy(self, client, pack_id: int, quantity: int = 1) -> str:
        """Buy from /packs; returns the Checkout Session id the learner is sent to."""
        response = client.submit(f"/packs/{pack_id}/buy", {"quantity": str(quantity)})
        assert response.status_code == 303, response.get_data(as_text=True)
        location = response.headers["Location"]
        return location.rstrip("/").rsplit("/", 1)[1] if "/pay/" in location else \
            parse_qs(urlsplit(location).query).get("session_id", [location.rsplit("/", 1)[1]])[0]

    def webhook(self, event: dict, **sign_kwargs):
        payload, headers = self.fake.signed(event, **sign_kwargs)
        return self.hook_client.post("/stripe/webhook", data=payload, headers=headers)

    def pay(self, session_id: str, **kwargs) -> dict:
        """The learner pays on Stripe; the completed event is returned (and delivered
        through the test client unless deliver=False)."""
        deliver = kwargs.pop("deliver", True)
        event = self.fake.complete(session_id, deliver=False, **kwargs)
        if deliver:
            assert self.webhook(event).status_code == 200
        return event

    def payment_intent(self, session_id: str) -> str:
        return self.fake.sessions[session_id]["payment_intent"]

    def balance(self, user) -> int:
        with self.app.app_context():
            return ledger.balance(user.id)

    def order(self, session_id: str) -> Order:
        with self.app.app_context():
            order = db.session.scalar(select(Order).where(Order.checkout_session_id == session_id))
            db.session.expunge_all()
            return order

    def spend(self, user, amount: int, reference: str):
        with self.app.app_context(), write_transaction():
            ledger.spend(user.id, amount, reference=reference, actor=ledger.Actor.system())

    def outbox(self) -> list[dict]:
        return self.app.extensions.get("payments_outbox", [])


@pytest.fixture
def shop(app, fake_stripe, make_user, login):
    return Shop(app, fake_stripe, make_user, login)

