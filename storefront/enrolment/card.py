"""Enrolments paid by card: the checks before the charge, and what happens to the
enrolment when the money goes back.

The enrolment itself is created by the payments fulfilment (`service.enrol_paid_by_card`),
tied to its order by `order_reference` ("order:<id>", UNIQUE). No credits are involved,
so nothing here touches the ledger.

Policy (the shop's decision, the same for the webhook, the admin refund page and the
simulated provider):
- money fully taken back (a full refund, partial refunds adding up to the total, or a
  chargeback over the whole amount) cancels the enrolment and frees its seat: the
  learner no longer paid for it. A partial refund (a goodwill gesture) keeps it.
- a chargeback suspends the enrolment as soon as it opens, like a pack's credits are
  clawed back when it opens; if the shop wins it, the enrolment is given back (the
  seat is taken again whatever the capacity: the promise was made when it was sold),
  unless the learner enrolled in the course again meanwhile.
- a refund that cancelled the enrolment and then failed or was cancelled at the provider
  (the money stayed with the shop) gives the enrolment back if a seat is still free and
  the learner has not enrolled again; otherwise the order is flagged for an admin to
  refund (the seat may have gone to someone else: no overbooking for a refund that was
  meant to end the enrolment anyway).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..catalog.models import Course
from ..extensions import db
from .models import Enrolment, Status, live_key, order_reference
from .service import (AlreadyEnrolled, CourseFull, _forget_course, _make_room, _release, _take_seat,
                      check_start_date, live_enrolment, parse_start_date, today)


def check_purchase(user, course: Course, start_date) -> date:
    """The credit enrolment's rules, checked before the learner is sent to pay.

    Returns the start date; raises InvalidStartDate, AlreadyEnrolled or CourseFull, so
    that nothing is charged for an enrolment that would be refused. (Fulfilment keeps
    the promise afterwards even if the course fills up while the learner pays.)
    """
    on = today()
    start = check_start_date(parse_start_date(start_date), course.last_start_date, on)
    current = live_enrolment(user.id, course.id)
    if current is not None and current.status(on) != Status.ENDED:
        raise AlreadyEnrolled(current)
    if course.capacity is not None and course.seats_taken >= course.capacity:
        raise CourseFull("no seat left")
    return start


def enrolment_for_order(order_id: int) -> Enrolment | None:
    return db.session.scalar(select(Enrolment).where(Enrolment.order_reference == order_reference(order_id)))


class _NothingToDo(Exception):
    pass


def revoke(order_id: int) -> Enrolment | None:
    """Cancel the enrolment this order paid for and free its seat; once (None when there
    is nothing to cancel: no enrolment for this order, or already cancelled)."""
    enrolment = enrolment_for_order(order_id)
    if enrolment is None or enrolment.cancelled_at is not None:
        return None
    course_id = enrolment.course_id
    try:
        with db.session.begin_nested():
            if not _release(enrolment.id, course_id):
                raise _NothingToDo  # a concurrent call cancelled it: undo our seat change
    except _NothingToDo:
        return None
    finally:
        _forget_course(course_id)
    db.session.expire(enrolment, ["cancelled_at", "live_key"])
    return enrolment


class _NoSeat(Exception):
    pass


def reinstate(order_id: int, *, enforce_capacity: bool = False) -> Enrolment | None:
    """Give back an enrolment that `revoke` cancelled.

    A chargeback the shop won takes the seat whatever the capacity (the promise was made
    when it was sold). A refund that failed (`enforce_capacity=True`) gives it back only
    if a seat is still free: the seat was offered to others when the refund cancelled
    it, and the refund was meant to end the enrolment anyway.

    Returns the enrolment, or None when it cannot be given back (the learner holds
    another live enrolment in the course now, or no seat is left): the order then needs
    an admin (a refund).
    """
    enrolment = enrolment_for_order(order_id)
    if enrolment is None or enrolment.cancelled_at is None:
        return enrolment
    user_id, course_id = enrolment.user_id, enrolment.course_id
    try:
        with db.session.begin_nested():
            if _take_seat(course_id, enforce_capacity=enforce_capacity, published_only=False) is None:
                raise _NoSeat
            _make_room(user_id, course_id, today())
            enrolment.cancelled_at = None
            enrolment.live_key = live_key(user_id, course_id)
            db.session.flush()
    except (AlreadyEnrolled, IntegrityError, _NoSeat):
        db.session.refresh(enrolment)
        return None
    finally:
        _forget_course(course_id)
    return enrolment
