"""Paying a course by card without a Stripe key: the simulated provider's test page goes
through the same fulfilment, and cancelling or declining leads back to the course."""
from __future__ import annotations

import pytest

from .course_helpers import NEXT_MONTH, buy_course, courses, make_course  # noqa: F401  (fixtures)


@pytest.fixture
def app_config():
    return {"STRIPE_SECRET_KEY": None, "MAIL_BACKEND": "memory"}


def _to_test_page(client, course) -> str:
    response = buy_course(client, course.slug)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "/checkout/simulated/cs_sim_" in location
    return "/" + location.split("://", 1)[-1].split("/", 1)[1]


def test_simulated_payment_enrols_once_without_credits(shop, courses, make_course, verify_ledger):
    course = make_course("Safety basics", price=5, price_cents=12000)
    user, client = shop.learner()  # 0 credits: the card is the way in
    page = client.get(f"/courses/{course.slug}?start_date={NEXT_MONTH.isoformat()}").get_data(as_text=True)
    assert "You need 5 more credits." in page and "Pay €120.00 by card" in page
    path = _to_test_page(client, course)
    assert "€120.00" in client.get(path).get_data(as_text=True)
    paid = client.submit(f"{path}/pay")
    assert paid.status_code == 303
    success = client.get(paid.headers["Location"]).get_data(as_text=True)
    assert "Payment received: you are enrolled in Safety basics, starting on" in success
    assert client.submit(f"{path}/pay").status_code == 303  # paying twice enrols once
    assert courses.enrolments(user) == [(course.id, NEXT_MONTH, "upcoming", "card")]
    assert shop.balance(user) == 0 and len(shop.outbox()) == 1
    assert "Card" in client.get("/my/courses").get_data(as_text=True)
    verify_ledger()


def test_cancel_and_decline_lead_back_to_the_course(shop, courses, make_course, verify_ledger):
    course = make_course()
    user, client = shop.learner()
    cancelled = client.submit(f"{_to_test_page(client, course)}/cancel", follow_redirects=True)
    assert cancelled.request.path == f"/courses/{course.slug}"
    assert "Payment cancelled: nothing was charged." in cancelled.get_data(as_text=True)
    declined = client.submit(f"{_to_test_page(client, course)}/decline", follow_redirects=True)
    assert declined.request.path == f"/courses/{course.slug}"
    assert "The card was declined: nothing was charged." in declined.get_data(as_text=True)
    assert courses.enrolments(user) == [] and courses.seats_taken(course) == 0
    orders = client.get("/orders").get_data(as_text=True)
    assert "expired" in orders and "failed" in orders
    verify_ledger()


def test_admin_refund_with_the_simulated_provider_cancels_the_enrolment(shop, courses, make_course,
                                                                          verify_ledger):
    course = make_course()
    user, client = shop.learner()
    client.submit(f"{_to_test_page(client, course)}/pay")
    _, admin = shop.learner(admin=True)
    review = admin.submit("/admin/orders/1/refund", {"mode": "full"}).get_data(as_text=True)
    assert "Refund €120.00" in review and "No credits are involved." in review
    form_id = review.split('name="form_id" value="')[1].split('"')[0]
    done = admin.submit("/admin/orders/1/refund", {"mode": "full", "confirm": "yes", "amount_cents": "12000",
                                                   "form_id": form_id})
    assert done.status_code == 303
    assert courses.enrolments(user)[0][2] == "cancelled" and courses.seats_taken(course) == 0
    assert shop.balance(user) == 0
    verify_ledger()
