"""Accounts: register, log in, log out, change the password — and what each refuses."""
from __future__ import annotations

import pytest

from storefront.auth.service import find_by_email

GOOD = {"email": "new@example.com", "display_name": "New Learner",
        "password": "long-enough-1", "confirm": "long-enough-1"}


def test_register_creates_the_account_and_logs_in(app, client, user_count, is_logged_in):
    response = client.submit("/auth/register", GOOD)
    assert response.status_code == 303
    assert response.location == "/"
    assert user_count() == 1
    with app.app_context():
        user = find_by_email("new@example.com")
        assert user.display_name == "New Learner"
        assert user.role == "learner"
        assert user.password_hash != GOOD["password"]  # stored hashed
    page = client.get("/").get_data(as_text=True)
    assert "Welcome, New Learner!" in page
    assert 'data-testid="balance">0<' in page
    assert is_logged_in(client)


@pytest.mark.parametrize("change, error", [
    ({"email": "not-an-email"}, "Invalid email address."),
    ({"email": "someone@"}, "Invalid email address."),
    ({"password": "short", "confirm": "short"}, "Use at least 8 characters."),
    ({"confirm": "something-else"}, "The two passwords differ."),
    ({"display_name": ""}, "This field is required."),
])
def test_register_refuses_bad_input_and_creates_nothing(client, user_count, is_logged_in, change, error):
    response = client.submit("/auth/register", {**GOOD, **change})
    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert user_count() == 0
    assert not is_logged_in(client)


@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@Example.com", " taken@example.com "])
def test_register_with_an_existing_email_is_refused(client, make_user, user_count, email):
    make_user("taken@example.com")
    response = client.submit("/auth/register", {**GOOD, "email": email})
    assert response.status_code == 422
    assert "An account with this email already exists." in response.get_data(as_text=True)
    assert user_count() == 1


def test_register_errors_speak_french(client, user_count):
    client.submit("/lang", {"lang": "fr"})
    page = client.submit("/auth/register", {**GOOD, "confirm": "x" * 9}).get_data(as_text=True)
    assert "Les deux mots de passe sont différents." in page
    page = client.submit("/auth/register", {**GOOD, "email": "nope"}).get_data(as_text=True)
    assert "Adresse électronique non valide." in page  # WTForms' own French catalogue
    assert user_count() == 0


def test_login_with_wrong_credentials_gives_one_generic_error(client, make_user, is_logged_in):
    user = make_user()
    wrong_password = client.submit("/auth/login", {"email": user.email, "password": "wrong-password"})
    unknown_email = client.submit("/auth/login", {"email": "nobody@example.com", "password": user.password})
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert "Invalid email or password." in response.get_data(as_text=True)
    # The two answers are the same page: nothing tells which of the two was wrong.
    strip = lambda r: r.get_data(as_text=True).replace(user.email, "").replace("nobody@example.com", "")  # noqa: E731
    assert strip(wrong_password).count("error") == strip(unknown_email).count("error")
    assert not is_logged_in(client)


def test_login_is_case_insensitive_on_the_email(client, make_user, is_logged_in):
    user = make_user("Mixed@Example.com")
    response = client.submit("/auth/login", {"email": "  MIXED@example.COM", "password": user.password})
    assert response.status_code == 303
    assert is_logged_in(client)


def test_logout_is_a_post_only(client, make_user, login, is_logged_in):
    login(client, make_user())
    response = client.get("/auth/logout")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert is_logged_in(client)
    response = client.submit("/auth/logout")
    assert response.status_code == 303
    assert not is_logged_in(client)


def test_cookie_copied_before_logout_is_refused_after_it(app, make_user, login, is_logged_in):
    user = make_user()
    browser, thief = app.test_client(), app.test_client()
    login(browser, user)
    stolen = browser.get_cookie("session").value
    thief.set_cookie("session", stolen)
    assert is_logged_in(thief)  # the copy works while the session lives...

    browser.submit("/auth/logout")
    assert not is_logged_in(browser)
    assert not is_logged_in(thief)  # ...and is worthless once the owner logged out
    login(browser, user)
    assert not is_logged_in(thief)  # logging in again does not revive the old cookie


def test_logging_out_on_one_device_keeps_the_others_logged_in(app, make_user, login, is_logged_in):
    user = make_user()
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user)
    login(phone, user)
    laptop.submit("/auth/logout")
    assert not is_logged_in(laptop)
    assert is_logged_in(phone)


def test_changing_the_password_logs_out_other_sessions(app, make_user, login, is_logged_in):
    user = make_user()
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user)
    login(phone, user)
    response = laptop.submit("/auth/password", {
        "current": user.password, "password": "brand-new-pass", "confirm": "brand-new-pass"})
    assert response.status_code == 303
    assert "other sessions were logged out" in laptop.get("/").get_data(as_text=True)
    assert is_logged_in(laptop)
    assert not is_logged_in(phone)
    assert phone.submit("/auth/login", {"email": user.email, "password": user.password}).status_code == 401
    assert phone.submit("/auth/login", {"email": user.email, "password": "brand-new-pass"}).status_code == 303


def test_password_change_needs_the_current_password(client, make_user, login, is_logged_in):
    user = make_user()
    login(client, user)
    response = client.submit("/auth/password", {
        "current": "not-my-password", "password": "brand-new-pass", "confirm": "brand-new-pass"})
    assert response.status_code == 422
    assert "The current password is wrong." in response.get_data(as_text=True)
    assert is_logged_in(client)
    client.submit("/auth/logout")
    assert client.submit("/auth/login", {"email": user.email, "password": user.password}).status_code == 303


def test_password_page_needs_a_login(client):
    response = client.get("/auth/password")
    assert response.status_code == 302
    assert response.location.startswith("/auth/login?next=")


def test_display_name_with_html_is_shown_escaped(client, login, make_user):
    evil = "<script>alert(1)</script>"
    response = client.submit("/auth/register", {**GOOD, "display_name": evil})
    assert response.status_code == 303
    for url in ("/", "/credits", "/credits/widget", "/auth/password", "/no-such-page"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page, url
    home = client.get("/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in home  # shown in the header, as text


def test_welcome_message_escapes_the_name(client):
    evil = '<img src=x onerror="alert(1)">'
    client.submit("/auth/register", {**GOOD, "display_name": evil})
    page = client.get("/").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "Welcome, &lt;img src=x" in page


def test_language_choice_is_remembered_on_the_account(app, make_user, login):
    user = make_user()
    first = app.test_client()
    login(first, user)
    assert first.submit("/lang", {"lang": "fr", "next": "/credits"}).location == "/credits"
    assert "Crédits disponibles" in first.get("/").get_data(as_text=True)
    other = app.test_client()  # another browser, no language in its session
    login(other, user)
    assert "Crédits disponibles" in other.get("/").get_data(as_text=True)


def test_browser_language_is_used_by_default(client):
    page = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert "Mon compte de crédits pédagogiques" in page
    assert '<html lang="fr">' in page
    assert "My training credits" in client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)


def test_users_create_command(app, runner, client, is_logged_in):
    # Through the test runner, which (unlike `flask`) pushes no app context by itself.
    result = runner.invoke(args=["users", "create", "boss@example.com", "--password", "boss-pass-1",
                                 "--name", "Boss", "--admin"])
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.com" in result.output
    again = runner.invoke(args=["users", "create", "BOSS@example.com", "--password", "boss-pass-1"])
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["users", "create", "x@example.com", "--password", "short"])
    assert short.exit_code != 0 and "8 characters" in short.output
    assert client.submit("/auth/login", {"email": "boss@example.com", "password": "boss-pass-1"}).status_code == 303
    assert "Manage credits (admin)" in client.get("/").get_data(as_text=True)
