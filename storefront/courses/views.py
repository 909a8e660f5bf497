"""Learner side of the courses: catalogue, course page with its enrol steps, my courses.

Enrolment is two plain forms, so it works without JavaScript: a GET form picks the
start date and shows the confirmation (cost, balance, balance after), whose POST form
enrols. With htmx the same forms swap only the enrol panel, and the ledger's
`credits_changed` signal adds `HX-Trigger: credits-changed` so the widget refreshes.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import format_date, gettext as _, ngettext
from flask_login import current_user, login_required
from sqlalchemy import select

from ..enrolment import card as card_enrolment, service as enrolment_service
from ..enrolment.models import Enrolment
from ..extensions import db
from ..ledger import service as ledger
from ..payments.providers import ProviderError
from ..payments.service import PaymentError
from ..web import is_htmx, render
from . import card, catalogue

bp = Blueprint("courses", __name__)


@bp.get("/courses")
def index():
    filters = catalogue.parse_filters(request.args, _)
    on = enrolment_service.today()
    courses, total = catalogue.search(filters, on)
    enrolled = (enrolment_service.enrolled_course_ids(current_user.id, (c.id for c in courses))
                if current_user.is_authenticated else set())
    pages = max(1, -(-total // catalogue.PAGE_SIZE))
    return render("courses/index.html", fragment="courses/_results.html", courses=courses,
                  total=total, filters=filters, enrolled=enrolled, pages=pages, today=on)


def _course_or_404(slug: str):
    course = catalogue.published_course(slug)
    if course is None:
        abort(404)
    return course


def _start_error(exc: enrolment_service.InvalidStartDate) -> str:
    if exc.problem == exc.PAST:
        return _("The start date cannot be in the past.")
    if exc.problem == exc.TOO_LATE:
        return _("The last possible start date for this course is %(date)s.",
                 date=format_date(exc.last, "long"))
    return _("Enter the start date as YYYY-MM-DD.")


def _panel(course, *, step: str = "choose", start=None, error: str | None = None,
           enrolment: Enrolment | None = None, status: int = 200):
    """The course page, or only its enrol panel for htmx, in the given step."""
    on = enrolment_service.today()
    start = start or on
    is_open = catalogue.is_open(course, on)
    ctx = {"course": course, "step": step, "start": start, "error": error, "today": on,
           "end": start + timedelta(days=course.duration_days),
           "start_dates": catalogue.next_start_dates(course, on), "enrolment": enrolment,
           # Paying by card is offered beside credits (also when credits fall short).
           "card_step": step, "card": course.price_cents is not None and is_open}
    if current_user.is_authenticated:
        g.credit_summary = summary = ledger.summary(current_user.id)
        ctx["balance"] = summary.available
        ctx["after"] = summary.available - course.price_credits
        if ctx["enrolment"] is None:
            ctx["enrolment"] = _current_enrolment(course, on)
        if ctx["enrolment"] is not None and step not in ("enrolled",):
            ctx["step"] = "already"
        elif step in ("choose", "confirm") and ctx["after"] < 0:
            ctx["step"] = "shortfall"
            ctx["shortfall"] = -ctx["after"]
            ctx["pack"] = catalogue.pack_covering(-ctx["after"])
        if ctx["step"] in ("choose", "confirm") and not is_open:
            ctx["step"] = "closed"
        if ctx["step"] == "confirm":
            ctx["form_token"] = uuid.uuid4().hex
    return render("courses/detail.html", fragment="courses/_enrol.html", status=status, **ctx)


def _current_enrolment(course, on):
    enrolment = enrolment_service.live_enrolment(current_user.id, course.id)
    return enrolment if enrolment is not None and enrolment.status(on) != "ended" else None


@bp.get("/courses/<slug>")
def detail(slug):
    course = _course_or_404(slug)
    if "start_date" not in request.args or not current_user.is_authenticated:
        return _panel(course)
    try:
        start = enrolment_service.check_start_date(
            enrolment_service.parse_start_date(request.args["start_date"]), course.last_start_date)
    except enrolment_service.InvalidStartDate as exc:
        return _panel(course, error=_start_error(exc), status=422)
    return _panel(course, step="confirm", start=start)


@bp.post("/courses/<slug>/buy")
@login_required
def buy(slug):
    """Pay the course's card price instead of credits.

    Every enrolment rule is checked BEFORE the charge (the learner must not pay for an
    enrolment that would be refused); the price is the course's, read here. The
    enrolment itself is made by the payments fulfilment once the payment is confirmed.
    """
    course = _course_or_404(slug)
    service = enrolment_service
    if course.price_cents is None:
        return _panel(course, error=_("This course cannot be paid by card."), status=409)
    try:
        start = card_enrolment.check_purchase(current_user, course, request.form.get("start_date"))
    except service.InvalidStartDate as exc:
        return _panel(course, error=_start_error(exc), status=422)
    except service.AlreadyEnrolled as exc:
        return _panel(course, error=_("You are already enrolled in this course."), enrolment=exc.enrolment,
                      status=409)
    except service.CourseFull:
        return _panel(course, error=_("Sorry, this course is full: nothing was charged."), status=409)
    try:
        order = card.start_checkout(current_user, course, start)
    except (ProviderError, PaymentError):
        return _panel(course, start=start, error=_("The payment service cannot be reached right now. Nothing "
                                                   "was charged; please try again in a moment."), status=503)
    return redirect(order.checkout_url, code=303)


@bp.post("/courses/<slug>/enrol")
@login_required
def enrol(slug):
    """Enrol at the course's current credit price; any price in the form is ignored."""
    course = _course_or_404(slug)
    service = enrolment_service
    try:
        enrolment = service.enrol(current_user, course, request.form.get("start_date"),
                                  request.form.get("form_token"))
    except service.InvalidStartDate as exc:
        return _panel(course, error=_start_error(exc), status=422)
    except service.AlreadyEnrolled as exc:
        return _panel(course, error=_("You are already enrolled in this course."),
                      enrolment=exc.enrolment, status=409)
    except service.CourseFull:
        return _panel(course, error=_("Sorry, this course is full: no credits were taken."), status=409)
    except service.CourseNotAvailable:
        abort(404)
    except service.FormAlreadyUsed:
        return _panel(course, error=_("This form was already used. Please try again."), status=409)
    except ledger.InsufficientCredits:
        # The panel then shows the shortfall and the pack that covers it.
        return _panel(course, step="confirm", status=409)
    message = _("Enrolled — starts on %(date)s.", date=format_date(enrolment.start_date, "long"))
    if is_htmx():
        return _panel(course, step="enrolled", enrolment=enrolment)
    flash(message, "success")
    return redirect(url_for("courses.detail", slug=course.slug), code=303)


def _mine(status: int = 200, message: str | None = None):
    enrolments = enrolment_service.enrolments_of(current_user.id)
    return render("courses/mine.html", fragment="courses/_mine.html", status=status,
                  enrolments=enrolments, today=enrolment_service.today(), message=message,
                  message_error=status >= 400)


@bp.get("/my/courses")
@login_required
def mine():
    return _mine()


@bp.post("/my/courses/<int:enrolment_id>/cancel")
@login_required
def cancel(enrolment_id):
    enrolment = db.session.scalar(select(Enrolment).where(
        Enrolment.id == enrolment_id, Enrolment.user_id == current_user.id))
    if enrolment is None:  # someone else's enrolment is not even there
        abort(404)
    try:
        enrolment_service.cancel(enrolment, current_user)
    except enrolment_service.NotCancellable:
        return _mine(status=409, message=_("This enrolment can no longer be cancelled."))
    message = ngettext("Enrolment cancelled: %(num)d credit returned.",
                       "Enrolment cancelled: %(num)d credits returned.", enrolment.credits_spent)
    if is_htmx():
        return _mine(message=message)
    flash(message, "success")
    return redirect(url_for("courses.mine"), code=303)
