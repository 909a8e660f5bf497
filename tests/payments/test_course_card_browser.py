"""A learner with no credits pays a course by card in a real Chromium (simulated provider)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from .browser_helpers import log_in
from .course_helpers import make_course  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


@pytest.fixture
def app_config():
    return {"STRIPE_SECRET_KEY": None}


def test_learner_without_credits_pays_a_course_by_card(page, live_server, make_user, make_course,
                                                       shoot, verify_ledger):
    make_course("Forklift safety", price=5, price_cents=12000)
    start = date.today() + timedelta(days=20)
    user = make_user()
    log_in(page, live_server, user)
    page.goto(f"{live_server}/courses")
    page.get_by_role("link", name="Forklift safety").click()
    expect(page.get_by_test_id("shortfall")).to_have_text("You need 5 more credits.")
    offer = page.get_by_test_id("card-offer")
    offer.get_by_label("Start date").fill(start.isoformat())
    offer.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("card-price")).to_have_text("€120.00")
    page.get_by_test_id("pay-by-card").click()
    expect(page.get_by_role("heading", name="Test payment — no money moves")).to_be_visible()
    page.get_by_role("button", name="Pay").click()
    status = page.get_by_test_id("checkout-status")
    expect(status).to_contain_text("Payment received: you are enrolled in Forklift safety, starting on")
    expect(page.get_by_test_id("balance")).to_have_text("0")
    shoot(page, "course-card-success.png")
    status.get_by_role("link", name="My courses").click()
    row = page.get_by_test_id("enrolment")
    expect(row).to_contain_text("Forklift safety")
    expect(row).to_contain_text("Card")
    expect(row.get_by_test_id("status")).to_have_text("Upcoming")
    verify_ledger()
