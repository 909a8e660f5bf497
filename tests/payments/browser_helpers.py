"""Shared steps of the payments browser tests."""
from playwright.sync_api import expect


def log_in(page, base, user):
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("balance")).to_have_text("0")
