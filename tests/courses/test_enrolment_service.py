"""The enrolment rules, exercised through the service on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import time_machine

from storefront.auth.models import User
from storefront.catalog.models import Course
from storefront.db import write_transaction
from storefront.enrolment import service
from storefront.enrolment.models import Enrolment
from storefront.extensions import db
from storefront.ledger import service as ledger

TODAY = date.today()
NEXT_MONTH = TODAY + timedelta(days=31)


@pytest.fixture
def do(app):
    """do(fn, *args): run fn(*args) in one committed unit of work, users passed as rows."""

    def run(fn, *args, **kwargs):
        with app.app_context(), write_transaction():
            args = [db.session.get(User, a.id) if hasattr(a, "email") else a for a in args]
            args = [db.session.get(Course, a.id) if hasattr(a, "slug") else a for a in args]
            result = fn(*args, **kwargs)
            if isinstance(result, Enrolment):
                return SimpleNamespace(id=result.id, start_date=result.start_date, end_date=result.end_date,
                                       credits_spent=result.credits_spent, status=result.status(),
                                       ledger_reference=result.ledger_reference, paid_by=result.paid_by)
            return result

    return run


def cancel_by_id(enrolment_id, user):
    return service.cancel(db.session.get(Enrolment, enrolment_id), user if user.id % 2 else None)


def seats_taken(app, course):
    with app.app_context():
        return db.session.get(Course, course.id).seats_taken


def test_enrol_spends_the_price_and_counts_a_seat(app, do, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5, capacity=3, duration_days=14)
    enrolment = do(service.enrol, learner, course, NEXT_MONTH, "token-0001")
    assert enrolment.status == "upcoming"
    assert enrolment.end_date == NEXT_MONTH + timedelta(days=14)
    assert enrolment.credits_spent == 5 and enrolment.paid_by == "credits"
    assert enrolment.ledger_reference == f"enrol:{enrolment.id}"
    assert balance_of(learner) == 15
    assert seats_taken(app, course) == 1
    verify_ledger()


def test_same_form_token_twice_charges_once(do, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5)
    first = do(service.enrol, learner, course, NEXT_MONTH, "token-double")
    again = do(service.enrol, learner, course, NEXT_MONTH, "token-double")
    assert again.id == first.id
    assert balance_of(learner) == 15
    verify_ledger()


def test_a_second_enrolment_in_the_same_course_is_refused(do, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5)
    do(service.enrol, learner, course, TODAY, "token-one-1")
    with pytest.raises(service.AlreadyEnrolled):
        do(service.enrol, learner, course, NEXT_MONTH, "token-two-2")
    assert balance_of(learner) == 15
    verify_ledger()


def test_full_course_refuses_without_charging(app, do, make_user, make_course, balance_of, verify_ledger):
    course = make_course(price=5, capacity=1)
    first, second = make_user(credits=10), make_user(credits=10)
    do(service.enrol, first, course, TODAY)
    with pytest.raises(service.CourseFull):
        do(service.enrol, second, course, TODAY)
    assert balance_of(second) == 10
    assert seats_taken(app, course) == 1
    verify_ledger()


def test_not_enough_credits_leaves_nothing_behind(app, do, make_user, make_course, enrolments_of, verify_ledger):
    learner, course = make_user(credits=4), make_course(price=5, capacity=2)
    with pytest.raises(ledger.InsufficientCredits) as info:
        do(service.enrol, learner, course, TODAY)
    assert info.value.shortfall == 1
    assert enrolments_of(learner) == []
    assert seats_taken(app, course) == 0
    verify_ledger()


@pytest.mark.parametrize("start, problem", [
    (TODAY - timedelta(days=1), "past"),
    (TODAY + timedelta(days=400), "too-late"),
    ("2025-13-40", "malformed"),
    ("next week", "malformed"),
    ("2025-1-1", "malformed"),
])
def test_bad_start_dates_are_refused(do, make_user, make_course, balance_of, start, problem, verify_ledger):
    learner, course = make_user(credits=20), make_course(last_start_date=TODAY + timedelta(days=365))
    with pytest.raises(service.InvalidStartDate) as info:
        do(service.enrol, learner, course, start)
    assert info.value.problem == problem
    assert balance_of(learner) == 20
    verify_ledger()


def test_last_start_date_itself_is_allowed(do, make_user, make_course):
    last = TODAY + timedelta(days=10)
    learner, course = make_user(credits=20), make_course(last_start_date=last)
    assert do(service.enrol, learner, course, last).start_date == last


def test_unpublished_course_is_not_available(do, make_user, make_course, balance_of):
    learner, course = make_user(credits=20), make_course(published=False)
    with pytest.raises(service.CourseNotAvailable):
        do(service.enrol, learner, course, TODAY)
    assert balance_of(learner) == 20


def test_cancel_returns_the_credits_once_and_frees_the_seat(app, do, make_user, make_course, balance_of,
                                                            enrolments_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5, capacity=1)
    enrolment = do(service.enrol, learner, course, NEXT_MONTH)
    do(cancel_by_id, enrolment.id, learner)
    assert balance_of(learner) == 20
    assert seats_taken(app, course) == 0
    with pytest.raises(service.NotCancellable):
        do(cancel_by_id, enrolment.id, learner)
    assert balance_of(learner) == 20
    with app.app_context():
        assert ledger.entry_by_reference(f"unenrol:{enrolment.id}").delta == 5
    # The seat and the course are free again for the same learner.
    do(service.enrol, learner, course, NEXT_MONTH)
    assert [s for _, _, s in enrolments_of(learner)] == ["upcoming", "cancelled"]
    assert balance_of(learner) == 15
    verify_ledger()


def test_started_or_non_refundable_enrolments_cannot_be_cancelled(do, make_user, make_course, balance_of,
                                                                 verify_ledger):
    learner = make_user(credits=20)
    started = do(service.enrol, learner, make_course(price=5), TODAY)
    locked = do(service.enrol, learner, make_course(price=5, refundable=False), NEXT_MONTH)
    for enrolment in (started, locked):
        with pytest.raises(service.NotCancellable):
            do(cancel_by_id, enrolment.id, learner)
    assert balance_of(learner) == 10
    verify_ledger()


def test_status_moves_from_upcoming_to_active_to_ended(do, make_user, make_course, enrolments_of):
    learner, course = make_user(credits=20), make_course(duration_days=10)
    do(service.enrol, learner, course, TODAY + timedelta(days=2))
    with time_machine.travel(TODAY + timedelta(days=5), tick=False):
        assert enrolments_of(learner)[0][2] == "active"
    with time_machine.travel(TODAY + timedelta(days=12), tick=False):
        assert enrolments_of(learner)[0][2] == "ended"


def test_an_ended_enrolment_makes_room_for_a_new_one(do, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5, duration_days=3)
    do(service.enrol, learner, course, TODAY)
    with time_machine.travel(TODAY + timedelta(days=10), tick=False):
        do(service.enrol, learner, course, TODAY + timedelta(days=10))
    assert balance_of(learner) == 10
    verify_ledger()


def test_cancel_after_the_lot_expired_returns_and_expires(do, make_user, make_course, balance_of, verify_ledger):
    from storefront.db import utcnow

    learner = make_user(credits=5, expires_at=utcnow() + timedelta(days=5))
    enrolment = do(service.enrol, learner, make_course(price=5), TODAY + timedelta(days=20))
    with time_machine.travel(TODAY + timedelta(days=8), tick=False):
        do(cancel_by_id, enrolment.id, learner)
    assert balance_of(learner) == 0  # a cancellation never extends a validity
    verify_ledger()


def order(id, user, course, start):
    return SimpleNamespace(id=id, user_id=user.id, course_id=course.id, details={"start_date": start})


def test_card_payment_enrols_exactly_once(app, do, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=0), make_course(price=5, capacity=1)
    paid = order(77, learner, course, NEXT_MONTH.isoformat())
    first = do(service.enrol_paid_by_card, paid)
    again = do(service.enrol_paid_by_card, paid)
    assert again.id == first.id
    assert (first.paid_by, first.credits_spent, first.start_date) == ("card", 0, NEXT_MONTH)
    assert balance_of(learner) == 0
    assert seats_taken(app, course) == 1
    with pytest.raises(service.NotCancellable):  # card refunds belong to payments
        do(cancel_by_id, first.id, learner)
    verify_ledger()


def test_card_payment_keeps_its_promise_when_late_or_full(do, make_user, make_course):
    course = make_course(price=5, capacity=1)
    do(service.enrol, make_user(credits=5), course, TODAY)
    late = do(service.enrol_paid_by_card, order(78, make_user(), course, (TODAY - timedelta(days=3)).isoformat()))
    assert late.start_date == TODAY
    garbled = do(service.enrol_paid_by_card, order(79, make_user(), course, "garbage"))
    assert garbled.start_date == TODAY


def test_card_payment_for_a_course_already_held_is_refused(do, make_user, make_course):
    learner, course = make_user(credits=5), make_course(price=5)
    do(service.enrol, learner, course, TODAY)
    with pytest.raises(service.AlreadyEnrolled):
        do(service.enrol_paid_by_card, order(80, learner, course, NEXT_MONTH.isoformat()))
