"""Paying a course by card (issue 4, with the payments pipeline of issue 3), through the
real `stripe` library against the fake Stripe API: the enrolment is made by the
fulfilment, exactly once, without spending a credit; everything the enrolment rules
refuse is refused before any order exists; refunds, chargebacks and the learner who
enrolled with credits while paying."""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest

from .course_helpers import NEXT_MONTH, buy_course, courses, make_course  # noqa: F401  (fixtures)

TODAY = date.today()


def _checkout(client, course, start=NEXT_MONTH) -> str:
    """The learner presses "Pay by card"; the Checkout Session id they are sent to."""
    response = buy_course(client, course.slug, start)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/pay/", 1)[1]


def _confirm_form(page: str) -> dict:
    return dict(re.findall(r'name="(mode|amount_cents|form_id|confirm)" value="([^"]*)"', page))


def _admin_full_refund(admin, order_id: int):
    review = admin.submit(f"/admin/orders/{order_id}/refund", {"mode": "full"})
    assert review.status_code == 200, review.get_data(as_text=True)
    return admin.submit(f"/admin/orders/{order_id}/refund", _confirm_form(review.get_data(as_text=True)))


def test_pay_by_card_enrols_once_and_spends_no_credit(shop, courses, make_course, fake_stripe, verify_ledger):
    course = make_course("First aid", price=5, price_cents=12000)
    user, client = shop.learner(credits=20)
    page = client.get(f"/courses/{course.slug}?start_date={NEXT_MONTH.isoformat()}").get_data(as_text=True)
    assert "Pay €120.00 by card" in page
    sid = _checkout(client, course)
    session = fake_stripe.sessions[sid]
    assert (session["amount_total"], session["currency"], session["client_reference_id"]) == (12000, "eur", str(user.id))
    order = shop.order(sid)
    assert (order.status, order.product_type, order.product_id, order.amount_cents) == ("pending", "course", course.id, 12000)
    assert order.details["start_date"] == NEXT_MONTH.isoformat()
    assert courses.enrolments(user) == []  # nothing before the payment

    event = shop.pay(sid)
    for _ in range(3):  # Stripe redelivers
        assert shop.webhook(event).status_code == 200
    success = client.get(f"/checkout/success?session_id={sid}").get_data(as_text=True)
    assert client.get(f"/checkout/success?session_id={sid}").status_code == 200  # and the page is reloaded
    assert "Payment received: you are enrolled in First aid, starting on" in success
    assert "credits added" not in success

    assert courses.enrolments(user) == [(course.id, NEXT_MONTH, "upcoming", "card")]
    assert courses.seats_taken(course) == 1
    assert shop.balance(user) == 20  # no credit spent
    assert shop.order(sid).status == "paid" and shop.order(sid).credits_granted == 0
    mine = client.get("/my/courses").get_data(as_text=True)
    assert "First aid" in mine and "Card" in mine
    assert "Cancel and get my credits back" not in mine  # a card enrolment is refunded by payments
    orders = client.get("/orders").get_data(as_text=True)
    assert "Course: First aid — starts on" in orders
    receipt = client.get(f"/orders/{shop.order(sid).id}").get_data(as_text=True)
    assert "Course: First aid" in receipt and "€120.00" in receipt
    assert len(shop.outbox()) == 1 and "You are enrolled in First aid" in shop.outbox()[0]["body"]
    assert "You are enrolled in this course: it starts on" in client.get(f"/courses/{course.slug}").get_data(as_text=True)
    verify_ledger()


def test_concurrent_deliveries_and_the_success_page_enrol_once(shop, courses, make_course, fake_stripe,
                                                               live_server, verify_ledger):
    course = make_course(capacity=5)
    user, client = shop.learner()
    sid = _checkout(client, course)
    event = fake_stripe.complete(sid, deliver=False)
    barrier, statuses, pages = threading.Barrier(11), [], []

    def deliver():
        barrier.wait()
        statuses.append(fake_stripe.deliver(event, live_server + "/stripe/webhook"))

    def success_page():
        barrier.wait()
        pages.append(client.get(f"/checkout/success?session_id={sid}"))

    threads = [threading.Thread(target=deliver) for _ in range(10)] + [threading.Thread(target=success_page)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 10
    assert pages[0].status_code == 200 and "you are enrolled in" in pages[0].get_data(as_text=True)
    assert courses.enrolments(user) == [(course.id, NEXT_MONTH, "upcoming", "card")]
    assert courses.seats_taken(course) == 1
    assert len(shop.outbox()) == 1
    verify_ledger()


@pytest.mark.parametrize("start, message", [
    ((TODAY - timedelta(days=1)).isoformat(), "The start date cannot be in the past."),
    ((TODAY + timedelta(days=400)).isoformat(), "The last possible start date for this course is"),
    ("31/12/2030", "Enter the start date as YYYY-MM-DD."),
])
def test_bad_start_dates_are_refused_before_any_order(shop, courses, make_course, fake_stripe, start, message):
    course = make_course()
    _, client = shop.learner()
    response = buy_course(client, course.slug, start)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert fake_stripe.sessions == {} and courses.order_count() == 0


def test_already_enrolled_full_and_unbuyable_courses_are_refused_before_any_order(
        shop, courses, make_course, fake_stripe, verify_ledger):
    course, full, no_card, hidden = (make_course(capacity=3), make_course(capacity=1),
                                     make_course(price_cents=None), make_course(published=False))
    user, client = shop.learner(credits=5)
    token_page = client.get(f"/courses/{course.slug}?start_date={TODAY.isoformat()}").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', token_page).group(1)
    assert client.submit(f"/courses/{course.slug}/enrol", {"start_date": TODAY.isoformat(),
                                                           "form_token": token}).status_code == 303
    already = buy_course(client, course.slug)
    assert already.status_code == 409 and "You are already enrolled in this course." in already.get_data(as_text=True)

    other, other_client = shop.learner(credits=5)
    shop.pay(_checkout(other_client, full))  # `other` takes the only seat
    refused = buy_course(client, full.slug)
    assert refused.status_code == 409
    assert "Sorry, this course is full: nothing was charged." in refused.get_data(as_text=True)

    assert buy_course(client, no_card.slug).status_code == 409
    assert buy_course(client, hidden.slug).status_code == 404
    assert buy_course(client, "no-such-course").status_code == 404
    assert buy_course(shop.app.test_client(), course.slug).status_code == 302  # log in first
    assert courses.order_count() == 1 and len(fake_stripe.sessions) == 1  # only `other`'s
    assert shop.balance(user) == 0 and shop.balance(other) == 5
    verify_ledger()


def test_buy_needs_a_csrf_token(shop, make_course, fake_stripe):
    course = make_course()
    _, client = shop.learner()
    assert client.post(f"/courses/{course.slug}/buy", data={"start_date": NEXT_MONTH.isoformat()}).status_code == 400
    assert fake_stripe.sessions == {}


def test_a_tampered_price_is_ignored(shop, make_course, fake_stripe):
    course = make_course(price_cents=12000)
    _, client = shop.learner()
    sid = _checkout(client, course)
    sid2 = buy_course(client, course.slug, price_cents="1", amount="1", unit_amount_cents="1", currency="usd",
                      price="1").headers["Location"].rsplit("/pay/", 1)[1]
    for session_id in (sid, sid2):
        assert (fake_stripe.sessions[session_id]["amount_total"], fake_stripe.sessions[session_id]["currency"]) == \
            (12000, "eur")
        assert shop.order(session_id).amount_cents == 12000


def test_stripe_unreachable_charges_nothing(shop, courses, make_course, fake_stripe):
    course = make_course()
    _, client = shop.learner()
    fake_stripe.fail_next = 10
    response = buy_course(client, course.slug)
    assert response.status_code == 503 and "Nothing was charged" in response.get_data(as_text=True)
    assert courses.order_count() == 0


def test_full_refund_cancels_the_enrolment_and_frees_the_seat(shop, courses, make_course, fake_stripe,
                                                              verify_ledger):
    course = make_course(capacity=1)
    user, client = shop.learner(credits=7)
    sid = _checkout(client, course)
    shop.pay(sid)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.refund(pi, 2000))  # a goodwill partial refund keeps the enrolment
    assert courses.enrolments(user)[0][2] == "upcoming" and shop.order(sid).status == "partly-refunded"
    refund = fake_stripe.refund(pi, 10000)  # the rest: the whole payment is back
    assert shop.webhook(refund).status_code == 200 and shop.webhook(refund).status_code == 200
    assert courses.enrolments(user) == [(course.id, NEXT_MONTH, "cancelled", "card")]
    assert courses.seats_taken(course) == 0
    assert shop.order(sid).status == "refunded" and shop.balance(user) == 7  # the ledger is untouched
    assert "Cancelled" in client.get("/my/courses").get_data(as_text=True)
    other, other_client = shop.learner()
    assert buy_course(other_client, course.slug).status_code == 303  # the seat is free again
    verify_ledger()


def test_admin_refund_of_a_course_order(shop, courses, make_course, verify_ledger):
    course = make_course("Welding")
    user, client = shop.learner()
    sid = _checkout(client, course)
    shop.pay(sid)
    order_id = shop.order(sid).id
    _, admin = shop.learner(admin=True)
    detail = admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert "Course: Welding" in detail and "Full refund: €120.00" in detail
    assert "cancels the enrolment and frees its seat" in detail and "asks back" not in detail
    assert _admin_full_refund(admin, order_id).status_code == 303
    assert shop.order(sid).status == "refunded"
    assert courses.enrolments(user)[0][2] == "cancelled" and shop.balance(user) == 0
    assert "Enrolment cancelled: the payment was taken back." in admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    verify_ledger()


def test_chargeback_suspends_the_enrolment_until_it_is_won(shop, courses, make_course, fake_stripe, verify_ledger):
    course = make_course()
    user, client = shop.learner()
    won_sid = _checkout(client, course)
    shop.pay(won_sid)
    pi = shop.payment_intent(won_sid)
    opened = fake_stripe.dispute_event("created", pi, 12000, "needs_response", dispute_id="dp_won")
    assert shop.webhook(opened).status_code == 200 and shop.webhook(opened).status_code == 200
    assert courses.enrolments(user)[0][2] == "cancelled" and shop.order(won_sid).status == "disputed"
    assert courses.seats_taken(course) == 0
    assert shop.webhook(fake_stripe.dispute_event("closed", pi, 12000, "won", dispute_id="dp_won")).status_code == 200
    assert courses.enrolments(user) == [(course.id, NEXT_MONTH, "upcoming", "card")]
    assert courses.seats_taken(course) == 1 and shop.order(won_sid).status == "paid"

    other = make_course()
    lost_sid = _checkout(client, other)
    shop.pay(lost_sid)
    pi = shop.payment_intent(lost_sid)
    shop.webhook(fake_stripe.dispute_event("created", pi, 12000, "needs_response", dispute_id="dp_lost"))
    shop.webhook(fake_stripe.dispute_event("closed", pi, 12000, "lost", dispute_id="dp_lost"))
    assert courses.enrolments(user)[1][2] == "cancelled" and shop.order(lost_sid).status == "disputed"
    assert shop.balance(user) == 0
    verify_ledger()


def test_chargeback_won_after_the_learner_enrolled_again_is_flagged(shop, courses, make_course, fake_stripe,
                                                                    verify_ledger):
    course = make_course(price=5)
    user, client = shop.learner(credits=5)
    sid = _checkout(client, course)
    shop.pay(sid)
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.dispute_event("created", pi, 12000, "needs_response", dispute_id="dp_1"))
    page = client.get(f"/courses/{course.slug}?start_date={TODAY.isoformat()}").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    client.submit(f"/courses/{course.slug}/enrol", {"start_date": TODAY.isoformat(), "form_token": token})
    assert shop.webhook(fake_stripe.dispute_event("closed", pi, 12000, "won", dispute_id="dp_1")).status_code == 200
    statuses = sorted((paid_by, status) for _, _, status, paid_by in courses.enrolments(user))
    assert statuses == [("card", "cancelled"), ("credits", "active")]
    assert shop.order(sid).needs_refund and shop.balance(user) == 0
    verify_ledger()


def test_learner_who_enrolled_with_credits_while_paying_is_flagged_for_a_refund(
        shop, courses, make_course, fake_stripe, verify_ledger):
    """The fulfilment cannot make a second enrolment: the webhook still answers 200 (no
    retry loop), the order stays paid and is flagged, the learner is told, an admin refunds."""
    course = make_course("Forklift", price=5)
    user, client = shop.learner(credits=5)
    sid = _checkout(client, course, TODAY)
    page = client.get(f"/courses/{course.slug}?start_date={TODAY.isoformat()}").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    assert client.submit(f"/courses/{course.slug}/enrol", {"start_date": TODAY.isoformat(),
                                                           "form_token": token}).status_code == 303
    event = shop.pay(sid, deliver=False)
    assert shop.webhook(event).status_code == 200
    assert shop.webhook(event).status_code == 200  # a replay changes nothing either
    order = shop.order(sid)
    assert order.status == "paid" and order.needs_refund and "already holds a live enrolment" in order.problem
    assert courses.enrolments(user) == [(course.id, TODAY, "active", "credits")]
    assert shop.balance(user) == 0  # the credits were spent once, by the credit enrolment
    success = client.get(f"/checkout/success?session_id={sid}").get_data(as_text=True)
    assert "You were already enrolled in this course, so no second enrolment was made." in success
    assert "This payment will be refunded." in client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "This payment will be refunded." in shop.outbox()[0]["body"]

    _, admin = shop.learner(admin=True)
    listing = admin.get("/admin/orders").get_data(as_text=True)
    assert 'data-testid="needs-refund"' in listing and "Needs refund" in listing
    assert f"#{order.id}" in admin.get("/admin/orders?status=needs-refund").get_data(as_text=True)
    detail = admin.get(f"/admin/orders/{order.id}").get_data(as_text=True)
    assert "Paid but not delivered: refund this order" in detail
    assert _admin_full_refund(admin, order.id).status_code == 303
    assert shop.order(sid).status == "refunded" and not shop.order(sid).needs_refund
    assert f"#{order.id}" not in admin.get("/admin/orders?status=needs-refund").get_data(as_text=True)
    assert courses.enrolments(user) == [(course.id, TODAY, "active", "credits")]  # untouched
    assert shop.balance(user) == 0
    verify_ledger()


def test_credit_enrolment_racing_the_card_fulfilment_leaves_one_enrolment(
        shop, courses, make_course, fake_stripe, live_server, verify_ledger):
    course = make_course(price=5, capacity=10)
    user, client = shop.learner(credits=5)
    sid = _checkout(client, course, TODAY)
    event = fake_stripe.complete(sid, deliver=False)
    page = client.get(f"/courses/{course.slug}?start_date={TODAY.isoformat()}").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    barrier, results = threading.Barrier(2), {}

    def webhook():
        barrier.wait()
        results["hook"] = fake_stripe.deliver(event, live_server + "/stripe/webhook")

    def enrol():
        barrier.wait()
        results["enrol"] = client.submit(f"/courses/{course.slug}/enrol",
                                         {"start_date": TODAY.isoformat(), "form_token": token}).status_code

    threads = [threading.Thread(target=webhook), threading.Thread(target=enrol)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["hook"] == 200  # never a 5xx retry loop, whoever wins
    [(_, _, _, paid_by)] = courses.enrolments(user)
    order = shop.order(sid)
    if paid_by == "card":
        assert results["enrol"] == 409 and shop.balance(user) == 5 and not order.needs_refund
    else:
        assert results["enrol"] == 303 and shop.balance(user) == 0 and order.needs_refund
    assert order.status == "paid" and courses.seats_taken(course) == 1
    verify_ledger()


def test_two_card_orders_for_one_course_enrol_once(shop, courses, make_course, fake_stripe, verify_ledger):
    course = make_course()
    user, client = shop.learner()
    first, second = _checkout(client, course), _checkout(client, course)  # two tabs
    shop.pay(first)
    shop.pay(second)
    assert [e[3] for e in courses.enrolments(user)] == ["card"]
    assert (shop.order(first).needs_refund, shop.order(second).needs_refund) == (False, True)
    assert courses.seats_taken(course) == 1
    verify_ledger()


def test_cancelling_on_stripe_returns_to_the_course_and_paying_again_works(shop, courses, make_course, fake_stripe,
                                                                           verify_ledger):
    course = make_course("First aid", price_cents=12000)
    user, client = shop.learner()
    first = _checkout(client, course)
    cancel = urlsplit(fake_stripe.sessions[first]["cancel_url"])
    response = client.get(f"{cancel.path}?{cancel.query}")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/courses/{course.slug}")
    assert "Payment cancelled: nothing was charged." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert shop.order(first).status == "expired" and fake_stripe.sessions[first]["status"] == "expired"
    assert courses.enrolments(user) == []
    second = _checkout(client, course)  # changed their mind
    shop.pay(second)
    assert [e[3] for e in courses.enrolments(user)] == ["card"]
    assert shop.order(second).status == "paid" and shop.order(first).status == "expired"
    verify_ledger()


def test_course_pages_speak_french(shop, make_course):
    course = make_course("Secourisme")
    _, client = shop.learner()
    client.submit("/lang", {"lang": "fr"})
    page = client.get(f"/courses/{course.slug}?start_date={NEXT_MONTH.isoformat()}").get_data(as_text=True)
    assert "Payer 120,00\xa0€ par carte" in page
    sid = _checkout(client, course)
    shop.pay(sid)
    success = client.get(f"/checkout/success?session_id={sid}").get_data(as_text=True)
    assert "Paiement reçu : vous êtes inscrit à Secourisme" in success
