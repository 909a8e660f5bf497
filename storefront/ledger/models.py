"""The credit ledger's tables. Rules: ../shared/design/ledger.md.

Every change of a balance is one append-only `Entry`; credits live in `Lot`s; each
`Movement` says how much one entry changed one lot. Three sums must always agree:
account.balance == sum(entry.delta) == sum(lot.remaining), and for each lot
remaining == sum(movement.amount), for each entry delta == sum(movement.amount).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import UTCDateTime, utcnow
from ..extensions import db


class Kind:
    PURCHASE = "purchase"
    ADMIN_GRANT = "admin-grant"
    ADMIN_DEBIT = "admin-debit"
    SPEND = "spend"
    SPEND_REVERSAL = "spend-reversal"
    EXPIRY = "expiry"
    CLAWBACK = "clawback"
    CLAWBACK_REVERSAL = "clawback-reversal"
    IMPORT = "import"

    CREDITING = (PURCHASE, ADMIN_GRANT, IMPORT)  # create a new lot
    ALL = (PURCHASE, ADMIN_GRANT, ADMIN_DEBIT, SPEND, SPEND_REVERSAL, EXPIRY, CLAWBACK,
           CLAWBACK_REVERSAL, IMPORT)


class ActorType:
    LEARNER = "learner"
    ADMIN = "admin"
    PROVIDER = "provider"
    SYSTEM = "system"
    ALL = (LEARNER, ADMIN, PROVIDER, SYSTEM)


class Account(db.Model):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    balance: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user = relationship("User", backref=db.backref("account", uselist=False))


class Entry(db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        CheckConstraint("requested >= 0", name="requested_not_negative"),
        CheckConstraint(
            "kind IN ('purchase', 'admin-grant', 'admin-debit', 'spend', 'spend-reversal', "
            "'expiry', 'clawback', 'clawback-reversal', 'import')", name="kind"),
        CheckConstraint("actor_type IN ('learner', 'admin', 'provider', 'system')", name="actor_type"),
        Index("ix_ledger_entries_account_created", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    delta: Mapped[int]
    # What the caller asked for: equals |delta| except where less could be done (a
    # clawback of credits already spent); replays are compared against it.
    requested: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    # The idempotency key: one effect per business or external reference.
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    balance_after: Mapped[int]
    # A reversal names the entry it undoes; UNIQUE so nothing is undone twice, whatever
    # reference the second attempt carries.
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    account = relationship(Account)
    actor = relationship("User", foreign_keys=[actor_id])
    reverses = relationship("Entry", remote_side=[id], foreign_keys=[reverses_id])
    movements = relationship("Movement", back_populates="entry", order_by="Movement.id")


class Lot(db.Model):
    __tablename__ = "ledger_lots"
    __table_args__ = (
        CheckConstraint("original > 0", name="original_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= original", name="remaining_in_range"),
        CheckConstraint("paid_cents IS NULL OR paid_cents >= 0", name="paid_not_negative"),
        Index("ix_ledger_lots_account_open", "account_id", "remaining"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    original: Mapped[int]
    remaining: Mapped[int]
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What was paid for the whole lot (minor units), for the liability report; None for
    # credits given away (admin grants, imports).
    paid_cents: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    entry = relationship(Entry, foreign_keys=[entry_id])

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class Movement(db.Model):
    """How much one entry added to (+) or took from (-) one lot."""

    __tablename__ = "ledger_movements"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("ledger_lots.id"), index=True)
    amount: Mapped[int]

    entry = relationship(Entry, back_populates="movements")
    lot = relationship(Lot)
