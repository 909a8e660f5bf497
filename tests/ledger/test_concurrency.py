"""Races: many threads (SQLite file database, PostgreSQL) and many OS processes
(PostgreSQL) spend from, or grant into, one account at the same moment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from storefront.db import write_transaction
from storefront.ledger import service as ledger

from .conftest import SYSTEM

WORKER = Path(__file__).with_name("spend_worker.py")


def race(app, count, action):
    """Run action(i) on `count` threads released together; returns their outcomes."""
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def run(i):
        with app.app_context():
            barrier.wait()
            try:
                with write_transaction():
                    outcomes[i] = action(i)
            except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
                outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def kinds(outcomes):
    return Counter(type(o).__name__ if isinstance(o, Exception) else "ok" for o in outcomes)


def test_twenty_threads_spend_three_from_thirty(app, make_user, verify_ledger):
    assert ":memory:" not in app.config["SQLALCHEMY_DATABASE_URI"]  # a file, as in production
    user = make_user(credits=30)

    def spend(i):
        return ledger.spend(user.id, 3, reference=f"enrol:{i}", actor=SYSTEM).balance_after

    outcomes = race(app, 20, spend)
    assert kinds(outcomes) == {"ok": 10, "InsufficientCredits": 10}
    assert sorted(o for o in outcomes if isinstance(o, int)) == list(range(0, 30, 3))
    with app.app_context():
        assert ledger.balance(user.id) == 0
    verify_ledger()


def test_concurrent_grants_with_one_reference_grant_once(app, make_user, verify_ledger):
    user = make_user()

    def grant(_i):
        return ledger.grant(user.id, 25, reference="checkout:cs_same", actor=SYSTEM,
                            kind="purchase").id

    outcomes = race(app, 12, grant)
    assert kinds(outcomes) == {"ok": 12}
    assert len(set(outcomes)) == 1  # everyone got the first entry back
    with app.app_context():
        assert ledger.balance(user.id) == 25
    verify_ledger()


def test_concurrent_replays_of_spend_reverse_and_clawback_apply_once(app, make_user, verify_ledger):
    user = make_user()
    with app.app_context(), write_transaction():
        ledger.grant(user.id, 20, reference="checkout:1", actor=SYSTEM, kind="purchase")
        ledger.spend(user.id, 5, reference="enrol:1", actor=SYSTEM)

    def mixed(i):
        if i % 3 == 0:
            return ledger.spend(user.id, 4, reference="enrol:2", actor=SYSTEM).id
        if i % 3 == 1:
            return ledger.reverse("enrol:1", reference="unenrol:1", actor=SYSTEM)[0].id
        return ledger.clawback("checkout:1", 6, reference="refund:1", actor=SYSTEM).id

    outcomes = race(app, 12, mixed)
    assert kinds(outcomes) == {"ok": 12}
    assert len(set(outcomes)) == 3
    with app.app_context():
        assert ledger.balance(user.id) == 20 - 5 - 4 + 5 - 6
    verify_ledger()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])
def test_twenty_processes_spend_three_from_thirty(app, make_user, database_url, tmp_path, verify_ledger):
    """Separate OS processes, each with its own app and connection pool, as gunicorn
    workers or several hosts would be. They build their app, say "ready", and spend
    when told "go" (all at once)."""
    user = make_user(credits=30)
    env = {**os.environ, "STOREFRONT_INSTANCE": str(tmp_path / "instance")}
    workers = [subprocess.Popen([sys.executable, str(WORKER), database_url, str(user.id), f"proc:{i}"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
               for i in range(20)]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # "go" to everyone before reading any answer
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outcomes = [worker.stdout.readline().strip() for worker in workers]
        assert [worker.wait(60) for worker in workers] == [0] * 20
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            worker.stdin.close()
            worker.stdout.close()
    assert Counter(o.split()[0] for o in outcomes) == {"spent": 10, "insufficient": 10}
    with app.app_context():
        assert ledger.balance(user.id) == 0
    verify_ledger()
