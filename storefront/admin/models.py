"""The admin area's own tables, and the indexes its user list needs on shared tables.

- `SavedFilter`: the filter an admin saved on the credits page, one per admin, kept in
  the database so it follows the admin across sessions and devices.
- `BulkOperation`: a previewed "grant N credits to these M users"; its unique token
  names the ledger references ("bulk:<token>:<user_id>"), and its status moves from
  pending to applied with a conditional UPDATE, so a double confirmation applies once.
- `CreditImport`: an uploaded CSV file between its dry run and its application, with
  the progress of the (background) application: `rows_processed` and `heartbeat_at` are
  written outside the import's own transaction (see admin/import_progress.py) so that
  every worker and host sees them, and `attempt` numbers the claims so that only the
  latest attempt may record an outcome.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..db import UTCDateTime, utcnow
from ..extensions import db
from ..ledger.models import Account


class SavedFilter(db.Model):
    __tablename__ = "admin_saved_filters"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    # The query-string parameters of the filter (q, min, max, sort), as given.
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BulkStatus:
    PENDING = "pending"
    APPLIED = "applied"


class BulkOperation(db.Model):
    __tablename__ = "admin_bulk_operations"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'applied')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filter_params: Mapped[dict] = mapped_column(JSON, default=dict)
    # The users the preview counted: the confirmation grants to exactly these.
    user_ids: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=BulkStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    admin = relationship(User)

    @property
    def count(self) -> int:
        return len(self.user_ids or [])


class ImportStatus:
    CHECKED = "checked"    # dry run done, not applied
    RUNNING = "running"
    APPLIED = "applied"
    FAILED = "failed"
    ALL = (CHECKED, RUNNING, APPLIED, FAILED)


class CreditImport(db.Model):
    __tablename__ = "admin_credit_imports"
    __table_args__ = (
        CheckConstraint("status IN ('checked', 'running', 'applied', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[str] = mapped_column(Text)
    rows_total: Mapped[int] = mapped_column(default=0)
    credits_total: Mapped[int] = mapped_column(default=0)
    rows_applied: Mapped[int] = mapped_column(default=0)   # new ledger entries
    rows_replayed: Mapped[int] = mapped_column(default=0)  # already imported before
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.CHECKED)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Progress of the running attempt (lines gone through, applied or replayed), and its
    # last sign of life; a "running" import without one for a while was interrupted.
    rows_processed: Mapped[int] = mapped_column(default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # 1 for the first "Apply", +1 for each retry: a superseded attempt writes nothing.
    attempt: Mapped[int] = mapped_column(default=0, server_default="0")

    admin = relationship(User)


# Indexes for the credits page on tables other areas own (created by migration 0004_admin).
# The filter matches the beginning of the lower-cased name or email: a range scan on
# these expression indexes (text_pattern_ops on PostgreSQL so that LIKE 'abc%' uses them
# whatever the database collation), and the two sort orders walk an index and stop.
Index("ix_users_lower_email", func.lower(User.email).label("lower_email"),
      postgresql_ops={"lower_email": "text_pattern_ops"})
Index("ix_users_lower_display_name", func.lower(User.display_name).label("lower_display_name"),
      postgresql_ops={"lower_display_name": "text_pattern_ops"})
Index("ix_users_display_name_id", User.display_name, User.id)
Index("ix_accounts_balance_user", Account.balance, Account.user_id)
