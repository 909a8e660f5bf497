"""What the shop sells: credit packs (for money) and courses (for credits)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import UTCDateTime, utcnow
from ..extensions import db


class Pack(db.Model):
    __tablename__ = "packs"
    __table_args__ = (
        CheckConstraint("credits > 0", name="credits_positive"),
        CheckConstraint("price_cents > 0", name="price_positive"),
        CheckConstraint("validity_days IS NULL OR validity_days > 0", name="validity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    credits: Mapped[int]
    price_cents: Mapped[int]  # minor units of `currency`
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    validity_days: Mapped[int | None]  # credits expire this many days after purchase
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Course(db.Model):
    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("price_credits > 0", name="price_credits_positive"),
        CheckConstraint("price_cents IS NULL OR price_cents > 0", name="price_cents_positive"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("duration_days > 0", name="duration_positive"),
        CheckConstraint("seats_taken >= 0", name="seats_taken_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    price_credits: Mapped[int]
    price_cents: Mapped[int | None]  # optional card price, minor units
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    capacity: Mapped[int | None]  # None: unlimited seats
    duration_days: Mapped[int] = mapped_column(default=30)
    last_start_date: Mapped[date | None] = mapped_column(Date)
    refundable: Mapped[bool] = mapped_column(default=True)  # cancellable until it starts
    published: Mapped[bool] = mapped_column(default=False, index=True)
    # Live enrolments holding a seat. Enrolment takes a seat with a conditional UPDATE
    # (... WHERE seats_taken < capacity), atomic on SQLite and PostgreSQL alike.
    seats_taken: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def seats_left(self) -> int | None:
        """None when the course has no capacity limit."""
        return None if self.capacity is None else max(self.capacity - self.seats_taken, 0)
