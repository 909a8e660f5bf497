"""Bugs found while hardening the ledger, each pinned by the scenario that showed it."""
from __future__ import annotations

import pytest
import time_machine
from sqlalchemy import select

from storefront.db import write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.ledger.models import Lot

from .conftest import EPOCH, SYSTEM, days, lot_of, movements, remaining


def test_credits_returned_after_their_lot_expiry_was_posted_do_not_block_the_account(
        account, do, invariants):
    """A reversal that read the clock before the expire job took the account lock
    returned credits into a lot whose expiry was already posted as "expiry:lot:<id>".
    The next expiry of that lot reused that reference: a duplicate-key error on every
    later spend and on `flask credits expire`, for good (the account was stuck).

    The race is reproduced by passing the reversal's earlier clock reading as `now`.
    """
    with time_machine.travel(EPOCH, tick=False) as clock:
        do(ledger.grant, account, 10, reference="t:g", expires_at=EPOCH + days(2))
        do(ledger.grant, account, 5, reference="t:keeps")
        do(ledger.spend, account, 4, reference="enrol:1")
        clock.shift(days(3))
        with write_transaction():
            ledger.expire_due()
        assert remaining("t:g") == 0
        do(ledger.reverse, "enrol:1", reference="unenrol:1", now=EPOCH + days(1))
        with write_transaction():
            assert [e.delta for e in ledger.expire_due()] == [-4]
        assert remaining("t:g") == 0
        do(ledger.spend, account, 5, reference="enrol:2")
        assert ledger.balance(account) == 0
    invariants()


def test_a_reversal_waiting_for_the_lock_reads_the_clock_once_it_has_it(
        account, do, monkeypatch, invariants):
    """The moment that decides whether returned credits lapse is taken under the lock."""
    with time_machine.travel(EPOCH, tick=False) as clock:
        do(ledger.grant, account, 10, reference="t:g", expires_at=EPOCH + days(2))
        do(ledger.spend, account, 4, reference="enrol:1")
        clock.shift(days(2) - days(1 / 86400))  # one second before the expiry
        real_lock = ledger._lock

        def slow_lock(account_id):  # the expiry instant passes while waiting for the lock
            clock.shift(days(1 / 86400))
            return real_lock(account_id)

        monkeypatch.setattr(ledger, "_lock", slow_lock)
        entries = do(ledger.reverse, "enrol:1", reference="unenrol:1")
        assert [e.kind for e in entries] == ["spend-reversal", "expiry"]
        assert remaining("t:g") == 6
    invariants()


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite serialises whole transactions
def test_spend_reads_current_lots_even_when_the_session_holds_older_copies(
        app, account, do, invariants):
    """A request that had loaded the learner's lots (say, to show them) and then spent
    planned the spend from those stale copies when another request had spent from the
    same lots in between: the conditional lot UPDATE refused and the spend failed with
    "lot cannot move" although the credits were there.
    """
    do(ledger.grant, account, 5, reference="t:a", expires_at=EPOCH + days(400))
    do(ledger.grant, account, 5, reference="t:b")
    with write_transaction():
        shown = db.session.scalars(select(Lot).order_by(Lot.id)).all()  # kept by the view
        assert [lot.remaining for lot in shown] == [5, 5]
        with app.app_context(), write_transaction():  # another request, another connection
            ledger.spend(account, 3, reference="enrol:other", actor=SYSTEM)
        ledger.spend(account, 4, reference="enrol:mine", actor=SYSTEM)
        assert [lot.remaining for lot in shown] == [0, 3]  # and the copies were refreshed
    assert movements("enrol:mine") == [(lot_of("t:a").id, -2), (lot_of("t:b").id, -2)]
    assert ledger.balance(account) == 3
    invariants()


def test_a_grant_replayed_after_its_expiry_date_returns_the_first_entry(account, do, invariants):
    """Found by the property test: the "expiry must be in the future" check ran before
    the idempotency check, so replaying a grant once its lot had expired raised
    LedgerError instead of answering the first entry (ledger.md, invariant 3)."""
    with time_machine.travel(EPOCH, tick=False) as clock:
        first = do(ledger.grant, account, 5, reference="checkout:1", expires_at=EPOCH + days(1))
        clock.shift(days(2))
        assert do(ledger.grant, account, 5, reference="checkout:1", expires_at=EPOCH + days(1)) == first
        with pytest.raises(ledger.LedgerError, match="future"):  # a new grant still may not
            do(ledger.grant, account, 5, reference="checkout:2", expires_at=EPOCH + days(1))
    invariants()


def test_an_unknown_user_is_a_domain_error_not_a_crash(ctx, do):
    """grant/spend for a user id that does not exist failed with AttributeError
    ('NoneType' object has no attribute 'id') after the foreign-key violation."""
    with pytest.raises(ledger.UnknownReference):
        do(ledger.grant, 424242, 5, reference="t:g")
    with pytest.raises(ledger.UnknownReference):
        do(ledger.spend, 424242, 5, reference="t:s")
    assert ledger.entry_by_reference("t:g") is None
