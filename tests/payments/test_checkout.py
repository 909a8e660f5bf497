"""Buying a pack through Stripe Checkout: the learner's story and the fulfilment rules."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest


def test_packs_page_lists_active_packs_with_price_per_credit(client, make_pack):
    make_pack(credits=10, price_cents=9000, name="Starter pack")
    make_pack(credits=25, price_cents=20000, validity_days=365, name="Programme pack")
    make_pack(credits=5, price_cents=100, name="Retired pack", active=False)
    page = client.get("/packs").get_data(as_text=True)
    assert "Starter pack" in page and "Programme pack" in page
    assert "Retired pack" not in page
    assert "€9.00 per credit" in page and "€8.00 per credit" in page
    assert "Valid 365 days after purchase" in page


def test_buy_sends_learner_to_stripe_checkout_with_the_order_named(shop, make_pack, fake_stripe):
    pack = make_pack(credits=10, price_cents=9000)
    user, client = shop.learner()
    response = client.submit(f"/packs/{pack}/buy", {"quantity": "2"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(fake_stripe.base_url + "/pay/cs_test_")
    session = next(iter(fake_stripe.sessions.values()))
    order = shop.order(session["id"])
    assert (order.status, order.amount_cents, order.quantity, order.user_id) == ("pending", 18000, 2, user.id)
    assert session["amount_total"] == 18000 and session["client_reference_id"] == str(user.id)
    assert session["metadata"]["order_id"] == str(order.id)
    assert session["success_url"].endswith("/checkout/success?session_id={CHECKOUT_SESSION_ID}")
    assert shop.balance(user) == 0


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "51", ""])
def test_bad_quantity_is_refused_with_a_message(shop, make_pack, fake_stripe, quantity):
    pack = make_pack()
    _, client = shop.learner()
    response = client.submit(f"/packs/{pack}/buy", {"quantity": quantity})
    assert response.status_code == 422
    assert "Choose a quantity between 1 and 50" in response.get_data(as_text=True)
    assert fake_stripe.sessions == {}


def test_inactive_pack_and_anonymous_buyer(client, make_pack):
    inactive = make_pack(active=False)
    assert client.submit(f"/packs/{inactive}/buy").status_code == 302  # login first
    assert client.submit("/packs/999/buy").status_code == 302


def test_stripe_unreachable_when_buying_charges_nothing(shop, make_pack, fake_stripe):
    pack = make_pack()
    _, client = shop.learner()
    fake_stripe.fail_next = 10
    response = client.submit(f"/packs/{pack}/buy")
    assert response.status_code == 503
    assert "Nothing was charged" in response.get_data(as_text=True)


def test_completed_paid_session_grants_once_and_sends_one_receipt(shop, make_pack, verify_ledger):
    pack = make_pack(credits=10, price_cents=9000, validity_days=365)
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    event = shop.pay(sid)
    assert shop.balance(user) == 10
    for _ in range(3):  # Stripe redelivers
        assert shop.webhook(event).status_code == 200
    assert shop.balance(user) == 10
    order = shop.order(sid)
    assert (order.status, order.credits_granted, order.payment_intent_id) == ("paid", 10, shop.payment_intent(sid))
    assert len(shop.outbox()) == 1 and "receipt" in shop.outbox()[0]["subject"].lower()
    verify_ledger()


def test_quantity_multiplies_credits(shop, make_pack, verify_ledger):
    pack = make_pack(credits=10, price_cents=9000)
    user, client = shop.learner()
    shop.pay(shop.buy(client, pack, quantity=3))
    assert shop.balance(user) == 30
    verify_ledger()


def test_async_payment_grants_only_when_it_succeeds(shop, make_pack, fake_stripe, verify_ledger):
    pack = make_pack()
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    shop.pay(sid, paid=False)  # completed, payment_status "unpaid" (bank transfer...)
    assert shop.balance(user) == 0 and shop.order(sid).status == "pending"
    fake_stripe.sessions[sid]["payment_status"] = "paid"
    assert shop.webhook(fake_stripe.event("checkout.session.async_payment_succeeded",
                                          fake_stripe.sessions[sid])).status_code == 200
    assert shop.balance(user) == 10 and shop.order(sid).status == "paid"
    verify_ledger()


def test_async_payment_failure_and_expiry_grant_nothing(shop, make_pack, fake_stripe, verify_ledger):
    pack = make_pack()
    user, client = shop.learner()
    failed, expired = shop.buy(client, pack), shop.buy(client, pack)
    shop.pay(failed, paid=False)
    assert shop.webhook(fake_stripe.event("checkout.session.async_payment_failed",
                                          fake_stripe.sessions[failed])).status_code == 200
    fake_stripe.sessions[expired]["status"] = "expired"
    assert shop.webhook(fake_stripe.event("checkout.session.expired",
                                          fake_stripe.sessions[expired])).status_code == 200
    assert (shop.order(failed).status, shop.order(expired).status) == ("failed", "expired")
    assert shop.balance(user) == 0
    page = client.get("/orders").get_data(as_text=True)
    assert "failed" in page and "expired" in page
    verify_ledger()


def test_event_claiming_payment_is_checked_against_stripe(shop, make_pack, fake_stripe, verify_ledger):
    """A signed event is not enough: the session is re-read and must say paid."""
    pack = make_pack()
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    forged = fake_stripe.event("checkout.session.completed", {**fake_stripe.sessions[sid],
                                                               "status": "complete", "payment_status": "paid"})
    assert shop.webhook(forged).status_code == 200
    assert shop.balance(user) == 0 and shop.order(sid).status == "pending"
    verify_ledger()


@pytest.mark.parametrize("field, value", [("amount_total", 100), ("currency", "usd"),
                                          ("client_reference_id", "999")])
def test_session_not_matching_the_order_is_refused(shop, make_pack, fake_stripe, verify_ledger, field, value):
    pack = make_pack()
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    fake_stripe.sessions[sid][field] = value
    shop.pay(sid)
    order = shop.order(sid)
    assert shop.balance(user) == 0
    assert order.status == "failed" and field.split("_")[0] in order.problem
    verify_ledger()


def cancel_path(fake_stripe, sid: str) -> str:
    """The path of the cancel link Stripe shows on its checkout page."""
    url = urlsplit(fake_stripe.sessions[sid]["cancel_url"])
    return f"{url.path}?{url.query}"


def test_cancel_closes_the_checkout_and_returns_to_packs_with_nothing_charged(shop, make_pack, fake_stripe,
                                                                              verify_ledger):
    pack = make_pack()
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    response = client.get(cancel_path(fake_stripe, sid))
    assert response.status_code == 303 and response.headers["Location"].endswith("/packs")
    page = client.get("/packs").get_data(as_text=True)
    assert "Payment cancelled: nothing was charged" in page
    assert fake_stripe.sessions[sid]["status"] == "expired"  # can no longer be paid
    assert shop.order(sid).status == "expired"
    assert ">expired<" in client.get("/orders").get_data(as_text=True)
    # Stripe then sends checkout.session.expired: nothing more happens; coming back
    # through the cancel link again changes nothing either.
    assert shop.webhook(fake_stripe.expired_events[0]).status_code == 200
    assert client.get(cancel_path(fake_stripe, sid)).status_code == 303
    assert shop.order(sid).status == "expired" and shop.balance(user) == 0
    verify_ledger()


def test_cancel_after_paying_in_another_tab_fulfils_and_shows_success(shop, make_pack, fake_stripe, verify_ledger):
    pack = make_pack(credits=10)
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    shop.pay(sid, deliver=False)  # paid; the webhook has not arrived yet
    response = client.get(cancel_path(fake_stripe, sid))
    assert response.status_code == 303 and f"/checkout/success?session_id={sid}" in response.headers["Location"]
    assert "Payment received: 10 credits added" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert shop.order(sid).status == "paid" and shop.balance(user) == 10
    verify_ledger()


@pytest.mark.parametrize("query", ["order=1", "order=1&token=", "order=1&token=forged", "order=1&token=%C3%A9"])
def test_cancel_link_without_its_token_closes_nothing(shop, make_pack, fake_stripe, query):
    """A link from elsewhere (no or a forged token) cannot close the learner's checkout."""
    pack = make_pack()
    _, client = shop.learner()
    sid = shop.buy(client, pack)
    response = client.get(f"/checkout/cancel?{query}")
    assert response.status_code == 303 and response.headers["Location"].endswith("/packs")
    assert fake_stripe.sessions[sid]["status"] == "open"
    assert shop.order(sid).status == "pending"


def test_cancel_link_of_another_learner_closes_nothing(shop, make_pack, fake_stripe):
    pack = make_pack()
    _, owner = shop.learner()
    sid = shop.buy(owner, pack)
    _, other = shop.learner()
    assert other.get(cancel_path(fake_stripe, sid)).status_code == 303
    assert fake_stripe.sessions[sid]["status"] == "open" and shop.order(sid).status == "pending"


def test_cancel_while_stripe_is_unreachable_leaves_the_order_for_the_expired_event(shop, make_pack, fake_stripe,
                                                                                    verify_ledger):
    pack = make_pack()
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    fake_stripe.fail_next = 10
    response = client.get(cancel_path(fake_stripe, sid))
    assert response.status_code == 303 and response.headers["Location"].endswith("/packs")
    assert shop.order(sid).status == "pending"
    fake_stripe.fail_next = 0
    fake_stripe.sessions[sid]["status"] = "expired"  # Stripe expires it after 24 hours
    assert shop.webhook(fake_stripe.event("checkout.session.expired", dict(fake_stripe.sessions[sid]))
                        ).status_code == 200
    assert shop.order(sid).status == "expired" and shop.balance(user) == 0
    verify_ledger()
