"""Every /admin route refuses learners (403) and sends anonymous visitors to log in,
every admin POST refuses a missing CSRF token (400), and no admin GET fails (5xx).

The routes are read from the app's url_map, so admin routes added by other areas
(admin_orders under /admin/orders, admin_courses under /admin/courses) are covered
automatically; test_every_admin_blueprint_is_enumerated checks that they are."""
from __future__ import annotations

import tempfile

import pytest

from storefront import create_app


def _admin_routes():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "INSTANCE_PATH": tmp})
        routes = []
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if not rule.rule.startswith("/admin"):
                continue
            args = {name: 1 if "int" in type(conv).__name__.lower() else "x"
                    for name, conv in rule._converters.items()}
            with app.test_request_context():
                from flask import url_for
                url = url_for(rule.endpoint, **args)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append(pytest.param(method, url, rule.endpoint, id=f"{method} {rule.rule}"))
        return routes


ADMIN_ROUTES = _admin_routes()


POST_ROUTES = [r for r in ADMIN_ROUTES if r.values[0] == "POST"]
GET_ROUTES = [r for r in ADMIN_ROUTES if r.values[0] == "GET"]


def test_admin_routes_exist():
    assert len(ADMIN_ROUTES) >= 15


def test_every_admin_blueprint_is_enumerated():
    endpoints = {r.values[2] for r in ADMIN_ROUTES}
    assert {e.partition(".")[0] for e in endpoints} == {"admin", "admin_orders", "admin_courses"}
    for endpoint in ("admin_orders.index", "admin_orders.show", "admin_orders.refund",
                     "admin_courses.index", "admin_courses.new", "admin_courses.edit",
                     "admin_courses.publish", "admin_courses.unpublish",
                     "admin.dashboard", "admin.credits", "admin.user_credits", "admin.adjust", "admin.audit_log"):
        assert endpoint in endpoints


@pytest.mark.parametrize("method,url,endpoint", ADMIN_ROUTES)
def test_learner_is_refused(method, url, endpoint, client, make_user, login):
    login(client, make_user())
    response = client.get(url) if method == "GET" else client.submit(url, {}) if method == "POST" \
        else client.open(url, method=method, headers={"X-CSRFToken": client.csrf_token()})
    assert response.status_code == 403


@pytest.mark.parametrize("method,url,endpoint", ADMIN_ROUTES)
def test_anonymous_goes_to_login(method, url, endpoint, client):
    response = client.get(url) if method == "GET" else client.submit(url, {}) if method == "POST" \
        else client.open(url, method=method, headers={"X-CSRFToken": client.csrf_token()})
    assert response.status_code in (302, 303)
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("method,url,endpoint", POST_ROUTES)
def test_post_without_csrf_token_is_refused(method, url, endpoint, admin_client, audit_actions):
    assert admin_client.post(url, data={}).status_code == 400
    assert audit_actions() == []


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("method,url,endpoint", GET_ROUTES)
def test_admin_get_never_fails(method, url, endpoint, admin_client):
    """Missing ids answer 404, pages 200: never a server error, whichever area built the page."""
    assert admin_client.get(url).status_code in (200, 404)
