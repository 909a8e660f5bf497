"""Fixtures for the admin area's tests: a logged-in admin client, a learner, and
helpers to read what the admin sees (the row of a learner, its form's hidden fields)."""
from __future__ import annotations

import re

import pytest

from storefront.db import write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger

HIDDEN = r'name="{name}" value="([^"]*)"'


@pytest.fixture
def admin(make_user):
    return make_user("ada@example.com", name="Ada Admin", admin=True)


@pytest.fixture
def admin_client(app, admin, login):
    client = app.test_client()
    login(client, admin)
    return client


@pytest.fixture
def balance_of(app):
    def read(user_id: int) -> int:
        with app.app_context():
            return ledger.balance(user_id)
    return read


@pytest.fixture
def grant(app):
    """grant(user_id, amount, reference=..., **kw): credits outside any request."""
    def do(user_id, amount, reference, **kwargs):
        with app.app_context(), write_transaction():
            return ledger.grant(user_id, amount, reference=reference, actor=ledger.Actor.system(),
                                reason="test", **kwargs).id
    return do


@pytest.fixture
def audit_actions(app):
    from storefront.audit.models import AuditEvent

    def read():
        with app.app_context():
            return [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    return read


def row_of(html: str, user_id: int) -> str:
    match = re.search(rf'<tr id="user-{user_id}".*?</tr>', html, re.S)
    assert match, f"no row for user {user_id}"
    return match.group(0)


def hidden(html: str, name: str) -> str:
    return re.search(HIDDEN.format(name=name), html).group(1)


def form_fields(client, user_id: int) -> dict:
    """The hidden fields of a learner's adjustment form, as the admin's page renders them."""
    html = client.get(f"/admin/credits/{user_id}").get_data(as_text=True)
    return {"form_id": hidden(html, "form_id"), "expected_balance": hidden(html, "expected_balance")}


@pytest.fixture(autouse=True)
def _fast_hashing(fast_password_hashing):
    """Many users per test: cheap password hashes (the fixture is in tests/conftest.py)."""
