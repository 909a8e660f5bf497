"""Admin catalogue: create, edit, publish and unpublish courses.

Every change is audited in the same transaction. Unpublishing only hides a course
from the catalogue: existing enrolments are untouched (they live in their own table).
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..catalog.models import Course
from ..enrolment.models import Enrolment
from ..extensions import db
from ..web import admin_required, render
from ..money import from_cents, to_cents
from .forms import CourseForm

bp = Blueprint("admin_courses", __name__, url_prefix="/admin/courses")

FIELDS = ("title", "slug", "summary", "description", "price_credits", "price_cents", "capacity",
          "duration_days", "last_start_date", "refundable", "published")


def _course_or_404(course_id: int) -> Course:
    course = db.session.get(Course, course_id)
    if course is None:
        abort(404)
    return course


def _jsonable(value):
    return value.isoformat() if isinstance(value, date) else value


@bp.get("")
@admin_required
def index():
    counts = (select(Enrolment.course_id, func.count().label("live"))
              .where(Enrolment.cancelled_at.is_(None)).group_by(Enrolment.course_id).subquery())
    rows = db.session.execute(
        select(Course, func.coalesce(counts.c.live, 0))
        .join(counts, counts.c.course_id == Course.id, isouter=True)
        .order_by(Course.title, Course.id)).all()
    return render("admin_courses/index.html", rows=rows)


def _apply(form: CourseForm, course: Course) -> dict:
    """Copy the form onto the course; returns {field: [old, new]} for the audit trail."""
    values = {
        "title": form.title.data.strip(), "slug": form.slug.data.strip(),
        "summary": (form.summary.data or "").strip(), "description": (form.description.data or "").strip(),
        "price_credits": form.price_credits.data, "price_cents": to_cents(form.price_money.data),
        "capacity": form.capacity.data, "duration_days": form.duration_days.data,
        "last_start_date": form.last_start_date.data, "refundable": bool(form.refundable.data),
        "published": bool(form.published.data)}
    changes = {}
    for name in FIELDS:
        old = getattr(course, name, None)
        if old != values[name]:
            changes[name] = [_jsonable(old), _jsonable(values[name])]
            setattr(course, name, values[name])
    return changes


def _save(form: CourseForm, course: Course, action: str):
    """Validate against the database too (slug taken, capacity below seats taken)."""
    if course.id is not None and form.capacity.data is not None and form.capacity.data < course.seats_taken:
        form.capacity.errors.append(_("%(num)d seats are already taken: the capacity cannot be lower.",
                                      num=course.seats_taken))
        return None
    try:
        with db.session.begin_nested():
            changes = _apply(form, course)
            db.session.add(course)
            db.session.flush()
    except IntegrityError:
        form.slug.errors.append(_("Another course already uses this address."))
        return None
    if changes:
        audit.record(current_user, action, target=course, **changes)
    return course


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    form = CourseForm(data={"duration_days": 30, "refundable": True})
    if form.validate_on_submit():
        course = _save(form, Course(), "course-created")
        if course is not None:
            flash(_("Course “%(title)s” created.", title=course.title), "success")
            return redirect(url_for("admin_courses.index"), code=303)
    return render("admin_courses/form.html", form=form, course=None, status=422 if form.errors else 200)


@bp.route("/<int:course_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(course_id):
    course = _course_or_404(course_id)
    form = CourseForm(obj=course)
    if not form.is_submitted():
        form.price_money.data = from_cents(course.price_cents)
    if form.validate_on_submit():
        if _save(form, course, "course-updated") is not None:
            flash(_("Course “%(title)s” saved.", title=course.title), "success")
            return redirect(url_for("admin_courses.index"), code=303)
    return render("admin_courses/form.html", form=form, course=course, status=422 if form.errors else 200)


def _set_published(course_id: int, published: bool):
    course = _course_or_404(course_id)
    if course.published != published:
        course.published = published
        audit.record(current_user, "course-published" if published else "course-unpublished", target=course,
                     slug=course.slug)
    flash(_("“%(title)s” is now visible in the catalogue.", title=course.title) if published else
          _("“%(title)s” is hidden from the catalogue; existing enrolments are kept.", title=course.title),
          "success")
    return redirect(url_for("admin_courses.index"), code=303)


@bp.post("/<int:course_id>/publish")
@admin_required
def publish(course_id):
    return _set_published(course_id, True)


@bp.post("/<int:course_id>/unpublish")
@admin_required
def unpublish(course_id):
    return _set_published(course_id, False)
