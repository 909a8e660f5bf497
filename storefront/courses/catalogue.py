"""Read side of the course catalogue: search, filters, start dates, the pack offer.

Every function here is a fixed number of queries whatever the catalogue size or the
learner's history (no N+1): the catalogue page is one COUNT, one page query and one
query for the "enrolled" badges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, or_, select

from ..catalog.models import Course, Pack
from ..db import escape_like
from ..extensions import db
from ..ledger.service import MAX_AMOUNT
from ..web import parse_int

PAGE_SIZE = 20


@dataclass
class Filters:
    """The catalogue's query string, parsed; `errors` holds what could not be used."""

    q: str = ""
    min_price: int | None = None
    max_price: int | None = None
    available: bool = False
    page: int = 1
    errors: list[str] = field(default_factory=list)

    def args(self, **changes) -> dict:
        """Query-string arguments for links (pagination keeps the filters)."""
        values = {"q": self.q or None, "min_price": self.min_price, "max_price": self.max_price,
                  "available": "1" if self.available else None, "page": self.page}
        values.update(changes)
        if values["page"] == 1:
            values["page"] = None
        return {k: v for k, v in values.items() if v is not None}


def parse_filters(args, gettext) -> Filters:
    filters = Filters(q=(args.get("q") or "").strip()[:100], available=args.get("available") in ("1", "on", "true"))
    for name in ("min_price", "max_price"):
        raw = (args.get(name) or "").strip()
        if raw:
            value = parse_int(raw, minimum=0, maximum=MAX_AMOUNT)  # no course costs more
            if value is None:
                filters.errors.append(gettext("Prices are whole numbers of credits: %(value)s was ignored.", value=raw[:20]))
            setattr(filters, name, value)
    if filters.min_price is not None and filters.max_price is not None and filters.min_price > filters.max_price:
        filters.errors.append(gettext("The lowest price is above the highest: the price range was ignored."))
        filters.min_price = filters.max_price = None
    filters.page = parse_int(args.get("page"), minimum=1, maximum=100_000) or 1
    return filters


def open_for_enrolment(on: date):
    """SQL condition: a seat is left and the last start date has not passed."""
    return (or_(Course.capacity.is_(None), Course.seats_taken < Course.capacity)
            & or_(Course.last_start_date.is_(None), Course.last_start_date >= on))


def is_open(course: Course, on: date) -> bool:
    """`open_for_enrolment`, for a course already loaded."""
    return course.seats_left != 0 and (course.last_start_date is None or course.last_start_date >= on)


def search(filters: Filters, on: date) -> tuple[list[Course], int]:
    """One page of published courses matching the filters, and the total count."""
    stmt = select(Course).where(Course.published.is_(True))
    if filters.q:
        pattern = f"%{escape_like(filters.q.lower())}%"
        stmt = stmt.where(or_(func.lower(Course.title).like(pattern, escape="\\"),
                              func.lower(Course.summary).like(pattern, escape="\\")))
    if filters.min_price is not None:
        stmt = stmt.where(Course.price_credits >= filters.min_price)
    if filters.max_price is not None:
        stmt = stmt.where(Course.price_credits <= filters.max_price)
    if filters.available:
        stmt = stmt.where(open_for_enrolment(on))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    courses = db.session.scalars(stmt.order_by(Course.title, Course.id)
                                 .offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return list(courses), total


def published_course(slug: str) -> Course | None:
    return db.session.scalar(select(Course).where(Course.slug == slug, Course.published.is_(True)))


def next_start_dates(course: Course, on: date, count: int = 3) -> list[date]:
    """A few suggestions: today, next Monday, the first of next month (within the window)."""
    monday = on + timedelta(days=(7 - on.weekday()) % 7 or 7)
    first = (on.replace(day=1) + timedelta(days=32)).replace(day=1)
    candidates = sorted({on, monday, first})
    last = course.last_start_date
    return [d for d in candidates if last is None or d <= last][:count]


def pack_covering(shortfall: int) -> Pack | None:
    """The smallest active pack that brings the balance up to the price."""
    return db.session.scalar(select(Pack).where(Pack.active.is_(True), Pack.credits >= shortfall)
                             .order_by(Pack.credits, Pack.price_cents, Pack.id).limit(1))
