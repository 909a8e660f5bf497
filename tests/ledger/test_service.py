"""Unit tests of the ledger service (ledger.md): every operation, on SQLite and PostgreSQL.

Time is moved with time-machine (tick=False), never with sleeps.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from storefront.db import utcnow, write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.ledger.models import Entry, Kind, Lot

from .conftest import EPOCH, SYSTEM, days, lot_of, movements, remaining, totals


TICK = timedelta(microseconds=1)  # the smallest step of a timestamp


@pytest.fixture
def clock():
    with time_machine.travel(EPOCH, tick=False) as traveller:
        yield traveller


# --- grant -----------------------------------------------------------------------------

def test_grant_creates_an_entry_and_a_lot(account, do, invariants):
    entry = do(ledger.grant, account, 7, reference="t:g1", reason="welcome",
               kind=Kind.PURCHASE, paid_cents=700, currency="EUR")
    assert (entry.delta, entry.requested, entry.kind, entry.balance_after) == (7, 7, "purchase", 7)
    lot = lot_of("t:g1")
    assert (lot.original, lot.remaining, lot.expires_at, lot.paid_cents) == (7, 7, None, 700)
    assert movements("t:g1") == [(lot.id, 7)]
    assert ledger.balance(account) == 7
    invariants()


def test_grant_refuses_what_does_not_create_credits(account, do):
    with pytest.raises(ledger.LedgerError):
        do(ledger.grant, account, 5, reference="t:g", kind=Kind.SPEND)
    with pytest.raises(ledger.LedgerError, match="future"):
        do(ledger.grant, account, 5, reference="t:g", expires_at=utcnow() - days(1))
    with pytest.raises(ledger.LedgerError, match="reason"):
        do(ledger.grant, account, 5, reference="t:g", actor=ledger.Actor("admin", None), reason=" ")
    with pytest.raises(ledger.LedgerError, match="reference"):
        do(ledger.grant, account, 5, reference="")
    with pytest.raises(ledger.LedgerError, match="reference"):
        do(ledger.grant, account, 5, reference="x" * 201)
    assert totals(account).entry_count == 0


@pytest.mark.parametrize("amount", [0, -1, -5, True, False, 1.0, 2.5, "3", None,
                                    ledger.MAX_AMOUNT + 1, 10**30])
def test_bad_amounts_are_refused_everywhere(account, do, amount):
    do(ledger.grant, account, 10, reference="t:purchase")
    before = totals(account)
    for operation, args in ((ledger.grant, (account, amount)), (ledger.spend, (account, amount)),
                            (ledger.clawback, ("t:purchase", amount))):
        with pytest.raises(ledger.InvalidAmount):
            do(operation, *args, reference="t:bad")
    with pytest.raises(ledger.InvalidAmount):
        do(ledger.debit, account, amount, reference="t:bad", reason="oops")
    assert totals(account) == before
    assert ledger.entry_by_reference("t:bad") is None


def test_max_amount_is_accepted(account, do, invariants):
    do(ledger.grant, account, ledger.MAX_AMOUNT, reference="t:max")
    do(ledger.spend, account, ledger.MAX_AMOUNT, reference="t:spend-max")
    assert ledger.balance(account) == 0
    invariants()


# --- spend and consumption order --------------------------------------------------------

def test_spend_takes_soonest_expiring_first_never_expiring_last_oldest_first_on_ties(
        account, do, clock, invariants):
    do(ledger.grant, account, 5, reference="t:late", expires_at=EPOCH + days(10))
    do(ledger.grant, account, 5, reference="t:soon-old", expires_at=EPOCH + days(3))
    do(ledger.grant, account, 5, reference="t:never-old")
    do(ledger.grant, account, 5, reference="t:never-new")
    do(ledger.grant, account, 5, reference="t:soon-new", expires_at=EPOCH + days(3))
    lot = {ref: lot_of(f"t:{ref}").id for ref in ("late", "soon-old", "never-old", "never-new", "soon-new")}

    first = do(ledger.spend, account, 12, reference="t:s1")
    assert (first.delta, first.balance_after) == (-12, 13)
    assert movements("t:s1") == [(lot["soon-old"], -5), (lot["soon-new"], -5), (lot["late"], -2)]
    do(ledger.spend, account, 6, reference="t:s2")
    assert movements("t:s2") == [(lot["late"], -3), (lot["never-old"], -3)]
    do(ledger.spend, account, 7, reference="t:s3")
    assert movements("t:s3") == [(lot["never-old"], -2), (lot["never-new"], -5)]
    assert ledger.balance(account) == 0
    invariants()


def test_spend_more_than_the_balance_changes_nothing(account, do, invariants):
    do(ledger.grant, account, 5, reference="t:g")
    before = totals(account)
    with pytest.raises(ledger.InsufficientCredits) as info:
        do(ledger.spend, account, 8, reference="t:too-much")
    assert (info.value.needed, info.value.available, info.value.shortfall) == (8, 5, 3)
    assert totals(account) == before
    assert ledger.entry_by_reference("t:too-much") is None
    # The reference was not burnt: it can be used once the credits are there.
    do(ledger.grant, account, 3, reference="t:g2")
    assert do(ledger.spend, account, 8, reference="t:too-much").balance_after == 0
    invariants()


def test_spend_on_an_account_never_credited(account, do):
    with pytest.raises(ledger.InsufficientCredits):
        do(ledger.spend, account, 1, reference="t:s")
    assert ledger.balance(account) == 0


def test_debit_is_an_admin_removal_with_a_reason(account, do, invariants):
    do(ledger.grant, account, 5, reference="t:g")
    with pytest.raises(ledger.LedgerError, match="reason"):
        do(ledger.debit, account, 2, reference="t:d", reason="")
    entry = do(ledger.debit, account, 2, reference="t:d", reason="duplicate grant")
    assert (entry.kind, entry.delta, entry.balance_after) == ("admin-debit", -2, 3)
    with pytest.raises(ledger.InsufficientCredits):
        do(ledger.debit, account, 4, reference="t:d2", reason="too much")
    invariants()


# --- expiry ----------------------------------------------------------------------------

def test_spend_posts_due_expiries_first(account, do, clock, invariants):
    do(ledger.grant, account, 4, reference="t:expiring", expires_at=EPOCH + days(1))
    do(ledger.grant, account, 3, reference="t:keeps")
    clock.shift(days(2))
    with pytest.raises(ledger.InsufficientCredits) as info:
        do(ledger.spend, account, 5, reference="t:s")
    assert info.value.available == 3
    # The refused spend rolled its lazy expiry back too; the job or the next spend posts it.
    assert ledger.balance(account) == 7
    assert ledger.summary(account).available == 3
    do(ledger.spend, account, 2, reference="t:s2")
    expiry = ledger.entry_by_reference(f"expiry:lot:{lot_of('t:expiring').id}")
    assert (expiry.kind, expiry.delta, expiry.balance_after) == ("expiry", -4, 3)
    assert movements("t:s2") == [(lot_of("t:keeps").id, -2)]
    assert expiry.id < ledger.entry_by_reference("t:s2").id
    assert ledger.balance(account) == 1
    invariants()


def test_credits_can_be_spent_until_the_expiry_instant(account, do, clock, invariants):
    do(ledger.grant, account, 4, reference="t:g", expires_at=EPOCH + days(1))
    clock.shift(days(1) - TICK)
    do(ledger.spend, account, 4, reference="t:s")
    assert ledger.balance(account) == 0
    invariants()


def test_expire_due_job_posts_each_expiry_once(account, do, make_user, clock, invariants):
    other = make_user().id
    do(ledger.grant, account, 4, reference="t:a", expires_at=EPOCH + days(1))
    do(ledger.grant, account, 6, reference="t:b", expires_at=EPOCH + days(5))
    do(ledger.grant, other, 2, reference="t:c", expires_at=EPOCH + days(1))
    do(ledger.spend, account, 1, reference="t:s")
    with write_transaction():
        assert ledger.expire_due() == []
    clock.shift(days(2))
    with write_transaction():
        posted = sorted((e.account.user_id, e.delta) for e in ledger.expire_due())
    assert posted == sorted([(account, -3), (other, -2)])
    with write_transaction():
        assert ledger.expire_due() == []
    assert (ledger.balance(account), ledger.balance(other)) == (6, 0)
    assert (remaining("t:a"), remaining("t:b"), remaining("t:c")) == (0, 6, 0)
    clock.shift(days(10))
    with write_transaction():
        assert [e.delta for e in ledger.expire_due()] == [-6]
    assert ledger.balance(account) == 0
    invariants()


def test_summary_shows_next_expiry_and_hides_due_credits(account, do, clock):
    do(ledger.grant, account, 2, reference="t:a", expires_at=EPOCH + days(1))
    do(ledger.grant, account, 3, reference="t:b", expires_at=EPOCH + days(4))
    do(ledger.grant, account, 1, reference="t:c", expires_at=EPOCH + days(4) + TICK)
    do(ledger.grant, account, 5, reference="t:d")
    s = ledger.summary(account)
    assert (s.balance, s.available, s.next_expiry_amount, s.next_expiry_at) == (11, 11, 2, EPOCH + days(1))
    clock.shift(days(2))
    s = ledger.summary(account)
    assert (s.balance, s.available, s.next_expiry_amount, s.next_expiry_at) == (11, 9, 4, EPOCH + days(4))


# --- reverse ---------------------------------------------------------------------------

def test_reverse_returns_credits_to_the_lots_they_came_from(account, do, clock, invariants):
    do(ledger.grant, account, 3, reference="t:a", expires_at=EPOCH + days(5))
    do(ledger.grant, account, 4, reference="t:b")
    do(ledger.spend, account, 5, reference="enrol:1")
    do(ledger.spend, account, 1, reference="enrol:2")
    [entry] = do(ledger.reverse, "enrol:1", reference="unenrol:1")
    assert (entry.kind, entry.delta, entry.balance_after) == ("spend-reversal", 5, 6)
    assert entry.reverses_id == ledger.entry_by_reference("enrol:1").id
    assert movements("unenrol:1") == [(lot_of("t:a").id, 3), (lot_of("t:b").id, 2)]
    assert (remaining("t:a"), remaining("t:b")) == (3, 3)
    invariants()


def test_reverse_into_an_expired_lot_returns_and_expires_at_once(account, do, clock, invariants):
    do(ledger.grant, account, 3, reference="t:short", expires_at=EPOCH + days(2))
    do(ledger.grant, account, 4, reference="t:long", expires_at=EPOCH + days(30))
    do(ledger.spend, account, 5, reference="enrol:1")
    clock.shift(days(3))
    reversal, expiry = do(ledger.reverse, "enrol:1", reference="unenrol:1")
    assert (reversal.delta, expiry.kind, expiry.delta) == (5, "expiry", -3)
    assert expiry.reference == "expiry:unenrol:1"
    assert movements(expiry.reference) == [(lot_of("t:short").id, -3)]
    # The cancellation did not extend the short lot's validity.
    assert (remaining("t:short"), remaining("t:long")) == (0, 4)
    assert ledger.balance(account) == 4 == ledger.summary(account).available
    # The replay answers the same two entries and changes nothing.
    before = totals(account)
    assert do(ledger.reverse, "enrol:1", reference="unenrol:1") == [reversal, expiry]
    assert totals(account) == before
    invariants()


def test_reverse_refusals(account, do, invariants):
    do(ledger.grant, account, 5, reference="t:g")
    do(ledger.spend, account, 2, reference="enrol:1")
    do(ledger.spend, account, 1, reference="enrol:2")
    with pytest.raises(ledger.UnknownReference):
        do(ledger.reverse, "enrol:404", reference="unenrol:404")
    with pytest.raises(ledger.LedgerError):
        do(ledger.reverse, "t:g", reference="unenrol:g")  # a grant is not reversible
    do(ledger.reverse, "enrol:1", reference="unenrol:1")
    before = totals(account)
    with pytest.raises(ledger.AlreadyReversed):
        do(ledger.reverse, "enrol:1", reference="unenrol:1-again")
    with pytest.raises(ledger.IdempotencyConflict):  # that reference undid another entry
        do(ledger.reverse, "enrol:2", reference="unenrol:1")
    with pytest.raises(ledger.LedgerError):
        do(ledger.reverse, "unenrol:1", reference="unenrol:unenrol")  # no reversal of a reversal
    assert totals(account) == before
    invariants()


# --- clawback --------------------------------------------------------------------------

def test_clawback_takes_only_from_that_purchase_and_never_more_than_asked(account, do, invariants):
    do(ledger.grant, account, 10, reference="checkout:a", kind=Kind.PURCHASE)
    do(ledger.grant, account, 10, reference="checkout:b", kind=Kind.PURCHASE)
    do(ledger.spend, account, 7, reference="enrol:1")  # from a (older, both never expire)
    entry = do(ledger.clawback, "checkout:b", 4, reference="refund:1")
    assert (entry.kind, entry.delta, entry.requested, entry.balance_after) == ("clawback", -4, 4, 9)
    assert movements("refund:1") == [(lot_of("checkout:b").id, -4)]
    assert (remaining("checkout:a"), remaining("checkout:b")) == (3, 6)
    # Purchase a: 7 of 10 already spent; a full refund recovers the 3 left, 7 unrecovered.
    entry = do(ledger.clawback, "checkout:a", 10, reference="refund:2")
    recovered, unrecovered = -entry.delta, entry.requested + entry.delta
    assert (recovered, unrecovered) == (3, 7)
    assert movements("refund:2") == [(lot_of("checkout:a").id, -3)]
    # Nothing left of a: an entry that recovers nothing, the balance never below 0.
    entry = do(ledger.clawback, "checkout:a", 5, reference="dispute:1")
    assert (entry.delta, entry.requested, entry.balance_after) == (0, 5, 6)
    assert movements("dispute:1") == []
    assert ledger.balance(account) == 6
    invariants()


def test_clawback_of_an_expired_lot_recovers_nothing(account, do, clock, invariants):
    do(ledger.grant, account, 5, reference="checkout:a", kind=Kind.PURCHASE, expires_at=EPOCH + days(1))
    clock.shift(days(2))
    entry = do(ledger.clawback, "checkout:a", 5, reference="refund:1")
    assert (entry.delta, entry.requested) == (0, 5)
    assert ledger.entry_by_reference(f"expiry:lot:{lot_of('checkout:a').id}").delta == -5
    assert ledger.balance(account) == 0
    invariants()


def test_clawback_refusals_and_reversal(account, do, invariants):
    do(ledger.grant, account, 5, reference="checkout:a", kind=Kind.PURCHASE)
    do(ledger.spend, account, 1, reference="enrol:1")
    with pytest.raises(ledger.UnknownReference):
        do(ledger.clawback, "checkout:404", 1, reference="refund:x")
    with pytest.raises(ledger.UnknownReference):
        do(ledger.clawback, "enrol:1", 1, reference="refund:x")  # not a credited lot
    do(ledger.clawback, "checkout:a", 3, reference="dispute:1")
    [back] = do(ledger.reverse, "dispute:1", reference="dispute-won:1")  # dispute won
    assert (back.kind, back.delta, back.balance_after) == ("clawback-reversal", 3, 4)
    assert remaining("checkout:a") == 4
    invariants()


# --- idempotency -----------------------------------------------------------------------

def test_replays_return_the_first_entry_and_change_nothing(account, do, invariants):
    first = do(ledger.grant, account, 10, reference="checkout:1", kind=Kind.PURCHASE)
    assert do(ledger.grant, account, 10, reference="checkout:1", kind=Kind.PURCHASE) == first
    spent = do(ledger.spend, account, 4, reference="enrol:1")
    clawed = do(ledger.clawback, "checkout:1", 2, reference="refund:1")
    [reversed_] = do(ledger.reverse, "enrol:1", reference="unenrol:1")
    before = totals(account)
    assert do(ledger.spend, account, 4, reference="enrol:1") == spent
    assert do(ledger.clawback, "checkout:1", 2, reference="refund:1") == clawed
    assert do(ledger.reverse, "enrol:1", reference="unenrol:1") == [reversed_]
    assert do(ledger.grant, account, 10, reference="checkout:1", kind=Kind.PURCHASE) == first
    assert totals(account) == before
    invariants()


def test_same_reference_for_something_else_is_a_conflict(account, do, make_user, invariants):
    other = make_user().id
    do(ledger.grant, account, 10, reference="checkout:1", kind=Kind.PURCHASE)
    do(ledger.spend, account, 4, reference="enrol:1")
    do(ledger.clawback, "checkout:1", 2, reference="refund:1")
    before = totals(account)
    for operation, args, kwargs in (
            (ledger.grant, (account, 11), {"kind": Kind.PURCHASE}),  # another amount
            (ledger.grant, (account, 10), {"kind": Kind.ADMIN_GRANT}),  # another kind
            (ledger.grant, (other, 10), {"kind": Kind.PURCHASE}),  # another account
            (ledger.spend, (account, 10), {}),  # a spend under a grant's reference
    ):
        with pytest.raises(ledger.IdempotencyConflict):
            do(operation, *args, reference="checkout:1", **kwargs)
    with pytest.raises(ledger.IdempotencyConflict):
        do(ledger.spend, account, 5, reference="enrol:1")
    with pytest.raises(ledger.IdempotencyConflict):
        do(ledger.clawback, "checkout:1", 3, reference="refund:1")
    with pytest.raises(ledger.IdempotencyConflict):
        do(ledger.grant, account, 2, reference="enrol:1")
    assert totals(account) == before
    assert ledger.balance(other) == 0
    invariants()


# --- atomicity -------------------------------------------------------------------------

class Boom(Exception):
    pass


def _exploding_movement(*_args, **_kwargs):
    raise Boom("the database went away in the middle of the operation")


@pytest.mark.parametrize("operation", ["grant", "spend", "clawback", "reverse", "expire"])
def test_failure_in_the_middle_leaves_nothing(account, do, clock, monkeypatch, operation, invariants):
    do(ledger.grant, account, 10, reference="checkout:1", kind=Kind.PURCHASE, expires_at=EPOCH + days(3))
    do(ledger.grant, account, 5, reference="t:g")
    do(ledger.spend, account, 4, reference="enrol:1")
    clock.shift(days(1))
    calls = {
        "grant": lambda: ledger.grant(account, 3, reference="t:new", actor=SYSTEM),
        "spend": lambda: ledger.spend(account, 10, reference="t:new", actor=SYSTEM),
        "clawback": lambda: ledger.clawback("checkout:1", 3, reference="t:new", actor=SYSTEM),
        "reverse": lambda: ledger.reverse("enrol:1", reference="t:new", actor=SYSTEM),
        "expire": lambda: (clock.shift(days(5)), ledger.expire_due()),
    }
    before = totals(account)
    # The entry and the balance change are flushed before the movements: the insert of a
    # Movement fails after them.
    monkeypatch.setattr(ledger, "Movement", _exploding_movement)
    with pytest.raises(Boom):
        with write_transaction():
            calls[operation]()
    assert totals(account) == before
    # The SAVEPOINT alone also undoes it, when a caller catches the error and commits.
    with write_transaction():
        with pytest.raises(Boom):
            calls[operation]()
    assert totals(account) == before
    monkeypatch.undo()
    invariants()


def test_failure_after_a_ledger_call_rolls_the_whole_transaction_back(account, do, invariants):
    do(ledger.grant, account, 10, reference="t:g")
    before = totals(account)
    with pytest.raises(Boom):
        with write_transaction():
            ledger.spend(account, 4, reference="enrol:1", actor=SYSTEM)
            ledger.grant(account, 9, reference="t:g2", actor=SYSTEM)
            raise Boom("the enrolment row could not be written")
    assert totals(account) == before
    assert ledger.entry_by_reference("enrol:1") is None
    invariants()


# --- database constraints --------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE accounts SET balance = -1",
    "UPDATE ledger_lots SET remaining = original + 1",
    "UPDATE ledger_lots SET remaining = -1",
    "UPDATE ledger_lots SET original = 0, remaining = 0",
    "UPDATE ledger_entries SET balance_after = -1",
    "UPDATE ledger_entries SET kind = 'gift'",
    "UPDATE ledger_movements SET amount = 0",
    "INSERT INTO ledger_entries (account_id, delta, requested, kind, reference, actor_type,"
    " balance_after, created_at) SELECT account_id, 0, 0, 'spend', reference, 'system', 0,"
    " created_at FROM ledger_entries",  # duplicate reference
])
def test_check_and_unique_constraints_exist_in_the_database(account, do, statement, invariants):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    do(ledger.grant, account, 5, reference="t:g")
    do(ledger.spend, account, 2, reference="t:s")
    with pytest.raises(IntegrityError):
        with write_transaction():
            db.session.execute(text(statement))
    assert totals(account).balance == 3
    invariants()


def test_entries_list_every_change_with_balance_after(account, do, invariants):
    do(ledger.grant, account, 5, reference="t:g")
    do(ledger.spend, account, 2, reference="t:s")
    do(ledger.debit, account, 1, reference="t:d", reason="fix")
    rows = db.session.execute(select(Entry.kind, Entry.delta, Entry.balance_after)
                              .order_by(Entry.id)).all()
    assert [tuple(r) for r in rows] == [("admin-grant", 5, 5), ("spend", -2, 3), ("admin-debit", -1, 2)]
    assert db.session.scalar(select(Lot.remaining)) == 2
    invariants()
