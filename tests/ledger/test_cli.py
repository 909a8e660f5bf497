"""`flask users create` and `flask credits grant|balance|verify|expire` (contract.md)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import text

from storefront.auth.service import find_by_email
from storefront.db import utcnow, write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger

from .conftest import EPOCH, days, totals


@pytest.fixture
def learner(ctx, make_user):
    return make_user("ada@example.com")


def flask(runner, *args):
    return runner.invoke(args=list(args))


def test_users_create_learner_and_admin(ctx, runner):
    result = flask(runner, "users", "create", "Grace@Example.com", "--password", "long-enough-1",
                   "--name", "Grace Hopper")
    assert result.exit_code == 0, result.output
    assert "Created learner grace@example.com" in result.output
    result = flask(runner, "users", "create", "root@example.com", "--password", "long-enough-1", "--admin")
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.com" in result.output
    grace = find_by_email("grace@example.com")
    assert (grace.display_name, grace.is_admin, grace.check_password("long-enough-1")) == (
        "Grace Hopper", False, True)
    assert find_by_email("root@example.com").is_admin
    assert flask(runner, "credits", "balance", "grace@example.com").output == "0\n"


def test_users_create_prompts_for_the_password(ctx, runner):
    result = runner.invoke(args=["users", "create", "lin@example.com"],
                           input="long-enough-1\nlong-enough-1\n")
    assert result.exit_code == 0, result.output
    assert find_by_email("lin@example.com").check_password("long-enough-1")


@pytest.mark.parametrize("args, message", [
    (["not-an-email", "--password", "long-enough-1"], "invalid email"),
    (["ada@example.com", "--password", "long-enough-1"], "already exists"),
    (["ADA@example.com", "--password", "long-enough-1"], "already exists"),
    (["bob@example.com", "--password", "short"], "at least 8"),
])
def test_users_create_refusals(learner, runner, args, message):
    result = flask(runner, "users", "create", *args)
    assert result.exit_code != 0
    assert message in result.output
    db.session.rollback()
    assert find_by_email("bob@example.com") is None
    assert db.session.execute(text("SELECT count(*) FROM users")).scalar() == 1


def test_grant_and_balance(learner, runner, invariants):
    result = flask(runner, "credits", "grant", "ada@example.com", "12", "--reason", "welcome pack")
    assert result.exit_code == 0, result.output
    assert "Granted 12 credits to ada@example.com; balance after: 12" in result.output
    result = flask(runner, "credits", "balance", "ADA@example.com")
    assert (result.exit_code, result.output) == (0, "12\n")  # a bare integer
    entry = db.session.execute(text("SELECT kind, delta, reason FROM ledger_entries")).one()
    assert tuple(entry) == ("admin-grant", 12, "welcome pack")
    invariants()


def test_grant_with_expiry_lasts_the_whole_day_and_expire_posts_it_once(learner, runner, invariants):
    with time_machine.travel(EPOCH, tick=False) as clock:
        last_day = (EPOCH + days(3)).date().isoformat()
        result = flask(runner, "credits", "grant", "ada@example.com", "5", "--reason", "trial",
                       "--expires", last_day)
        assert result.exit_code == 0, result.output
        assert ledger.summary(learner.id).next_expiry_at.isoformat() == f"{last_day}T23:59:59+00:00"
        assert flask(runner, "credits", "expire").output == "Expired 0 credits in 0 lots.\n"
        clock.move_to(EPOCH.replace(hour=23, minute=59) + days(3))
        assert flask(runner, "credits", "expire").output == "Expired 0 credits in 0 lots.\n"
        clock.shift(timedelta(minutes=1))
        result = flask(runner, "credits", "expire")
        assert (result.exit_code, result.output) == (0, "Expired 5 credits in 1 lots.\n")
        assert flask(runner, "credits", "expire").output == "Expired 0 credits in 0 lots.\n"
        assert flask(runner, "credits", "balance", "ada@example.com").output == "0\n"
    invariants()


def test_grant_with_a_reference_is_idempotent(learner, runner, invariants):
    for _ in range(2):
        result = flask(runner, "credits", "grant", "ada@example.com", "4", "--reason", "import",
                       "--reference", "import:row-7")
        assert result.exit_code == 0, result.output
    assert ledger.balance(learner.id) == 4
    result = flask(runner, "credits", "grant", "ada@example.com", "5", "--reason", "import",
                   "--reference", "import:row-7")
    assert result.exit_code != 0
    assert "already used" in result.output
    assert ledger.balance(learner.id) == 4
    invariants()


@pytest.mark.parametrize("args, message", [
    (["ada@example.com", "0"], "positive"),
    (["ada@example.com", "-5"], "positive"),
    (["ada@example.com", "--reason", "test", "--", "-5"], "positive"),
    (["ada@example.com", "2.5"], "whole number"),
    (["ada@example.com", "1e3"], "whole number"),
    (["ada@example.com", "ten"], "whole number"),
    (["ada@example.com", ""], "whole number"),
    (["ada@example.com", "0x10"], "whole number"),
    (["ada@example.com", "1_000"], "whole number"),
    (["ada@example.com", "1000001"], "at most 1000000"),
    (["ada@example.com", "99999999999999999999999"], "at most"),
    (["nobody@example.com", "5"], "no user with email nobody@example.com"),
    (["ada@example.com", "5", "--expires", "2020-01-01"], "in the past"),
    (["ada@example.com", "5", "--expires", "yesterday"], "YYYY-MM-DD"),
    (["ada@example.com", "5", "--expires", "2031-02-30"], "YYYY-MM-DD"),
    (["ada@example.com", "5", "--reason", "   "], "--reason"),
])
def test_grant_refusals_write_nothing(learner, runner, args, message, invariants):
    if "--reason" not in args:
        args = [*args, "--reason", "test"]
    before = totals(learner.id)
    result = flask(runner, "credits", "grant", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert totals(learner.id) == before
    invariants()


def test_grant_without_reason_is_a_usage_error(learner, runner):
    result = flask(runner, "credits", "grant", "ada@example.com", "5")
    assert result.exit_code != 0
    assert "--reason" in result.output
    assert totals(learner.id).entry_count == 0


def test_balance_of_unknown_email(ctx, runner):
    result = flask(runner, "credits", "balance", "nobody@example.com")
    assert result.exit_code != 0
    assert "no user with email nobody@example.com" in result.output


def test_verify_passes_on_a_consistent_ledger(learner, runner, make_user):
    other = make_user(credits=9)
    with write_transaction():
        ledger.grant(learner.id, 5, reference="t:g", actor=ledger.Actor.system())
        ledger.spend(learner.id, 2, reference="t:s", actor=ledger.Actor.system())
        ledger.reverse("t:s", reference="t:r", actor=ledger.Actor.system())
        ledger.spend(other.id, 9, reference="t:s2", actor=ledger.Actor.system())
    result = flask(runner, "credits", "verify")
    assert result.exit_code == 0, result.output
    assert "every invariant holds" in result.output


@pytest.mark.parametrize("corruption, expected", [
    # Within every CHECK constraint, yet inconsistent: one line per violation.
    (["UPDATE accounts SET balance = balance + 1"], ["account {a}: balance 6, entries sum 5, lots sum 5"]),
    (["UPDATE ledger_lots SET remaining = remaining - 1"],
     ["account {a}: balance 5, entries sum 5, lots sum 4", "lot {l}: remaining 4 but movements sum 5"]),
    (["UPDATE ledger_entries SET balance_after = 4 WHERE delta = 5"],
     ["entry {e}: balance_after 4 but running sum 5"]),
    (["UPDATE ledger_movements SET amount = 4"],
     ["lot {l}: remaining 5 but movements sum 4", "entry {e}: delta 5 but movements sum 4"]),
])
def test_verify_reports_one_line_per_violation(learner, runner, corruption, expected):
    with write_transaction():
        entry = ledger.grant(learner.id, 5, reference="t:g", actor=ledger.Actor.system())
        ids = {"a": entry.account_id, "e": entry.id,
               "l": db.session.execute(text("SELECT id FROM ledger_lots")).scalar()}
        for statement in corruption:
            db.session.execute(text(statement))
    result = flask(runner, "credits", "verify")
    assert result.exit_code != 0
    assert sorted(result.output.splitlines()) == sorted(line.format(**ids) for line in expected)


def test_expire_posts_due_expiries_of_every_account(ctx, runner, make_user, invariants):
    with time_machine.travel(EPOCH, tick=False) as clock:
        a = make_user(credits=3, expires_at=EPOCH + days(1))
        b = make_user(credits=4, expires_at=EPOCH + days(1))
        c = make_user(credits=6, expires_at=EPOCH + days(9))
        clock.shift(days(2))
        result = flask(runner, "credits", "expire")
        assert (result.exit_code, result.output) == (0, "Expired 7 credits in 2 lots.\n")
        assert [ledger.balance(u.id) for u in (a, b, c)] == [0, 0, 6]
        assert flask(runner, "credits", "expire").output == "Expired 0 credits in 0 lots.\n"
    invariants()


def test_grant_date_today_is_accepted(learner, runner):
    """--expires today means "usable until the end of today" (not in the past)."""
    result = flask(runner, "credits", "grant", "ada@example.com", "1", "--reason", "x",
                   "--expires", utcnow().date().isoformat())
    if result.exit_code != 0:  # only at 23:59:59 UTC exactly
        assert "in the past" in result.output
    else:
        assert ledger.balance(learner.id) == 1
