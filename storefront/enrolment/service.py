"""Enrolment rules: one transaction takes a seat, spends the credits, writes the row.

Lock order, the same in every operation so that two of them never deadlock on
PostgreSQL: the course row (seat counter) first, then the enrolment, then the ledger
account. Taking the seat is a conditional UPDATE on `courses.seats_taken`, so
enrolments in one course are serialised by that row lock on PostgreSQL and by BEGIN
IMMEDIATE on SQLite; everything read after it is current.

Services only flush; the request (or `write_transaction`) commits once. Every
operation runs in a SAVEPOINT, so a domain error leaves nothing behind.
"""
from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.util import identity_key

from ..catalog.models import Course
from ..db import utcnow
from ..extensions import db
from ..ledger import service as ledger
from .models import Enrolment, PaidBy, Status, live_key, order_reference

FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# The latest start a learner may choose, even in a course with no last start date: a
# date further ahead is a typing mistake (and near 9999-12-31 the course would end
# after the last day of the calendar).
START_HORIZON = timedelta(days=3650)


class EnrolmentError(Exception):
    """A request the enrolment rules refuse; nothing was changed."""


class AlreadyEnrolled(EnrolmentError):
    def __init__(self, enrolment: Enrolment | None = None):
        self.enrolment = enrolment
        super().__init__("already enrolled in this course")


class CourseFull(EnrolmentError):
    pass


class CourseNotAvailable(EnrolmentError):
    """Unknown or unpublished course."""


class InvalidStartDate(EnrolmentError):
    MALFORMED, PAST, TOO_LATE = "malformed", "past", "too-late"

    def __init__(self, problem: str, last: date | None = None):
        self.problem, self.last = problem, last
        super().__init__(f"invalid start date ({problem})")


class FormAlreadyUsed(EnrolmentError):
    """The form token was already used for another course."""


class NotCancellable(EnrolmentError):
    pass


def today() -> date:
    """The shop's calendar day (UTC, like every date stored)."""
    return utcnow().date()


def parse_start_date(value) -> date:
    """A date from the form (YYYY-MM-DD); anything else is `InvalidStartDate`."""
    text = (value or "").strip() if isinstance(value, str) else value
    if isinstance(text, date):
        return text
    if not text:
        return today()
    try:
        return date.fromisoformat(text) if len(text) == 10 else _malformed()
    except ValueError:
        return _malformed()


def _malformed():
    raise InvalidStartDate(InvalidStartDate.MALFORMED)


def check_start_date(start: date, last_start_date: date | None, on: date | None = None) -> date:
    """The start date, if the learner may start then: not in the past, not after the
    course's last start date, and not more than START_HORIZON ahead (TOO_LATE, with
    the latest possible date)."""
    on = on or today()
    if start < on:
        raise InvalidStartDate(InvalidStartDate.PAST, last_start_date)
    latest = min(on + START_HORIZON, last_start_date or date.max)
    if start > latest:
        raise InvalidStartDate(InvalidStartDate.TOO_LATE, latest)
    return start


def live_enrolment(user_id: int, course_id: int) -> Enrolment | None:
    return db.session.scalar(select(Enrolment).where(Enrolment.live_key == live_key(user_id, course_id)))


def _replay(user_id: int, form_token: str | None, course_id: int) -> Enrolment | None:
    """The enrolment a twin submission of the same form already made, if any."""
    if not form_token:
        return None
    first = db.session.scalar(select(Enrolment).where(
        Enrolment.user_id == user_id, Enrolment.form_token == form_token))
    if first is not None and first.course_id != course_id:
        raise FormAlreadyUsed("this form was already used for another course")
    return first


def _take_seat(course_id: int, *, enforce_capacity: bool, published_only: bool):
    """Atomically count one more seat; returns the course's current terms, or None."""
    stmt = (update(Course).where(Course.id == course_id)
            .values(seats_taken=Course.seats_taken + 1)
            .returning(Course.price_credits, Course.duration_days, Course.last_start_date)
            .execution_options(synchronize_session=False))
    if enforce_capacity:
        stmt = stmt.where(or_(Course.capacity.is_(None), Course.seats_taken < Course.capacity))
    if published_only:
        stmt = stmt.where(Course.published.is_(True))
    return db.session.execute(stmt).first()


def _forget_course(course_id: int) -> None:
    """The counter changed by UPDATE: drop any stale copy the session holds."""
    course = db.session.identity_map.get(identity_key(Course, course_id))
    if course is not None:
        db.session.expire(course, ["seats_taken"])


def _release(enrolment_id: int, course_id: int) -> bool:
    """Cancel the enrolment and free its seat, unless it is cancelled already (False:
    the caller's savepoint must be rolled back, to undo the seat change). Lock order:
    the course row first, then the enrolment (see the module docstring)."""
    db.session.execute(update(Course).where(Course.id == course_id, Course.seats_taken > 0)
                       .values(seats_taken=Course.seats_taken - 1)
                       .execution_options(synchronize_session=False))
    done = db.session.execute(
        update(Enrolment).where(Enrolment.id == enrolment_id, Enrolment.cancelled_at.is_(None))
        .values(cancelled_at=utcnow(), live_key=None)
        .execution_options(synchronize_session=False))
    return done.rowcount == 1


def _make_room(user_id: int, course_id: int, on: date) -> None:
    """Refuse a second live enrolment; an ended one gives its key to the new one."""
    current = live_enrolment(user_id, course_id)
    if current is None:
        return
    if current.status(on) != Status.ENDED:
        raise AlreadyEnrolled(current)
    current.live_key = None
    db.session.flush()


def _add_enrolment(user_id: int, course_id: int, start: date, terms, **payment) -> Enrolment:
    """The new live enrolment (flushed: it has its id), ending after the course's duration
    as read in `terms` (from `_take_seat`); `payment`: how it was paid."""
    enrolment = Enrolment(user_id=user_id, course_id=course_id, start_date=start,
                          end_date=start + timedelta(days=terms.duration_days),
                          live_key=live_key(user_id, course_id), created_at=utcnow(), **payment)
    db.session.add(enrolment)
    db.session.flush()
    return enrolment


def enrol(user, course: Course, start_date, form_token: str | None = None) -> Enrolment:
    """Enrol `user` in `course` from `start_date`, paying the course's credit price.

    The price is read from the course row under its lock, never from the caller.
    A repeated `form_token` (double click, retry after a timeout) returns the first
    enrolment instead of charging again. Raises AlreadyEnrolled, CourseFull,
    CourseNotAvailable, InvalidStartDate, FormAlreadyUsed or ledger.InsufficientCredits.
    """
    user_id, course_id = user.id, course.id
    if form_token is not None and not FORM_TOKEN.match(form_token):
        form_token = None  # a mangled token only loses the double-submit protection
    first = _replay(user_id, form_token, course_id)
    if first is not None:
        return first
    start = parse_start_date(start_date)
    try:
        with db.session.begin_nested():
            return _enrol_with_credits(user, course_id, start, form_token)
    except (EnrolmentError, ledger.LedgerError, IntegrityError) as exc:
        # The twin submission may have won the race: its result is ours.
        first = _replay(user_id, form_token, course_id)
        if first is not None:
            return first
        if isinstance(exc, IntegrityError):  # the live_key UNIQUE: a concurrent enrolment
            raise AlreadyEnrolled(live_enrolment(user_id, course_id)) from exc
        raise
    finally:
        _forget_course(course_id)


def _enrol_with_credits(user, course_id: int, start: date, form_token: str | None) -> Enrolment:
    on = today()
    terms = _take_seat(course_id, enforce_capacity=True, published_only=True)
    if terms is None:
        course = db.session.get(Course, course_id, populate_existing=True)
        if course is None or not course.published:
            raise CourseNotAvailable("course not available")
        _make_room(user.id, course_id, on)  # "already enrolled" says more than "full"
        raise CourseFull("no seat left")
    check_start_date(start, terms.last_start_date, on)
    _make_room(user.id, course_id, on)
    enrolment = _add_enrolment(user.id, course_id, start, terms, credits_spent=terms.price_credits,
                               paid_by=PaidBy.CREDITS, form_token=form_token)
    entry = ledger.spend(user.id, terms.price_credits, reference=f"enrol:{enrolment.id}",
                         actor=ledger.Actor.of(user), reason=f"Enrolment #{enrolment.id}")
    enrolment.ledger_reference = entry.reference
    db.session.flush()
    return enrolment


def enrol_paid_by_card(order) -> Enrolment:
    """Fulfil a paid card order for a course: the enrolment, exactly once per order.

    Called by the payments fulfiller registry (`register_fulfiller("course", ...)`),
    from the webhook and the success page alike. `order` needs `id`, `user_id`,
    `course_id` (or `product_id`) and `details={"start_date": "YYYY-MM-DD"}`.
    The money is already taken, so the promise is kept: a start date that has passed
    meanwhile becomes today, and capacity or an unpublished course do not refuse it.
    The only refusal is AlreadyEnrolled (a live enrolment exists: the order needs a refund).
    """
    reference = order_reference(order.id)
    course_id = getattr(order, "course_id", None) or order.product_id
    first = db.session.scalar(select(Enrolment).where(Enrolment.order_reference == reference))
    if first is not None:
        return first
    details = getattr(order, "details", None) or {}
    try:
        start = parse_start_date(details.get("start_date"))
    except InvalidStartDate:
        start = today()
    start = max(start, today())
    try:
        with db.session.begin_nested():
            terms = _take_seat(course_id, enforce_capacity=False, published_only=False)
            if terms is None:
                raise CourseNotAvailable(f"no course {course_id}")
            _make_room(order.user_id, course_id, today())
            return _add_enrolment(order.user_id, course_id, start, terms, credits_spent=0,
                                  paid_by=PaidBy.CARD, order_reference=reference)
    except IntegrityError as exc:
        first = db.session.scalar(select(Enrolment).where(Enrolment.order_reference == reference))
        if first is not None:
            return first
        raise AlreadyEnrolled(live_enrolment(order.user_id, course_id)) from exc
    finally:
        _forget_course(course_id)


def admin_cancellable(enrolment: Enrolment, on: date | None = None) -> bool:
    """What an admin may cancel for a learner: a credit-paid enrolment that has not ended,
    refundable or not (a card payment is undone by refunding its order instead)."""
    return (enrolment.paid_by == PaidBy.CREDITS
            and enrolment.status(on or today()) in (Status.UPCOMING, Status.ACTIVE))


def cancel(enrolment: Enrolment, actor_user=None, *, reason: str | None = None, by_admin: bool = False) -> list:
    """Cancel a credit-paid enrolment: seat and credits come back. The learner may do so
    while it is upcoming and the course allows it; an admin (`by_admin`, with a reason)
    until it ends.

    Once only: the cancellation is a conditional UPDATE on `cancelled_at IS NULL`, and
    the ledger reversal is idempotent on "unenrol:<id>" besides.
    """
    allowed = admin_cancellable(enrolment) if by_admin else enrolment.cancellable(today())
    if not allowed:
        raise NotCancellable("this enrolment cannot be cancelled")
    actor_user = actor_user or enrolment.user
    enrolment_id, course_id = enrolment.id, enrolment.course_id
    with db.session.begin_nested():
        # Lock order: course, enrolment, account (see the module docstring).
        if not _release(enrolment_id, course_id):
            raise NotCancellable("already cancelled")
        entries = ledger.reverse(enrolment.ledger_reference, reference=f"unenrol:{enrolment_id}",
                                 actor=ledger.Actor.of(actor_user),
                                 reason=reason or f"Enrolment #{enrolment_id} cancelled")
    db.session.expire(enrolment, ["cancelled_at", "live_key"])
    _forget_course(course_id)
    return entries


def enrolled_course_ids(user_id: int, course_ids) -> set[int]:
    """Which of these courses the learner holds a live (not ended) enrolment in: one query."""
    ids = list(course_ids)
    if not ids:
        return set()
    return set(db.session.scalars(select(Enrolment.course_id).where(
        Enrolment.user_id == user_id, Enrolment.course_id.in_(ids),
        Enrolment.cancelled_at.is_(None), Enrolment.end_date > today())))


def enrolments_of(user_id: int) -> list[Enrolment]:
    """The learner's enrolments, newest first, each with its course (one query)."""
    return list(db.session.scalars(select(Enrolment).where(Enrolment.user_id == user_id)
                                   .order_by(Enrolment.start_date.desc(), Enrolment.id.desc())))
