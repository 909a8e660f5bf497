"""Property: whatever mix of purchases, spends, partial refunds, disputes and replays
Stripe and the learner produce, the ledger holds and every order explains its credits."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

PACKS = [(10, 9000), (3, 1000), (7, 4999)]  # credits, cents: uneven prices test the rounding

operations = st.lists(st.one_of(
    st.tuples(st.just("buy"), st.integers(0, len(PACKS) - 1)),
    st.tuples(st.just("pay"), st.integers(0, 3)),
    st.tuples(st.just("replay"), st.integers(0, 3)),
    st.tuples(st.just("spend"), st.integers(1, 12)),
    st.tuples(st.just("refund"), st.integers(0, 3), st.integers(1, 9000)),
    st.tuples(st.just("dispute"), st.integers(0, 3), st.booleans()),
), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_keeps_credits_explained(shop, make_pack, fake_stripe, verify_ledger, ops):
    packs = [make_pack(credits=c, price_cents=p) for c, p in PACKS] if not hasattr(shop, "packs") else shop.packs
    shop.packs = packs
    user, client = shop.learner()
    sessions, events, disputed, spent, n = [], {}, set(), 0, 0
    for op in ops:
        kind = op[0]
        if kind == "buy":
            sessions.append(shop.buy(client, packs[op[1]]))
        elif kind in ("pay", "replay") and op[1] < len(sessions):
            sid = sessions[op[1]]
            if kind == "pay" and sid not in events:
                events[sid] = shop.pay(sid)
            elif sid in events:
                assert shop.webhook(events[sid]).status_code == 200
        elif kind == "spend":
            amount = min(op[1], shop.balance(user))
            if amount:
                n += 1
                shop.spend(user, amount, f"enrol:prop:{user.id}:{n}")
                spent += amount
        elif kind in ("refund", "dispute") and op[1] < len(sessions) and sessions[op[1]] in events:
            sid = sessions[op[1]]
            pi = shop.payment_intent(sid)
            order = shop.order(sid)
            left = order.amount_cents - sum(r["amount"] for r in fake_stripe.refunds.values()
                                             if r["payment_intent"] == pi)
            if kind == "refund" and left > 0:
                event = fake_stripe.refund(pi, min(op[2], left))
                assert shop.webhook(event).status_code == 200
                assert shop.webhook(event).status_code == 200  # replay
            elif kind == "dispute" and left > 0 and sid not in disputed:
                disputed.add(sid)
                dp = f"dp_{order.id}_{user.id}"
                assert shop.webhook(fake_stripe.dispute_event("created", pi, left, "needs_response", dp)).status_code == 200
                closed = fake_stripe.dispute_event("closed", pi, left, "won" if op[2] else "lost", dp)
                assert shop.webhook(closed).status_code == 200
                assert shop.webhook(closed).status_code == 200

    verify_ledger()
    granted = recovered = 0
    for sid in sessions:
        order = shop.order(sid)
        paid = sid in events
        assert order.status != "pending" if paid else order.status == "pending"
        assert order.credits_granted == (order.details["credits"] if paid else 0)
        granted += order.credits_granted
        recovered += order.credits_recovered
        if paid:
            pi = shop.payment_intent(sid)
            refunded = sum(r["amount"] for r in fake_stripe.refunds.values() if r["payment_intent"] == pi)
            assert order.refunded_cents == refunded
            # A dispute (lost, or still open) covers whatever was not refunded.
            covered = order.amount_cents if order.status == "disputed" else refunded
            # Every refunded (or lost) cent took back its exact share of credits, or
            # recorded why it could not.
            assert order.credits_recovered + order.credits_unrecovered == \
                order.credits_granted * covered // order.amount_cents
    assert shop.balance(user) == granted - recovered - spent >= 0
