"""An admin filters the list, saves the filter, finds it after a reload, grants 20
credits with a reason; the learner's open page shows them without a reload; the audit
log lists the change. Real Chromium against the live server (SQLite)."""
from __future__ import annotations


import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


def log_in(page, base, user):
    page.goto(f"{base}/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("form.form button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def test_admin_grants_credits_and_learner_sees_them(live_server, browser, make_user, shoot, verify_ledger):
    admin = make_user("ada@example.com", name="Ada Admin", admin=True)
    learner = make_user("lea@example.com", name="Léa Learner")
    make_user("noah@example.com", name="Noah Newcomer", credits=3)

    learner_page = browser.new_context().new_page()
    log_in(learner_page, live_server, learner)
    expect(learner_page.get_by_test_id("balance")).to_have_text("0")

    page = browser.new_context().new_page()
    log_in(page, live_server, admin)
    page.goto(f"{live_server}/admin/credits")
    expect(page.get_by_test_id("user-row")).to_have_count(3)
    page.get_by_test_id("filter-q").press_sequentially("lé", delay=50)
    expect(page.get_by_test_id("user-row")).to_have_count(1)  # narrowed live, no submit
    expect(page.get_by_test_id("user-row")).to_contain_text("lea@example.com")
    shoot(page, "admin-credits-filtered.png")

    page.get_by_test_id("save-filter").click()
    expect(page.locator(".flash-success")).to_contain_text("Filter saved")
    page.goto(f"{live_server}/admin/credits")  # a fresh visit without parameters
    expect(page.get_by_test_id("filter-q")).to_have_value("lé")
    expect(page.get_by_test_id("user-row")).to_have_count(1)

    row = page.locator(f"#user-{learner.id}")
    row.get_by_test_id("delta").fill("20")
    row.get_by_test_id("reason").fill("Welcome gift")
    row.get_by_test_id("apply").click()
    expect(page.locator(f"#user-{learner.id}").get_by_test_id("row-balance")).to_have_text("20")
    expect(page.locator(f"#user-{learner.id}").get_by_test_id("row-message")).to_contain_text("now 20")
    shoot(page, "admin-credits-granted.png", "admin-credits.png")

    # the learner's page, opened before the grant, updates by itself (widget poll)
    expect(learner_page.get_by_test_id("balance")).to_have_text("20", timeout=10_000)
    shoot(learner_page, "learner-sees-20.png")

    page.goto(f"{live_server}/admin/audit")
    expect(page.get_by_test_id("audit-table")).to_contain_text("credits-adjusted")
    expect(page.get_by_test_id("audit-table")).to_contain_text("Welcome gift")
    shoot(page, "admin-audit-log.png")
    verify_ledger()
