"""A learner buys a pack in a real Chromium with the simulated provider."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect


pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


from .browser_helpers import log_in


@pytest.fixture
def app_config():
    return {"STRIPE_SECRET_KEY": None}

def test_learner_buys_a_pack_on_the_test_payment_page(page, live_server, make_user, make_pack,
                                                      shoot, verify_ledger):
    make_pack(credits=10, price_cents=9000, name="Starter pack")
    user = make_user()
    log_in(page, live_server, user)
    page.goto(f"{live_server}/packs")
    page.get_by_test_id(re.compile("pack-")).get_by_role("button", name="Buy").click()
    expect(page.get_by_role("heading", name="Test payment — no money moves")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("0")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_test_id("checkout-status")).to_contain_text("Payment received: 10 credits added")
    expect(page.get_by_test_id("balance")).to_have_text("10")
    shoot(page, "payments-simulated-success.png")
    verify_ledger()
