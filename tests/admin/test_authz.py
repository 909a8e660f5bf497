"""Every /admin route refuses learners (403) and sends anonymous visitors to log in.

The routes are read from the app's url_map, so admin routes added by other areas
are covered automatically."""
from __future__ import annotations

import tempfile

import pytest

from storefront import create_app


def _admin_routes():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "INSTANCE_PATH": tmp})
        routes = []
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/admin"):
                continue
            args = {name: 1 if "int" in type(conv).__name__.lower() else "x"
                    for name, conv in rule._converters.items()}
            with app.test_request_context():
                from flask import url_for
                url = url_for(rule.endpoint, **args)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append(pytest.param(method, url, id=f"{method} {rule.rule}"))
        return routes


ADMIN_ROUTES = _admin_routes()


def test_admin_routes_exist():
    assert len(ADMIN_ROUTES) >= 15


@pytest.mark.parametrize("method,url", ADMIN_ROUTES)
def test_learner_is_refused(method, url, client, make_user, login):
    login(client, make_user())
    response = client.get(url) if method == "GET" else client.submit(url, {}) if method == "POST" \
        else client.open(url, method=method, headers={"X-CSRFToken": client.csrf_token()})
    assert response.status_code == 403


@pytest.mark.parametrize("method,url", ADMIN_ROUTES)
def test_anonymous_goes_to_login(method, url, client):
    response = client.get(url) if method == "GET" else client.submit(url, {}) if method == "POST" \
        else client.open(url, method=method, headers={"X-CSRFToken": client.csrf_token()})
    assert response.status_code in (302, 303)
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("method,url", [r for r in ADMIN_ROUTES if r.values[0] == "POST"][:3])
def test_post_without_csrf_token_is_refused(method, url, admin_client):
    assert admin_client.post(url, data={}).status_code == 400
