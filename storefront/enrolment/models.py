"""The enrolment table.

One row per enrolment, never deleted: a cancellation stamps `cancelled_at`. The rule
"a learner has at most one live enrolment per course" is enforced by the database
through `live_key`: it holds "<user_id>:<course_id>" while the enrolment is live and
is set to NULL when it is cancelled (or when an ended one makes room for a new one).
A UNIQUE column with NULLs allowed behaves the same on SQLite and PostgreSQL (NULLs are
distinct), and unlike a partial index it needs no dialect-specific DDL in the migration.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import UTCDateTime, utcnow
from ..extensions import db


class Status:
    UPCOMING = "upcoming"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


class PaidBy:
    CREDITS = "credits"
    CARD = "card"


def live_key(user_id: int, course_id: int) -> str:
    return f"{user_id}:{course_id}"


def order_reference(order_id: int) -> str:
    """Ties a card-paid enrolment to the order that paid for it (UNIQUE: once per order)."""
    return f"order:{order_id}"


class Enrolment(db.Model):
    __tablename__ = "enrolments"
    __table_args__ = (
        CheckConstraint("end_date > start_date", name="ends_after_start"),
        CheckConstraint("credits_spent >= 0", name="credits_not_negative"),
        CheckConstraint("paid_by IN ('credits', 'card')", name="paid_by"),
        # The same form submitted twice (double click, retry) is one enrolment.
        UniqueConstraint("user_id", "form_token", name="uq_enrolments_user_form_token"),
        Index("ix_enrolments_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)  # start_date + the course's duration
    credits_spent: Mapped[int] = mapped_column(default=0)
    paid_by: Mapped[str] = mapped_column(String(8), default=PaidBy.CREDITS)
    # "enrol:<id>" in the ledger for credits (set in the same transaction, right after
    # the row gets its id); None for card payments.
    ledger_reference: Mapped[str | None] = mapped_column(String(200), unique=True)
    # "order:<id>" for card payments: the fulfilment creates the enrolment once.
    order_reference: Mapped[str | None] = mapped_column(String(200), unique=True)
    form_token: Mapped[str | None] = mapped_column(String(64))
    live_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    course = relationship("Course", lazy="joined", innerjoin=True)
    user = relationship("User")

    def status(self, today: date | None = None) -> str:
        today = today or date.today()
        if self.cancelled_at is not None:
            return Status.CANCELLED
        if today < self.start_date:
            return Status.UPCOMING
        if today < self.end_date:
            return Status.ACTIVE
        return Status.ENDED

    def cancellable(self, today: date | None = None) -> bool:
        """Credits come back only before the start, and only where the course allows it."""
        return (self.status(today) == Status.UPCOMING and self.paid_by == PaidBy.CREDITS
                and self.course.refundable)

    def __repr__(self) -> str:
        return f"<Enrolment {self.id} user={self.user_id} course={self.course_id} {self.start_date}>"
