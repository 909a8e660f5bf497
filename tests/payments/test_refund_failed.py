"""Refunds that Stripe reports `failed` or `canceled` after the shop counted them: the
money stayed with the shop, so what the refund took back comes back, exactly once,
whatever the order, number and concurrency of the events."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select, update

from storefront.db import utcnow, write_transaction
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.ledger.models import Entry, Kind, Lot

from .course_helpers import NEXT_MONTH, buy_course, courses, make_course  # noqa: F401  (fixtures)


def _bought(shop, make_pack, credits=10, price_cents=9000, other_credits=0, validity_days=None):
    user, client = shop.learner(credits=other_credits)
    sid = shop.buy(client, make_pack(credits=credits, price_cents=price_cents, validity_days=validity_days))
    shop.pay(sid)
    return user, client, sid


def _order_state(shop, sid):
    order = shop.order(sid)
    return (order.status, order.refunded_cents, order.credits_recovered, order.credits_unrecovered)


def _entry_delta(shop, reference):
    with shop.app.app_context():
        entry = ledger.entry_by_reference(reference)
        return None if entry is None else entry.delta


def test_pack_refund_succeeded_then_failed_gives_the_credits_back_once(shop, make_pack, fake_stripe,
                                                                      verify_ledger):
    user, client, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    refunded = fake_stripe.refund(pi, 9000)
    assert shop.webhook(refunded).status_code == 200
    assert shop.balance(user) == 0 and _order_state(shop, sid) == ("refunded", 9000, 10, 0)
    refund_id = fake_stripe.refund_id(pi)

    failed = fake_stripe.fail_refund(refund_id)
    assert shop.webhook(failed).status_code == 200
    assert shop.balance(user) == 10
    assert _order_state(shop, sid) == ("paid", 0, 0, 0)
    assert _entry_delta(shop, f"refund-failed:{refund_id}") == 10

    # Replays of the failure, the same news through another event type, and the stale
    # "refunded" event delivered again: nothing more.
    for event in (failed, failed, fake_stripe.refund_event(refund_id, "charge.refund.updated"), refunded):
        assert shop.webhook(event).status_code == 200
    assert shop.balance(user) == 10 and _order_state(shop, sid) == ("paid", 0, 0, 0)
    with shop.app.app_context():
        reversals = db.session.scalars(select(Entry).where(Entry.kind == Kind.CLAWBACK_REVERSAL)).all()
        assert [e.delta for e in reversals] == [10]
    history = client.get("/credits").get_data(as_text=True)
    assert "Refund failed: credits restored" in history and "Dispute won" not in history
    french = client.get("/credits", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Remboursement échoué : crédits rétablis" in french
    verify_ledger()


def test_failed_refund_gives_back_only_what_was_clawed_back(shop, make_pack, fake_stripe, verify_ledger):
    # 5 other credits (older never-expiring grant) then the pack's 10: spending 8 takes
    # the grant's 5 and 3 of the pack, so the refund recovers 7 and records 3 as spent.
    user, _, sid = _bought(shop, make_pack, other_credits=5)
    shop.spend(user, 8, "enrol:rf-1")
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 9000))
    assert shop.balance(user) == 0 and _order_state(shop, sid) == ("refunded", 9000, 7, 3)

    shop.webhook(fake_stripe.fail_refund(fake_stripe.refund_id(pi)))
    assert shop.balance(user) == 7  # the 3 spent were never taken back: they do not come back
    assert _order_state(shop, sid) == ("paid", 0, 0, 0)
    verify_ledger()


def test_partial_refunds_where_one_of_two_is_cancelled(shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 3000))
    shop.webhook(fake_stripe.refund(pi, 3000))
    assert shop.balance(user) == 4 and _order_state(shop, sid) == ("partly-refunded", 6000, 6, 0)
    first, second = fake_stripe.refund_id(pi, 0), fake_stripe.refund_id(pi, 1)

    cancelled = fake_stripe.fail_refund(first, "canceled", "charge.refund.updated")
    assert shop.webhook(cancelled).status_code == 200
    assert shop.balance(user) == 7 and _order_state(shop, sid) == ("partly-refunded", 3000, 3, 0)

    # The shop can then refund the rest: the pack's credits add up exactly once more.
    shop.webhook(fake_stripe.refund(pi, 6000))
    assert shop.balance(user) == 0 and _order_state(shop, sid) == ("refunded", 9000, 10, 0)
    shop.webhook(fake_stripe.fail_refund(second))
    assert shop.balance(user) == 3 and _order_state(shop, sid) == ("partly-refunded", 6000, 7, 0)
    shop.webhook(cancelled)  # a late replay
    assert shop.balance(user) == 3
    verify_ledger()


def test_failed_before_succeeded_never_counts_the_refund(shop, make_pack, fake_stripe, verify_ledger):
    user, client, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    refunded = fake_stripe.refund(pi, 9000)  # not delivered yet
    refund_id = fake_stripe.refund_id(pi)
    stale_succeeded = fake_stripe.refund_event(refund_id, "refund.updated")
    failed = fake_stripe.fail_refund(refund_id)
    assert shop.webhook(failed).status_code == 200  # the failure arrives first
    for event in (refunded, stale_succeeded, failed):
        assert shop.webhook(event).status_code == 200
    assert shop.balance(user) == 10 and _order_state(shop, sid) == ("paid", 0, 0, 0)
    assert _entry_delta(shop, f"refund:{refund_id}") is None  # nothing was ever clawed back
    verify_ledger()


def test_failed_refund_reported_before_the_completion(shop, make_pack, fake_stripe, verify_ledger):
    user, client = shop.learner()
    sid = shop.buy(client, make_pack())
    completed = shop.pay(sid, deliver=False)
    fake_stripe.refund(shop.payment_intent(sid), 9000)
    failed = fake_stripe.fail_refund(fake_stripe.refund_id(shop.payment_intent(sid)))
    assert shop.webhook(failed).status_code == 200  # fulfils from Stripe; the refund never counts
    assert shop.webhook(completed).status_code == 200
    assert shop.balance(user) == 10 and _order_state(shop, sid) == ("paid", 0, 0, 0)
    verify_ledger()


def test_credits_given_back_to_an_expired_lot_expire_at_once(app, shop, make_pack, fake_stripe, verify_ledger):
    user, _, sid = _bought(shop, make_pack, validity_days=30)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 9000))
    with app.app_context(), write_transaction():  # the pack's validity ends meanwhile
        purchase = ledger.entry_by_reference(f"checkout:{sid}")
        db.session.execute(update(Lot).where(Lot.entry_id == purchase.id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
    refund_id = fake_stripe.refund_id(pi)
    shop.webhook(fake_stripe.fail_refund(refund_id))
    assert shop.balance(user) == 0  # a failed refund never extends a validity
    assert _entry_delta(shop, f"refund-failed:{refund_id}") == 10
    assert _entry_delta(shop, f"expiry:refund-failed:{refund_id}") == -10
    assert shop.order(sid).status == "paid"
    verify_ledger()


def test_concurrent_deliveries_of_the_failure_restore_once(shop, make_pack, fake_stripe, live_server,
                                                           verify_ledger):
    user, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 9000))
    failed = fake_stripe.fail_refund(fake_stripe.refund_id(pi))
    barrier, statuses = threading.Barrier(6), []

    def deliver():
        barrier.wait()
        statuses.append(fake_stripe.deliver(failed, live_server + "/stripe/webhook"))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 6
    assert shop.balance(user) == 10 and _order_state(shop, sid) == ("paid", 0, 0, 0)
    verify_ledger()


def test_admin_sees_the_failed_refund(shop, make_pack, fake_stripe, verify_ledger):
    _, _, sid = _bought(shop, make_pack)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 9000))
    shop.webhook(fake_stripe.fail_refund(fake_stripe.refund_id(pi)))
    _, admin = shop.learner(admin=True)
    page = admin.get(f"/admin/orders/{shop.order(sid).id}").get_data(as_text=True)
    assert "failed: money not returned" in page and "(restored)" in page
    assert "Full refund: €90.00, asks back 10 credits" in page  # it can be refunded again
    verify_ledger()


# --- course orders ------------------------------------------------------------------------

def _course_checkout(shop, client, course) -> str:
    response = buy_course(client, course.slug)
    assert response.status_code == 303, response.get_data(as_text=True)
    sid = response.headers["Location"].rsplit("/pay/", 1)[1]
    shop.pay(sid)
    return sid


def test_course_full_refund_then_failed_gives_the_enrolment_back(shop, courses, make_course, fake_stripe,
                                                                 verify_ledger):
    course = make_course(capacity=1)
    user, client = shop.learner()
    sid = _course_checkout(shop, client, course)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 12000))
    assert courses.enrolments(user)[0][2] == "cancelled" and courses.seats_taken(course) == 0

    failed = fake_stripe.fail_refund(fake_stripe.refund_id(pi))
    assert shop.webhook(failed).status_code == 200 and shop.webhook(failed).status_code == 200
    assert courses.enrolments(user) == [(course.id, NEXT_MONTH, "upcoming", "card")]
    assert courses.seats_taken(course) == 1
    order = shop.order(sid)
    assert (order.status, order.refunded_cents, order.needs_refund) == ("paid", 0, False)
    assert "revoked_by" not in order.details
    verify_ledger()


def test_course_refund_failed_after_the_seat_was_taken_is_flagged(shop, courses, make_course, fake_stripe,
                                                                  verify_ledger):
    course = make_course(capacity=1)
    user, client = shop.learner()
    sid = _course_checkout(shop, client, course)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 12000))
    other, other_client = shop.learner()
    _course_checkout(shop, other_client, course)  # the freed seat is sold again
    assert courses.seats_taken(course) == 1

    shop.webhook(fake_stripe.fail_refund(fake_stripe.refund_id(pi), "canceled"))
    assert courses.enrolments(user)[0][2] == "cancelled" and courses.seats_taken(course) == 1  # no overbooking
    order = shop.order(sid)
    assert (order.status, order.refunded_cents, order.needs_refund) == ("paid", 0, True)
    assert order.details["outcome"] == "not-reinstated-refund"
    assert "This payment will be refunded." in client.get(f"/orders/{order.id}").get_data(as_text=True)
    _, admin = shop.learner(admin=True)
    detail = admin.get(f"/admin/orders/{order.id}").get_data(as_text=True)
    assert "Cancelled by a refund that then failed, and not given back" in detail
    assert "cancelled: money not returned" in detail
    verify_ledger()


def test_course_partial_refund_failing_keeps_the_enrolment(shop, courses, make_course, fake_stripe, verify_ledger):
    course = make_course()
    user, client = shop.learner()
    sid = _course_checkout(shop, client, course)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 2000))  # a goodwill gesture: the enrolment stays
    shop.webhook(fake_stripe.fail_refund(fake_stripe.refund_id(pi)))
    assert courses.enrolments(user)[0][2] == "upcoming" and courses.seats_taken(course) == 1
    assert shop.order(sid).status == "paid" and shop.order(sid).refunded_cents == 0
    verify_ledger()
