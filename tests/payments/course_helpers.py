"""Courses sold by card: a course factory and the database reads the stories check.

Imported by the course-card test modules (fixtures imported into a module apply to it);
the courses area keeps its own factory in tests/courses/conftest.py, out of reach here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from storefront.catalog.models import Course
from storefront.db import write_transaction
from storefront.enrolment.models import Enrolment
from storefront.extensions import db
from storefront.payments.models import Order

NEXT_MONTH = date.today() + timedelta(days=31)


@dataclass
class CourseInfo:
    id: int
    slug: str
    title: str


@pytest.fixture
def make_course(app):
    """make_course(price_cents=12000, price=5, capacity=None, ...) -> CourseInfo, published."""
    counter = iter(range(1, 100_000))

    def factory(title=None, *, price=5, price_cents=12000, capacity=None, duration_days=30, published=True,
                last_start_date=date.today() + timedelta(days=365)):
        n = next(counter)
        title = title or f"Card course {n}"
        with app.app_context(), write_transaction() as session:
            course = Course(slug=f"card-course-{n}", title=title, summary=f"About {title}",
                            description=f"All about {title}.", price_credits=price, price_cents=price_cents,
                            currency="eur", capacity=capacity, duration_days=duration_days,
                            published=published, refundable=True, last_start_date=last_start_date)
            session.add(course)
            session.flush()
            return CourseInfo(course.id, course.slug, course.title)

    return factory


class CourseShop:
    """Reads the tests make about enrolments, seats and orders."""

    def __init__(self, app):
        self.app = app

    def enrolments(self, user) -> list[tuple]:
        """[(course_id, start_date, status, paid_by)] of the learner, oldest first."""
        with self.app.app_context():
            rows = db.session.scalars(select(Enrolment).where(Enrolment.user_id == user.id)
                                      .order_by(Enrolment.id)).all()
            return [(e.course_id, e.start_date, e.status(), e.paid_by) for e in rows]

    def seats_taken(self, course) -> int:
        with self.app.app_context():
            return db.session.get(Course, course.id).seats_taken

    def order_count(self) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(Order))


@pytest.fixture
def courses(app):
    return CourseShop(app)


def buy_course(client, slug: str, start: date | str = NEXT_MONTH, **extra):
    start = start.isoformat() if isinstance(start, date) else start
    return client.submit(f"/courses/{slug}/buy", {"start_date": start, **extra})
