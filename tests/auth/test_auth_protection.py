"""Web security baseline: CSRF, safe redirects, headers, cookie flags, login throttling."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine

ROOT = Path(__file__).resolve().parents[2]


# --- CSRF -----------------------------------------------------------------------------

def test_posts_without_a_csrf_token_are_refused(client, make_user, login, user_count, is_logged_in):
    user = make_user()
    register = {"email": "x@example.com", "display_name": "X", "password": "long-enough-1", "confirm": "long-enough-1"}
    assert client.post("/auth/register", data=register).status_code == 400
    assert user_count() == 1
    response = client.post("/auth/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert not is_logged_in(client)

    login(client, user)
    assert client.post("/auth/logout").status_code == 400
    assert is_logged_in(client)
    assert client.post("/lang", data={"lang": "fr"}).status_code == 400
    assert "My training credits" in client.get("/").get_data(as_text=True)
    # A token that is not this session's is refused as well.
    assert client.post("/lang", data={"lang": "fr", "csrf_token": "forged"}).status_code == 400


def test_the_same_posts_with_the_token_work(client, make_user, user_count, is_logged_in):
    user = make_user()
    assert client.submit("/lang", {"lang": "fr"}).status_code == 303
    assert "Mon compte de crédits pédagogiques" in client.get("/").get_data(as_text=True)
    assert client.submit("/auth/login", {"email": user.email, "password": user.password}).status_code == 303
    assert client.submit("/auth/logout").status_code == 303
    assert client.submit("/auth/register", {"email": "x@example.com", "display_name": "X",
                                            "password": "long-enough-1", "confirm": "long-enough-1"}).status_code == 303
    assert user_count() == 2
    assert is_logged_in(client)


def test_htmx_posts_need_the_csrf_header(client, make_user, login, is_logged_in):
    login(client, make_user())
    refused = client.post("/lang", data={"lang": "fr"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    assert "<html" not in refused.get_data(as_text=True)  # a fragment htmx can swap in
    assert "My training credits" in client.get("/").get_data(as_text=True)

    assert client.htmx("POST", "/lang", data={"lang": "fr"}).status_code == 303
    assert "Mon compte de crédits pédagogiques" in client.get("/").get_data(as_text=True)
    assert client.htmx("POST", "/auth/logout").status_code == 303
    assert not is_logged_in(client)


def test_every_page_carries_the_token_for_forms_and_htmx(client):
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page
    assert f'name="csrf_token" value="{token}"' in page  # the language switcher form


# --- Redirects after login --------------------------------------------------------------

EVIL = ["https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example",
        "/\t/evil.example", " //evil.example", "javascript:alert(1)", "https:/evil.example",
        "http:evil.example"]


@pytest.mark.parametrize("target", EVIL)
def test_login_never_redirects_off_site(client, make_user, target):
    user = make_user()
    response = client.submit("/auth/login", {"email": user.email, "password": user.password},
                             query_string={"next": target})
    assert response.status_code == 303
    assert response.location == "/"


@pytest.mark.parametrize("target", EVIL[:3])
def test_register_and_language_switch_never_redirect_off_site(client, target):
    response = client.submit("/auth/register", {"email": "n@example.com", "display_name": "N",
                                                "password": "long-enough-1", "confirm": "long-enough-1"},
                             query_string={"next": target})
    assert response.location == "/"
    assert client.submit("/lang", {"lang": "fr", "next": target}).location == "/"


def test_next_with_a_newline_is_not_a_server_error(client):
    # Found by this test: the newline used to reach the Location header (a 500).
    response = client.submit("/lang", {"lang": "en", "next": "/credits\r\nSet-Cookie: x=1"})
    assert response.status_code == 303
    assert response.location == "/"


def test_login_honours_a_local_next(client, make_user):
    user = make_user()
    sent_to_login = client.get("/credits")
    assert sent_to_login.status_code == 302
    assert sent_to_login.location == "/auth/login?next=%2Fcredits"
    login_page = client.get(sent_to_login.location).get_data(as_text=True)
    assert 'action="/auth/login?next=/credits"' in login_page  # the form keeps it
    response = client.submit("/auth/login?next=%2Fcredits", {"email": user.email, "password": user.password})
    assert response.location == "/credits"
    assert client.get("/credits").status_code == 200


# --- Headers and cookies ----------------------------------------------------------------

def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in policy.split(";")) if d}


@pytest.mark.parametrize("method, url", [("GET", "/"), ("GET", "/auth/login"), ("GET", "/credits/widget"),
                                         ("GET", "/no-such-page"), ("POST", "/auth/login")])
def test_security_headers_on_every_response(client, method, url):
    response = client.open(url, method=method)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("strict-origin-when-cross-origin", "same-origin", "no-referrer")
    csp = _csp(response)
    assert csp["frame-ancestors"] == ["'none'"]
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts == ["'self'"]
    assert "'unsafe-inline'" not in csp.get("style-src", csp["default-src"])
    assert csp["object-src"] == ["'none'"]


def test_html_pages_vary_on_hx_request(client, make_user, login):
    login(client, make_user())
    for url in ("/", "/credits", "/credits/widget", "/auth/password", "/no-such-page"):
        response = client.get(url)
        assert "HX-Request" in response.vary, url
        assert response.headers["Cache-Control"] == "no-store"


def test_session_cookie_flags_over_http(client, make_user):
    user = make_user()
    response = client.submit("/auth/login", {"email": user.email, "password": user.password})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(app, make_user):
    user = make_user()
    client = app.test_client()
    page = client.get("/auth/login", base_url="https://localhost")
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    # Over HTTPS Flask-WTF also checks that the Referer is this site (browsers send it).
    response = client.post("/auth/login", base_url="https://localhost",
                           headers={"Referer": "https://localhost/auth/login"},
                           data={"email": user.email, "password": user.password, "csrf_token": token})
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]
    forged = client.post("/lang", base_url="https://localhost", headers={"Referer": "https://evil.example/"},
                         data={"lang": "fr", "csrf_token": token})
    assert forged.status_code == 400


def test_templates_have_no_inline_script_or_style(client):
    """The CSP refuses inline code: any that slipped into a template would silently break."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\sstyle=", text) \
                or re.search(r"\son[a-z]+=", text) or "javascript:" in text or "hx-on" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# --- Login throttling ---------------------------------------------------------------------

def _attempt(client, email, password):
    return client.submit("/auth/login", {"email": email, "password": password}).status_code


def test_eleventh_wrong_password_in_a_row_is_throttled(app, make_user):
    victim, bystander = make_user(), make_user()
    attacker = app.test_client()
    for _ in range(10):
        assert _attempt(attacker, victim.email, "wrong-password") == 401
    response = attacker.submit("/auth/login", {"email": victim.email, "password": "wrong-password"})
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    # Even the right password waits: guessing it now gains nothing.
    assert _attempt(app.test_client(), victim.email, victim.password) == 429
    assert _attempt(app.test_client(), victim.email.upper(), victim.password) == 429
    # Other accounts log in normally.
    assert _attempt(app.test_client(), bystander.email, bystander.password) == 303
    # Once the window has passed, the owner gets in.
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=16)):
        assert _attempt(app.test_client(), victim.email, victim.password) == 303


def test_successful_logins_do_not_count(app, make_user):
    user = make_user()
    client = app.test_client()
    for _ in range(12):
        assert _attempt(client, user.email, user.password) == 303


@pytest.mark.parametrize("app_config", [{"LOGIN_FAILURES_PER_ADDRESS": "5 per 15 minutes"}])
def test_one_address_trying_many_accounts_is_throttled(app, make_user):
    users = [make_user() for _ in range(6)]
    client = app.test_client()
    for user in users[:5]:
        assert _attempt(client, user.email, "wrong-password") == 401
    assert _attempt(client, users[5].email, users[5].password) == 429


def test_throttled_htmx_login_gets_a_fragment(app, make_user):
    user = make_user()
    client = app.test_client()
    for _ in range(10):
        _attempt(client, user.email, "nope-nope")
    response = client.htmx("POST", "/auth/login", data={"email": user.email, "password": "nope-nope"})
    assert response.status_code == 429
    assert "<html" not in response.get_data(as_text=True)
