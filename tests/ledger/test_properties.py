"""Property-based test: random sequences of ledger operations keep every invariant.

A hypothesis state machine grants (with and without expiry), spends, debits, reverses,
claws back, moves time forward, runs the expiry job and replays earlier operations
(with the same and with conflicting arguments) on one learner's account. A plain
Python model of the lots predicts each result; after every step the database must
agree with the model and satisfy ledger.md:

    balance == sum(entries.delta) == sum(lots.remaining), 0 <= remaining <= original,
    balance >= 0, verify() == [].
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select

from storefront.auth.service import create_user
from storefront.db import write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.ledger.models import Account, Kind, Lot

from .conftest import EPOCH, SYSTEM, movements, totals

LEARNERS = itertools.count(1)  # one fresh learner per example
EXAMPLES = {"sqlite": 60, "postgresql": 15}


@dataclass
class ModelLot:
    original: int
    remaining: int
    expires_at: datetime | None

    def order(self, lot_id):
        # Soonest-expiring first, never-expiring last, oldest (lowest id) first on ties.
        return (self.expires_at is None, self.expires_at or EPOCH, lot_id)


@dataclass
class Model:
    lots: dict[int, ModelLot] = field(default_factory=dict)

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots.values())

    def due(self, now) -> dict[int, int]:
        return {i: lot.remaining for i, lot in self.lots.items()
                if lot.remaining and lot.expires_at is not None and lot.expires_at <= now}

    def expire(self, now) -> int:
        due = self.due(now)
        for i in due:
            self.lots[i].remaining = 0
        return sum(due.values())

    def plan(self, amount) -> list[tuple[int, int]]:
        moves, still = [], amount
        for i in sorted((i for i, lot in self.lots.items() if lot.remaining),
                        key=lambda i: self.lots[i].order(i)):
            take = min(still, self.lots[i].remaining)
            moves.append((i, -take))
            still -= take
            if not still:
                break
        return moves

    def apply(self, moves):
        for i, amount in moves:
            self.lots[i].remaining += amount


def ledger_machine(app):
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.traveller = time_machine.travel(EPOCH, tick=False)
            self.clock = self.traveller.start()
            with write_transaction():
                self.user_id = create_user(f"prop{next(LEARNERS)}@example.com", "password-123").id
            self.model = Model()
            self.counter = 0
            self.done: dict[str, tuple] = {}  # reference -> (replay callable, result ids, conflict callable)
            self.reversible: dict[str, list[tuple[int, int]]] = {}  # spends/clawbacks not yet reversed
            self.purchases: list[str] = []

        def teardown(self):
            self.traveller.stop()
            db.session.remove()
            self.ctx.pop()

        def ref(self, prefix):
            self.counter += 1
            return f"{prefix}:{self.user_id}:{self.counter}"

        @property
        def now(self):
            return ledger.utcnow()

        def run(self, operation):
            with write_transaction():
                result = operation()
                entries = result if isinstance(result, list) else [result]
                return [e.id for e in entries]

        # --- rules --------------------------------------------------------------------

        @rule(amount=st.integers(1, 40), expiry_hours=st.none() | st.integers(1, 24 * 60),
              kind=st.sampled_from(Kind.CREDITING))
        def grant(self, amount, expiry_hours, kind):
            reference = self.ref("checkout" if kind == Kind.PURCHASE else kind)
            expires_at = None if expiry_hours is None else self.now + timedelta(hours=expiry_hours)

            def call(amount=amount, kind=kind):
                return ledger.grant(self.user_id, amount, reference=reference, actor=SYSTEM,
                                    kind=kind, expires_at=expires_at, reason="property test")

            ids = self.run(call)
            lot_id = db.session.scalar(select(Lot.id).where(Lot.entry_id == ids[0]))
            self.model.lots[lot_id] = ModelLot(amount, amount, expires_at)
            self.purchases.append(reference)
            self.done[reference] = (call, ids, lambda: call(amount=amount + 1))

        @rule(amount=st.integers(1, 50), admin=st.booleans())
        def spend(self, amount, admin):
            reference = self.ref("enrol")
            kind = Kind.ADMIN_DEBIT if admin else Kind.SPEND

            def call(amount=amount):
                return ledger.spend(self.user_id, amount, reference=reference, actor=SYSTEM,
                                    kind=kind, reason="property test")

            trial = Model({i: ModelLot(l.original, l.remaining, l.expires_at)
                           for i, l in self.model.lots.items()})
            trial.expire(self.now)
            if trial.balance < amount:
                before = totals(self.user_id)
                with pytest.raises(ledger.InsufficientCredits):
                    self.run(call)
                assert totals(self.user_id) == before  # even the lazy expiry was undone
                return
            ids = self.run(call)
            self.model.expire(self.now)
            plan = self.model.plan(amount)
            assert movements(ledger.entry_by_reference(reference)) == plan
            self.model.apply(plan)
            self.reversible[reference] = plan
            self.done[reference] = (call, ids, lambda: call(amount=amount + 1))

        @precondition(lambda self: self.purchases)
        @rule(data=st.data(), amount=st.integers(1, 40))
        def clawback(self, data, amount):
            purchase = data.draw(st.sampled_from(self.purchases))
            reference = self.ref("refund")

            def call(amount=amount):
                return ledger.clawback(purchase, amount, reference=reference, actor=SYSTEM)

            ids = self.run(call)
            self.model.expire(self.now)
            lot_id = db.session.scalar(select(Lot.id).where(
                Lot.entry_id == ledger.entry_by_reference(purchase).id))
            recover = min(amount, self.model.lots[lot_id].remaining)
            entry = ledger.entry_by_reference(reference)
            assert (entry.delta, entry.requested) == (-recover, amount)
            moves = [(lot_id, -recover)] if recover else []
            assert movements(entry) == moves
            self.model.apply(moves)
            self.reversible[reference] = moves
            self.done[reference] = (call, ids, lambda: call(amount=amount + 1))

        @precondition(lambda self: self.reversible)
        @rule(data=st.data())
        def reverse(self, data):
            original = data.draw(st.sampled_from(sorted(self.reversible)))
            reference = self.ref("unenrol")

            def call():
                return ledger.reverse(original, reference=reference, actor=SYSTEM)

            ids = self.run(call)
            moves = [(i, -a) for i, a in self.reversible.pop(original)]
            self.model.apply(moves)
            lapsed = [(i, -a) for i, a in moves if i in self.model.due(self.now)]
            self.model.apply(lapsed)
            assert len(ids) == (2 if lapsed else 1)
            self.done[reference] = (call, ids, None)
            with pytest.raises(ledger.AlreadyReversed):  # under any other reference
                self.run(lambda: ledger.reverse(original, reference=self.ref("again"), actor=SYSTEM))

        @rule(hours=st.integers(1, 24 * 30))
        def time_passes(self, hours):
            self.clock.shift(timedelta(hours=hours))

        @rule()
        def expire_job(self):
            with write_transaction():
                posted = -sum(e.delta for e in ledger.expire_due()
                              if e.account_id == self.account_id())
            assert posted == self.model.expire(self.now)

        @precondition(lambda self: self.done)
        @rule(data=st.data(), conflicting=st.booleans())
        def replay(self, data, conflicting):
            reference = data.draw(st.sampled_from(sorted(self.done)))
            call, ids, conflict = self.done[reference]
            before = totals(self.user_id)
            if conflicting and conflict is not None:
                with pytest.raises(ledger.IdempotencyConflict):
                    self.run(conflict)
            else:
                assert self.run(call) == ids
            assert totals(self.user_id) == before

        # --- invariants ---------------------------------------------------------------

        def account_id(self):
            return db.session.scalar(select(Account.id).where(Account.user_id == self.user_id))

        @invariant()
        def ledger_md_holds(self):
            t = totals(self.user_id)
            assert t.balance == t.entries == t.lots == self.model.balance >= 0
            lots = dict(db.session.execute(select(Lot.id, Lot.remaining)
                                           .where(Lot.account_id == self.account_id())).all())
            assert lots == {i: lot.remaining for i, lot in self.model.lots.items()}
            assert all(0 <= lot.remaining <= lot.original for lot in self.model.lots.values())
            assert ledger.summary(self.user_id).available == self.model.balance - sum(
                self.model.due(self.now).values())
            assert ledger.verify() == []

    return LedgerMachine


def test_random_operation_sequences_keep_every_invariant(app, backend):
    run_state_machine_as_test(
        ledger_machine(app),
        settings=settings(max_examples=EXAMPLES[backend], stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow, HealthCheck.data_too_large]))
