"""A learner buys a pack in a real Chromium on the fake Stripe hosted checkout page; the
payment is confirmed a moment later and the success page and widget update by polling."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect


pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


from .browser_helpers import log_in
from .fake_stripe import WEBHOOK_SECRET


@pytest.fixture
def app_config(fake_stripe):
    return {"STRIPE_SECRET_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.base_url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}

def test_payment_confirmed_later_updates_the_page_and_widget_without_reload(
        page, live_server, fake_stripe, make_user, make_pack, shoot, verify_ledger):
    fake_stripe.webhook_url = f"{live_server}/stripe/webhook"
    fake_stripe.async_payments = True  # the bank confirms a moment after the redirect
    make_pack(credits=10, price_cents=9000, name="Starter pack")
    user = make_user()
    log_in(page, live_server, user)
    page.goto(f"{live_server}/packs")
    page.get_by_role("button", name="Buy").click()
    expect(page.get_by_role("heading", name="Fake Stripe Checkout")).to_be_visible()
    page.get_by_role("button", name=re.compile("Pay")).click()
    expect(page.get_by_test_id("checkout-status")).to_contain_text("being confirmed")
    expect(page.get_by_test_id("balance")).to_have_text("0")
    page.evaluate("window.__same_page = true")  # gone if anything reloads the page
    session = next(iter(fake_stripe.sessions.values()))
    session["payment_status"] = "paid"
    assert fake_stripe.deliver(fake_stripe.event("checkout.session.async_payment_succeeded", dict(session))) == 200
    expect(page.get_by_test_id("checkout-status")).to_contain_text("Payment received: 10 credits added")
    expect(page.get_by_test_id("balance")).to_have_text("10")
    assert page.evaluate("window.__same_page") is True
    shoot(page, "payments-stripe-success.png", "payment-success.png")
    verify_ledger()


def test_cancel_on_the_stripe_page_comes_back_with_nothing_charged(page, live_server, fake_stripe, make_user,
                                                                   make_pack, verify_ledger):
    make_pack(credits=10, price_cents=9000, name="Starter pack")
    log_in(page, live_server, make_user())
    page.goto(f"{live_server}/packs")
    page.get_by_role("button", name="Buy").click()
    expect(page.get_by_role("heading", name="Fake Stripe Checkout")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{live_server}/packs")
    expect(page.get_by_text("Payment cancelled: nothing was charged and no credits were added.")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("0")
    assert next(iter(fake_stripe.sessions.values()))["status"] == "expired"  # cannot be paid any more
    page.goto(f"{live_server}/orders")
    expect(page.get_by_text("expired")).to_be_visible()
    verify_ledger()
