"""Helpers for the ledger tests: an app context, one-line transactions and read-backs.

The tests speak the service's language (grant, spend, reverse...) and check what an
accountant would: the recorded movements, the lots' remaining credits and the three
sums that must agree (balance == sum(entries) == sum(lots)).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from storefront.db import write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.ledger.models import Account, Entry, Lot, Movement

SYSTEM = ledger.Actor.system()
# A fixed "today" for the tests that move time (time-machine), far from any real date.
EPOCH = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Totals:
    balance: int
    entries: int
    lots: int
    entry_count: int
    lot_count: int
    movement_count: int


def totals(user_id: int) -> Totals:
    """Everything a failed operation must leave untouched, read in a fresh transaction."""
    db.session.rollback()
    account_id = db.session.scalar(select(Account.id).where(Account.user_id == user_id))
    balance = db.session.scalar(select(Account.balance).where(Account.id == account_id)) or 0

    def total(column, where):
        return db.session.scalar(select(func.coalesce(func.sum(column), 0)).where(where))

    def count(model, where):
        return db.session.scalar(select(func.count()).select_from(model).where(where))

    entry_ids = select(Entry.id).where(Entry.account_id == account_id)
    return Totals(balance, total(Entry.delta, Entry.account_id == account_id),
                  total(Lot.remaining, Lot.account_id == account_id),
                  count(Entry, Entry.account_id == account_id),
                  count(Lot, Lot.account_id == account_id),
                  count(Movement, Movement.entry_id.in_(entry_ids)))


def movements(entry_or_reference) -> list[tuple[int, int]]:
    """[(lot_id, amount)] that one entry recorded, in order."""
    entry = (ledger.entry_by_reference(entry_or_reference)
             if isinstance(entry_or_reference, str) else entry_or_reference)
    return [(m.lot_id, m.amount) for m in db.session.scalars(
        select(Movement).where(Movement.entry_id == entry.id).order_by(Movement.id))]


def lot_of(reference: str) -> Lot:
    """The lot a crediting entry created."""
    entry = ledger.entry_by_reference(reference)
    return db.session.scalar(select(Lot).where(Lot.entry_id == entry.id)
                             .execution_options(populate_existing=True))


def remaining(reference: str) -> int:
    return lot_of(reference).remaining


def days(n: float) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def ctx(app):
    """The test body runs inside an application context."""
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def account(ctx, make_user):
    """A learner with no credits; returns the user id."""
    return make_user().id


@pytest.fixture
def do():
    """do(ledger.grant, user_id, 5, reference=...) in its own committed transaction."""
    def run(operation, *args, **kwargs):
        kwargs.setdefault("actor", SYSTEM)
        with write_transaction():
            return_value = operation(*args, **kwargs)
            # Read what the caller needs before the commit expires the objects.
            if isinstance(return_value, list):
                return [_snapshot(e) for e in return_value]
            return _snapshot(return_value)

    return run


@dataclass(frozen=True)
class EntryView:
    id: int
    delta: int
    requested: int
    kind: str
    reference: str
    balance_after: int
    reverses_id: int | None


def _snapshot(entry: Entry) -> EntryView:
    return EntryView(entry.id, entry.delta, entry.requested, entry.kind, entry.reference,
                     entry.balance_after, entry.reverses_id)


@pytest.fixture
def invariants(ctx):
    """Check every invariant of ledger.md for the whole database."""
    def check():
        db.session.rollback()
        assert ledger.verify() == []

    return check
