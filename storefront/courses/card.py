"""Courses sold by card: the "course" product of the payments pipeline.

`register()` plugs the fulfiller into payments (called by the app factory, so that the
payments package never imports the areas that sell through it). The fulfiller runs
inside `payments.fulfil_checkout`, under the order's row lock, once per order:

- fulfil: the enrolment (enrolment.service.enrol_paid_by_card, idempotent on the
  order). When it cannot be made (the learner enrolled meanwhile, with credits or
  another card order) it must not raise: a webhook answered 5xx would be retried by
  Stripe for days. The order is kept paid, `order.problem` says why, and the order
  shows as "needs refund" to admins; the learner is told on the success page, the
  receipt and the email.
- reclaim / restore: what a refund or a chargeback does to the enrolment, and what a
  chargeback won or a refund that failed gives back (policy in enrolment.card). Course orders grant no credits, so the ledger is never touched.

What the learner and admins are shown is kept in `order.details` (course slug, the
start date asked for, the enrolment's actual dates, the outcome), so the payments
pages need not know the courses' tables.
"""
from __future__ import annotations

import logging
from datetime import date

from flask import url_for

from ..catalog.models import Course
from ..enrolment import card as card_enrolment, service as enrolment_service
from ..payments import service as payments
from ..payments.adjustments import RESTORE_REFUND_FAILED as REFUND_FAILED, fully_covered_after

log = logging.getLogger(__name__)

PRODUCT = "course"
ENROLLED, ALREADY_ENROLLED, NOT_REINSTATED = "enrolled", "already-enrolled", "not-reinstated"
NOT_REINSTATED_AFTER_REFUND = "not-reinstated-refund"  # a failed refund: no seat left, or enrolled again


def start_checkout(user, course: Course, start: date):
    """The pending order for this course at its current card price (read here, on the
    server), and its checkout session; redirect the learner to `order.checkout_url`."""
    return payments.start_checkout(
        user, PRODUCT, product_id=course.id, unit_amount_cents=course.price_cents, currency=course.currency,
        description=course.title,
        details={"start_date": start.isoformat(), "course_slug": course.slug,
                 "return_path": url_for("courses.detail", slug=course.slug)})


def _update_details(order, **changes) -> None:
    order.details = {**(order.details or {}), **changes}  # a new dict: the JSON column is saved


def fulfil(order) -> None:
    try:
        enrolment = enrolment_service.enrol_paid_by_card(order)
    except (enrolment_service.AlreadyEnrolled, enrolment_service.CourseNotAvailable) as exc:
        existing = getattr(exc, "enrolment", None)
        why = (f"the learner already holds a live enrolment in course {order.product_id}"
               + (f" (enrolment #{existing.id})" if existing else "")
               if isinstance(exc, enrolment_service.AlreadyEnrolled) else f"course {order.product_id} is gone")
        order.problem = f"Paid but not fulfilled: {why}. Refund this order."
        _update_details(order, outcome=ALREADY_ENROLLED)
        log.warning("order %s: %s", order.id, order.problem)
        return
    _update_details(order, outcome=ENROLLED, enrolment_id=enrolment.id,
                    enrolled_start_date=enrolment.start_date.isoformat(), end_date=enrolment.end_date.isoformat())


def reclaim(order, reference: str, amount_cents: int, _credits: int) -> int:
    """A refund or chargeback: the enrolment goes once the whole payment is taken back."""
    if fully_covered_after(order, amount_cents) and card_enrolment.revoke(order.id) is not None:
        _update_details(order, revoked_by=reference)
        log.info("order %s: enrolment cancelled (%s)", order.id, reference)
    return 0  # no credits were granted, none are recovered


def restore(order, reclaim_reference: str, _reference: str, cause: str) -> int:
    """Give back the enrolment that a reclaim had cancelled, once the payment is no
    longer taken back in full.

    - a chargeback won: the enrolment this chargeback cancelled comes back whatever the
      capacity (the promise was made when it was sold);
    - a refund that failed or was cancelled (the money stayed with the shop): if the
      enrolment was cancelled because the money went back (by this refund or a later
      one) and what is left no longer covers the whole payment, it comes back when a
      seat is still free and the learner holds no other live enrolment in the course;
      otherwise the order is flagged for an admin (needs refund: the learner paid and
      has nothing).
    """
    revoked_by = (order.details or {}).get("revoked_by")
    refund_failed = cause == REFUND_FAILED
    if refund_failed:
        if revoked_by is None or fully_covered_after(order, 0):
            return 0
    elif revoked_by != reclaim_reference:
        return 0
    details = {k: v for k, v in order.details.items() if k != "revoked_by"}
    if card_enrolment.reinstate(order.id, enforce_capacity=refund_failed) is None:
        if refund_failed:
            order.problem = ("Refund failed, but the enrolment could not be given back: the course is full or "
                             "the learner enrolled in it again meanwhile. Refund this order.")
            details["outcome"] = NOT_REINSTATED_AFTER_REFUND
        else:
            order.problem = ("Chargeback won, but the enrolment could not be given back: the learner enrolled "
                             "in the course again meanwhile. Refund this order.")
            details["outcome"] = NOT_REINSTATED
        log.warning("order %s: %s", order.id, order.problem)
    else:
        log.info("order %s: enrolment given back (%s)", order.id, cause)
    order.details = details
    return 0


def register() -> None:
    payments.register_fulfiller(PRODUCT, fulfil, reclaim=reclaim, restore=restore)
