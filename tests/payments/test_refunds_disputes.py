"""Refunds and disputes claw back from the purchase's own lot, once, in any order."""
from __future__ import annotations

from storefront.ledger import service as ledger


def _bought(shop, make_pack, credits=10, price_cents=9000, other_credits=0):
    user, client = shop.learner(credits=other_credits)
    sid = shop.buy(client, make_pack(credits=credits, price_cents=price_cents))
    shop.pay(sid)
    return user, client, sid


def test_cumulative_partial_refunds_add_up_to_the_pack(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack, credits=10, price_cents=9000)
    pi = shop.payment_intent(sid)
    first = fake_stripe.refund(pi, 3000)
    assert shop.webhook(first).status_code == 200
    assert shop.balance(user) == 7 and shop.order(sid).status == "partly-refunded"
    assert shop.webhook(first).status_code == 200  # replay: nothing more
    assert shop.balance(user) == 7
    shop.webhook(fake_stripe.refund(pi, 3000))
    assert shop.balance(user) == 4
    shop.webhook(fake_stripe.refund(pi, 3000))
    order = shop.order(sid)
    assert shop.balance(user) == 0
    assert (order.status, order.refunded_cents, order.credits_recovered, order.credits_unrecovered) == \
        ("refunded", 9000, 10, 0)
    verify_ledger()


def test_refund_events_arriving_late_or_out_of_order_count_each_refund_once(shop, make_pack, fake_stripe,
                                                                             verify_ledger):
    user, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    older, newer = fake_stripe.refund(pi, 4500), fake_stripe.refund(pi, 4500)
    shop.webhook(newer)  # the provider's list already has both refunds
    shop.webhook(older)
    shop.webhook(fake_stripe.event("refund.created", {"id": "re_x", "object": "refund", "payment_intent": pi}))
    assert shop.balance(user) == 0 and shop.order(sid).refunded_cents == 9000
    verify_ledger()


def test_refund_of_spent_credits_takes_only_what_is_left_and_records_the_rest(shop, make_pack, fake_stripe,
                                                                               verify_ledger):
    user, _, sid = _bought(shop, make_pack, other_credits=5)
    # 5 other credits (never-expiring grant) and the pack's 10 (never-expiring, newer):
    # spending 12 takes the older grant first, then 7 from the pack.
    shop.spend(user, 12, "enrol:test-1")
    shop.webhook(fake_stripe.refund(shop.payment_intent(sid), 9000))
    order = shop.order(sid)
    assert (order.credits_recovered, order.credits_unrecovered) == (3, 7)
    assert shop.balance(user) == 0  # never below zero, other lots untouched
    verify_ledger()


def test_refund_only_touches_its_own_lot(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack, other_credits=20)
    shop.spend(user, 25, "enrol:test-2")  # 20 from the grant, 5 from the pack
    shop.webhook(fake_stripe.refund(shop.payment_intent(sid), 9000))
    assert shop.balance(user) == 0
    assert shop.order(sid).credits_unrecovered == 5
    verify_ledger()


def test_refund_reported_before_the_completion_leaves_a_consistent_state(shop, make_pack, fake_stripe,
                                                                          verify_ledger):
    user, client = shop.learner()
    sid = shop.buy(client, make_pack())
    completed = shop.pay(sid, deliver=False)
    refunded = fake_stripe.refund(shop.payment_intent(sid), 9000)
    assert shop.webhook(refunded).status_code == 200  # fulfils from Stripe, then refunds
    assert shop.webhook(completed).status_code == 200  # late completion: nothing more
    order = shop.order(sid)
    assert (order.status, order.credits_granted, order.credits_recovered) == ("refunded", 10, 10)
    assert shop.balance(user) == 0
    verify_ledger()


def test_dispute_lost_claws_back_and_stays_disputed(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    shop.spend(user, 4, "enrol:test-3")
    created = fake_stripe.dispute_event("created", pi, 9000, "needs_response", "dp_lost")
    assert shop.webhook(created).status_code == 200
    assert shop.webhook(created).status_code == 200  # replay
    order = shop.order(sid)
    assert (order.status, order.credits_recovered, order.credits_unrecovered) == ("disputed", 6, 4)
    assert shop.balance(user) == 0
    shop.webhook(fake_stripe.dispute_event("closed", pi, 9000, "lost", "dp_lost"))
    assert shop.order(sid).status == "disputed" and shop.balance(user) == 0
    verify_ledger()


def test_dispute_won_restores_the_credits(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.dispute_event("created", pi, 9000, "needs_response", "dp_won"))
    assert shop.balance(user) == 0
    won = fake_stripe.dispute_event("closed", pi, 9000, "won", "dp_won")
    shop.webhook(won)
    shop.webhook(won)
    order = shop.order(sid)
    assert shop.balance(user) == 10
    assert (order.status, order.credits_recovered, order.credits_unrecovered) == ("paid", 0, 0)
    with shop.app.app_context():
        assert ledger.entry_by_reference("dispute-won:dp_won").delta == 10
    verify_ledger()


def test_dispute_closed_before_created_is_consistent(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.dispute_event("closed", pi, 9000, "won", "dp_swap"))
    shop.webhook(fake_stripe.dispute_event("created", pi, 9000, "needs_response", "dp_swap"))
    assert shop.balance(user) == 10 and shop.order(sid).status == "paid"
    verify_ledger()


def test_dispute_before_completion_fulfils_then_claws_back(shop, make_pack, fake_stripe, verify_ledger):
    user, client = shop.learner()
    sid = shop.buy(client, make_pack())
    shop.pay(sid, deliver=False)
    shop.webhook(fake_stripe.dispute_event("created", shop.payment_intent(sid), 9000, "needs_response"))
    assert shop.order(sid).status == "disputed" and shop.balance(user) == 0
    verify_ledger()


def test_refund_for_an_unknown_payment_is_acknowledged(shop, fake_stripe):
    event = fake_stripe.event("charge.refunded", {"id": "ch_x", "object": "charge", "payment_intent": "pi_unknown"})
    assert shop.webhook(event).status_code == 200


def test_reconcile_fulfils_paid_sessions_the_shop_missed(shop, make_pack, runner, verify_ledger):
    user, client = shop.learner()
    pack = make_pack()
    missed, unpaid, seen = shop.buy(client, pack), shop.buy(client, pack), shop.buy(client, pack)
    shop.pay(missed, deliver=False)  # the webhook endpoint was down
    shop.pay(seen)
    result = runner.invoke(args=["payments", "reconcile"])
    assert result.exit_code == 0, result.output
    assert f"Fulfilled order {shop.order(missed).id}" in result.output
    assert shop.balance(user) == 20 and shop.order(unpaid).status == "pending"
    again = runner.invoke(args=["payments", "reconcile"])
    assert "fulfilled 0" in again.output and shop.balance(user) == 20
    verify_ledger()


def test_reconcile_reports_an_unreachable_provider(shop, runner, fake_stripe):
    fake_stripe.fail_next = 10
    result = runner.invoke(args=["payments", "reconcile"])
    assert result.exit_code == 1 and "Error" in result.output
