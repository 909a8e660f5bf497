"""Orders paid by card, and the refunds and disputes that happen to them afterwards.

An order is created before the learner is sent to the payment page (status `pending`)
and names exactly one Checkout Session (UNIQUE), so that whatever path reports the
payment (webhook, success page, reconcile) finds the same row and can only fulfil it
once. Refunds and disputes get their own rows keyed by the provider's ids (UNIQUE), so
a replayed event finds the row it already created. What could not be clawed back is
kept on the order for an admin to see.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import UTCDateTime, utcnow
from ..extensions import db


class Status:
    PENDING = "pending"
    PAID = "paid"
    PARTLY_REFUNDED = "partly-refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    EXPIRED = "expired"
    FAILED = "failed"
    ALL = (PENDING, PAID, PARTLY_REFUNDED, REFUNDED, DISPUTED, EXPIRED, FAILED)
    SETTLED = (PAID, PARTLY_REFUNDED, REFUNDED, DISPUTED)  # money was received

    # The state machine: anything else is a bug (or an event we must not act on).
    TRANSITIONS = {
        PENDING: {PAID, EXPIRED, FAILED},
        FAILED: {PAID},  # a declined async payment retried successfully within the session
        EXPIRED: set(),
        PAID: {PARTLY_REFUNDED, REFUNDED, DISPUTED},
        # Back towards paid: a refund that failed or was cancelled after it was counted.
        PARTLY_REFUNDED: {PAID, PARTLY_REFUNDED, REFUNDED, DISPUTED},
        REFUNDED: {PAID, PARTLY_REFUNDED, DISPUTED},
        DISPUTED: {PAID, PARTLY_REFUNDED, REFUNDED},
    }


class InvalidTransition(Exception):
    pass


_STATUS_SQL = ", ".join(f"'{s}'" for s in Status.ALL)


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("unit_amount_cents > 0", name="unit_amount_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="refunded_in_range"),
        CheckConstraint("credits_recovered >= 0 AND credits_unrecovered >= 0", name="clawback_not_negative"),
        Index("ix_orders_user_created", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # What is sold: fulfilment dispatches on it ("pack"; "course" later).
    product_type: Mapped[str] = mapped_column(String(32))
    product_id: Mapped[int | None]
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_amount_cents: Mapped[int]
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    # Product data frozen at purchase time (credits, validity, a course's start date...).
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=Status.PENDING, index=True)
    provider: Mapped[str] = mapped_column(String(16))  # "stripe" or "simulated"
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(Text)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    refunded_cents: Mapped[int] = mapped_column(default=0)
    credits_granted: Mapped[int] = mapped_column(default=0)
    credits_recovered: Mapped[int] = mapped_column(default=0)
    # Credits a refund or lost dispute should have taken back but that were already spent.
    credits_unrecovered: Mapped[int] = mapped_column(default=0)
    problem: Mapped[str | None] = mapped_column(Text)  # why fulfilment was refused
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    user = relationship("User")
    refunds = relationship("Refund", back_populates="order", order_by="Refund.id")
    disputes = relationship("Dispute", back_populates="order", order_by="Dispute.id")

    @property
    def purchase_reference(self) -> str:
        """The ledger reference of the credits this order bought."""
        return f"checkout:{self.checkout_session_id}"

    @property
    def is_settled(self) -> bool:
        return self.status in Status.SETTLED

    @property
    def needs_refund(self) -> bool:
        """Paid, but the fulfiller could not deliver (e.g. the learner was already enrolled
        in the course): an admin must refund what is still not refunded."""
        return self.is_settled and self.problem is not None and self.refunded_cents < self.amount_cents

    @property
    def return_path(self) -> str | None:
        """Where the learner goes back to when the checkout is cancelled or declined (a
        path set by the server when the checkout started; None: the credit packs)."""
        path = (self.details or {}).get("return_path")
        return path if isinstance(path, str) and path.startswith("/") and not path.startswith("//") else None

    @property
    def refundable_cents(self) -> int:
        return self.amount_cents - self.refunded_cents

    def move_to(self, status: str) -> None:
        if status == self.status:
            return
        if status not in Status.TRANSITIONS[self.status]:
            raise InvalidTransition(f"order {self.id}: {self.status} -> {status}")
        self.status = status


class RefundStatus:
    """The provider's refund statuses that matter here. `succeeded` and `pending` count
    (the money is on its way back); `failed` and `canceled` are final and mean the money
    stayed with the shop, so a refund counted before must be undone (once)."""

    COUNTED = ("succeeded", "pending")
    VOID = ("failed", "canceled")


class Refund(db.Model):
    """One provider refund (or a simulated one); applied once to the ledger, and undone
    once if the provider later reports it failed or cancelled."""

    __tablename__ = "order_refunds"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        # Only an applied refund can have been reversed.
        CheckConstraint("NOT reversed OR applied", name="reversed_only_applied"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    provider_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_cents: Mapped[int]
    credits_requested: Mapped[int] = mapped_column(default=0)
    credits_recovered: Mapped[int] = mapped_column(default=0)
    applied: Mapped[bool] = mapped_column(default=False)
    # The provider's last known status; once failed/canceled it never changes again.
    status: Mapped[str] = mapped_column(String(32), default="succeeded", server_default="succeeded")
    # The applied effect (refunded amount, clawback, enrolment) was undone: the refund failed.
    reversed: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    order = relationship(Order, back_populates="refunds")

    @property
    def reference(self) -> str:
        return f"refund:{self.provider_refund_id}"

    @property
    def reversal_reference(self) -> str:
        """The ledger reference of the entry giving back this refund's clawback."""
        return f"refund-failed:{self.provider_refund_id}"

    @property
    def is_void(self) -> bool:
        return self.status in RefundStatus.VOID

    @property
    def counts(self) -> bool:
        """Whether this refund's money is (still) taken back from the shop."""
        return self.applied and not self.reversed


class Dispute(db.Model):
    """A chargeback: credits are clawed back when it opens and restored if it is won."""

    __tablename__ = "order_disputes"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    provider_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_cents: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))  # the provider's word (won, lost, ...)
    credits_requested: Mapped[int] = mapped_column(default=0)
    credits_recovered: Mapped[int] = mapped_column(default=0)
    applied: Mapped[bool] = mapped_column(default=False)
    restored: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    order = relationship(Order, back_populates="disputes")

    @property
    def reference(self) -> str:
        return f"dispute:{self.provider_dispute_id}"

    @property
    def restore_reference(self) -> str:
        return f"dispute-won:{self.provider_dispute_id}"


class SimulatedSession(db.Model):
    """The simulated provider's own record of a checkout (no Stripe key configured).

    Kept apart from the order so that fulfilment re-reads "the provider" exactly as it
    does with Stripe, instead of trusting the order it is checking.
    """

    __tablename__ = "simulated_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payment_intent: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, complete, expired
    payment_status: Mapped[str] = mapped_column(String(16), default="unpaid")
    amount_total: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    client_reference_id: Mapped[str] = mapped_column(String(64))
    session_metadata: Mapped[dict] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(String(200))
    success_url: Mapped[str] = mapped_column(Text)
    cancel_url: Mapped[str] = mapped_column(Text)
    refunds: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
