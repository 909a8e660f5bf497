"""The foundation in a real browser (Debian's Chromium through pytest-playwright).

A learner registers, logs in, watches the balance block update by itself when credits
arrive from elsewhere (the CLI here, a Stripe webhook in production), and switches to
French — with the strict CSP on, and not one console error.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from storefront.auth.service import find_by_email
from storefront.db import write_transaction
from storefront.ledger import service as ledger

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]

VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture
def console_problems(page):
    """Every console error (CSP violations are reported there) and uncaught exception."""
    problems = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return problems


def balance(page):
    return page.locator("#credit-widget .balance")


def test_register_login_live_balance_and_french(page, live_server, runner, shoot, console_problems):
    page.set_viewport_size(VIEWPORT)
    page.goto(live_server + "/")
    expect(page.locator("#credit-widget")).to_contain_text("Log in to see your credits")

    page.get_by_role("link", name="Register").first.click()
    page.get_by_label("Email").fill("mia@example.com")
    page.get_by_label("Display name").fill("Mia Learner")
    page.get_by_label("Password", exact=True).fill("mia-password-1")
    page.get_by_label("Repeat the password").fill("mia-password-1")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Welcome, Mia Learner!")).to_be_visible()
    expect(balance(page)).to_have_text(re.compile(r"Available credits:\s*0\s*credits"))

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#credit-widget")).to_contain_text("Log in to see your credits")
    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Email").fill("mia@example.com")
    page.get_by_label("Password").fill("mia-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(balance(page)).to_have_text(re.compile(r"Available credits:\s*0\s*credits"))
    expect(page.get_by_text("Manage credits (admin)")).to_have_count(0)

    # Credits arrive out of band; the page is not reloaded (the marker would vanish).
    page.evaluate("window.__sameDocument = true")
    result = runner.invoke(args=["credits", "grant", "mia@example.com", "20", "--reason", "Welcome gift"])
    assert result.exit_code == 0, result.output
    expect(page.get_by_test_id("balance")).to_have_text("20", timeout=10_000)
    expect(balance(page)).to_contain_text("credits")
    assert page.evaluate("window.__sameDocument") is True
    shoot(page, "foundation-home-en.png", full_page=False)

    page.get_by_role("button", name="Français").click()
    expect(balance(page)).to_have_text(re.compile(r"Crédits disponibles :\s*20\s*crédits"))
    expect(page.locator("#credit-widget h2")).to_have_text("Mon compte de crédits pédagogiques")
    expect(page.get_by_role("link", name="Recharger mon compte")).to_be_visible()
    shoot(page, "foundation-home-fr.png", full_page=False)

    page.get_by_role("link", name="Mes crédits").click()
    expect(page.locator("table")).to_contain_text("Crédits attribués par un administrateur — Welcome gift")
    expect(page.locator("table")).to_contain_text("+20")
    assert console_problems == []


@pytest.mark.parametrize("app_config", [{"WIDGET_POLL_SECONDS": 600}])
def test_widget_refreshes_on_the_credits_changed_event(app, page, live_server, make_user, console_problems):
    """With the poll out of the picture, the credits-changed event alone refreshes the block."""
    user = make_user(credits=2)
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("balance")).to_have_text("2")
    with app.app_context(), write_transaction():
        ledger.grant(find_by_email(user.email).id, 5, reference="t:event", actor=ledger.Actor.system(), reason="x")
    page.wait_for_timeout(1500)
    expect(page.get_by_test_id("balance")).to_have_text("2")  # no poll, no event yet
    # What htmx does with an "HX-Trigger: credits-changed" response header.
    page.evaluate("htmx.trigger(document.body, 'credits-changed')")
    expect(page.get_by_test_id("balance")).to_have_text("7")
    assert console_problems == []


def test_readme_screenshots_of_the_demo_shop(page, live_server, runner, shoot, console_problems):
    """The demo data as `make run` shows it: the images the README uses."""
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    page.set_viewport_size(VIEWPORT)
    page.goto(live_server + "/")
    expect(page.locator("#credit-widget")).to_be_visible()
    shoot(page, "home-anonymous.png", "home-anonymous.png", full_page=False)
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill("lea@example.com")
    page.get_by_label("Password").fill("learner-demo-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("balance")).to_have_text("20")
    expect(page.locator("#credit-widget .expiry")).to_contain_text("5 credits expire on")
    shoot(page, "home-learner.png", "home-learner.png", full_page=False)
    page.get_by_role("link", name="My credits").click()
    expect(page.locator("h1")).to_have_text("My credit history")
    shoot(page, "credit-history.png", "credit-history.png", full_page=False)
    assert console_problems == []
