"""POST /stripe/webhook: signatures, dispatch, retries, concurrency and races."""
from __future__ import annotations

import json
import threading
import time

import pytest

from .fake_stripe import sign


def _paid_session(shop, make_pack, **pack):
    user, client = shop.learner()
    sid = shop.buy(client, make_pack(**pack))
    return user, client, sid


@pytest.mark.parametrize("attack", ["unsigned", "tampered", "wrong-secret", "stale", "garbage"])
def test_bad_signatures_are_refused_and_change_nothing(shop, make_pack, fake_stripe, verify_ledger, attack):
    user, _, sid = _paid_session(shop, make_pack)
    event = fake_stripe.complete(sid, deliver=False)
    payload, headers = fake_stripe.signed(event)
    if attack == "unsigned":
        headers.pop("Stripe-Signature")
    elif attack == "tampered":
        payload = payload.replace('"paid"', '"paid" ', 1)
    elif attack == "wrong-secret":
        headers["Stripe-Signature"] = sign(payload, "whsec_someone_else")
    elif attack == "stale":
        headers["Stripe-Signature"] = sign(payload, timestamp=int(time.time()) - 3600)
    else:
        headers["Stripe-Signature"] = "t=abc,v1=zzz"
    response = shop.hook_client.post("/stripe/webhook", data=payload, headers=headers)
    assert response.status_code == 400
    assert shop.balance(user) == 0 and shop.order(sid).status == "pending"
    verify_ledger()


@pytest.fixture
def no_webhook_secret(app):
    app.config["STRIPE_WEBHOOK_SECRET"] = None


def test_without_a_webhook_secret_every_event_is_refused(shop, make_pack, fake_stripe, no_webhook_secret):
    user, _, sid = _paid_session(shop, make_pack)
    assert shop.webhook(fake_stripe.complete(sid, deliver=False)).status_code == 400
    assert shop.balance(user) == 0


def test_webhook_needs_no_csrf_token_and_ignores_unknown_events(shop, fake_stripe):
    response = shop.webhook(fake_stripe.event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert response.status_code == 200


def test_events_for_sessions_that_are_not_ours_are_acknowledged(shop, fake_stripe):
    foreign = {"id": "cs_test_elsewhere", "object": "checkout.session", "payment_status": "paid"}
    assert shop.webhook(fake_stripe.event("checkout.session.completed", foreign)).status_code == 200


def test_failure_while_handling_answers_5xx_so_stripe_retries(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _paid_session(shop, make_pack)
    event = fake_stripe.complete(sid, deliver=False)
    fake_stripe.fail_next = 10  # Stripe's API is down while we re-read the session
    assert shop.webhook(event).status_code >= 500
    assert shop.balance(user) == 0
    fake_stripe.fail_next = 0
    assert shop.webhook(event).status_code == 200  # the retry
    assert shop.balance(user) == 10
    verify_ledger()


def test_ten_concurrent_deliveries_grant_once(shop, make_pack, fake_stripe, live_server, verify_ledger):
    user, _, sid = _paid_session(shop, make_pack)
    event = fake_stripe.complete(sid, deliver=False)
    url = live_server + "/stripe/webhook"
    barrier, statuses = threading.Barrier(10), []

    def deliver():
        barrier.wait()
        statuses.append(fake_stripe.deliver(event, url))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 10
    assert shop.balance(user) == 10
    assert len(shop.outbox()) == 1
    verify_ledger()


def test_webhook_racing_the_success_page_grants_once(shop, make_pack, fake_stripe, live_server, verify_ledger):
    user, client, sid = _paid_session(shop, make_pack)
    event = fake_stripe.complete(sid, deliver=False)
    barrier, results = threading.Barrier(4), {}

    def webhook(i):
        barrier.wait()
        results[f"hook{i}"] = fake_stripe.deliver(event, live_server + "/stripe/webhook")

    def success_page():
        barrier.wait()
        results["page"] = client.get(f"/checkout/success?session_id={sid}")

    threads = [threading.Thread(target=webhook, args=(i,)) for i in range(3)] + [threading.Thread(target=success_page)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["page"].status_code == 200
    assert "Payment received: 10 credits added" in results["page"].get_data(as_text=True)
    assert [results[f"hook{i}"] for i in range(3)] == [200] * 3
    assert shop.balance(user) == 10
    verify_ledger()


def test_webhook_endpoint_is_json(shop, fake_stripe):
    response = shop.webhook(fake_stripe.event("ping", {"id": "x", "object": "thing"}))
    assert json.loads(response.get_data()) == {"received": True, "ignored": True}
