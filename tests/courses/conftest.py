"""Fixtures for the courses tests: a course factory and an enrol-by-HTTP helper."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from storefront.db import write_transaction

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@dataclass
class CourseInfo:
    id: int
    slug: str
    title: str
    price_credits: int


@pytest.fixture
def make_course(app):
    """make_course(price=5, capacity=None, ...) -> CourseInfo, committed and published."""
    from storefront.catalog.models import Course

    counter = iter(range(1, 100_000))

    def factory(title=None, *, slug=None, price=5, capacity=None, duration_days=30, published=True,
                refundable=True, last_start_date=date.today() + timedelta(days=365), summary=None,
                price_cents=None):
        n = next(counter)
        title = title or f"Course {n}"
        with app.app_context(), write_transaction() as session:
            course = Course(slug=slug or f"course-{n}", title=title, summary=summary or f"Summary of {title}",
                            description=f"All about {title}.", price_credits=price, price_cents=price_cents,
                            capacity=capacity, duration_days=duration_days, published=published,
                            refundable=refundable, last_start_date=last_start_date)
            session.add(course)
            session.flush()
            return CourseInfo(course.id, course.slug, course.title, course.price_credits)

    return factory


@pytest.fixture
def make_pack(app):
    from storefront.catalog.models import Pack

    def factory(name, credits, price_cents, active=True):
        with app.app_context(), write_transaction() as session:
            pack = Pack(name=name, credits=credits, price_cents=price_cents, currency="eur", active=active)
            session.add(pack)
            session.flush()
            return pack.id

    return factory


@pytest.fixture
def balance_of(app):
    from storefront.ledger import service as ledger

    def read(user):
        with app.app_context():
            return ledger.balance(user.id)

    return read


@pytest.fixture
def enrolments_of(app):
    """[(course_id, start_date, status)] of a user, straight from the database."""
    from storefront.enrolment import service

    def read(user):
        with app.app_context():
            return [(e.course_id, e.start_date, e.status()) for e in service.enrolments_of(user.id)]

    return read


def confirm_token(client, slug: str, start: date) -> str:
    """Walk the confirmation step like a browser: returns the form token to POST."""
    page = client.get(f"/courses/{slug}?start_date={start.isoformat()}").get_data(as_text=True)
    match = FORM_TOKEN.search(page)
    assert match, page
    return match.group(1)
