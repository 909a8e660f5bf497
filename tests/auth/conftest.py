"""Helpers for the account and web-security tests (the shared fixtures are in tests/conftest.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storefront.auth.models import User
from storefront.extensions import db


@pytest.fixture
def user_count(app):
    """user_count() -> how many accounts exist (to prove a refused form created nothing)."""

    def count() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(User))

    return count


@pytest.fixture
def is_logged_in():
    """is_logged_in(client) -> whether the server treats this client's cookie as a session."""

    def check(client) -> bool:
        response = client.get("/credits")
        assert response.status_code in (200, 302)
        return response.status_code == 200

    return check
