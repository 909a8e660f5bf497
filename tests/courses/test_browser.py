"""The learner's story in a real Chromium, with htmx and with JavaScript disabled."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]

NEXT_MONTH = date.today() + timedelta(days=31)


@pytest.fixture
def shop(make_course, make_pack):
    make_course("First aid at work", slug="first-aid", price=5, capacity=20, duration_days=14,
                summary="Respond to emergencies with confidence.")
    make_course("Public speaking", slug="public-speaking", price=4, summary="Speak clearly to any audience.")
    make_pack("Starter pack", 10, 9000)
    make_pack("Programme pack", 25, 20000)


def log_in(page, base, user):
    page.goto(base + "/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("form.form button[type=submit]")
    page.wait_for_url(base + "/")


def enrol_and_cancel(page, base, shoot, label):
    balance = page.get_by_test_id("balance")
    page.goto(base + "/courses")
    if label == "htmx":
        page.evaluate("window.__noReload = true")  # gone if anything reloads the page
    page.fill("input[name=q]", "first aid")
    page.press("input[name=q]", "Enter")
    expect(page.get_by_test_id("course-card")).to_have_count(1)
    page.get_by_role("link", name="First aid at work").click()
    expect(page.get_by_test_id("balance-line")).to_contain_text("Your balance: 20 credits — after enrolment: 15")
    page.fill("input[name=start_date]", NEXT_MONTH.isoformat())
    page.get_by_test_id("continue").click()
    expect(page.get_by_test_id("cost")).to_have_text("5 credits")
    expect(page.get_by_test_id("after")).to_have_text("15 credits")
    shoot(page, f"courses-{label}-confirm.png", "course-confirm.png" if label == "htmx" else None)
    page.get_by_test_id("enrol-button").click()
    expect(page.get_by_text("Enrolled — starts on")).to_be_visible()
    expect(balance).to_have_text("15")
    shoot(page, f"courses-{label}-enrolled.png")

    page.get_by_role("link", name="My courses").first.click()
    row = page.get_by_test_id("enrolment")
    expect(row.get_by_test_id("status")).to_have_text("Upcoming")
    expect(row).to_contain_text("First aid at work")
    row.get_by_test_id("cancel").click()
    expect(page.get_by_text("Enrolment cancelled: 5 credits returned.")).to_be_visible()
    expect(row.get_by_test_id("status")).to_have_text("Cancelled")
    expect(balance).to_have_text("20")
    shoot(page, f"courses-{label}-cancelled.png")


def test_enrol_and_cancel_with_htmx(page, live_server, shop, make_user, shoot, balance_of, verify_ledger):
    learner = make_user(credits=20)
    log_in(page, live_server, learner)
    enrol_and_cancel(page, live_server, shoot, "htmx")
    # Everything happened in one page load: htmx swapped fragments, the widget refreshed itself.
    assert page.evaluate("window.__noReload") is True
    assert balance_of(learner) == 20
    verify_ledger()


def test_shortfall_shows_the_pack_offer(page, live_server, shop, make_user, shoot):
    log_in(page, live_server, make_user(credits=2))
    page.goto(live_server + "/courses/first-aid")
    expect(page.get_by_test_id("shortfall")).to_have_text("You need 3 more credits.")
    expect(page.get_by_test_id("buy-pack")).to_have_text("Buy Starter pack")
    expect(page.get_by_test_id("continue")).to_have_count(0)
    shoot(page, "courses-shortfall.png")


def test_enrol_and_cancel_without_javascript(browser, live_server, shop, make_user, shoot, balance_of,
                                             verify_ledger):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        learner = make_user(credits=20)
        log_in(page, live_server, learner)
        enrol_and_cancel(page, live_server, shoot, "nojs")
        page.goto(live_server + "/courses/public-speaking")
        assert balance_of(learner) == 20
    finally:
        context.close()
    verify_ledger()
