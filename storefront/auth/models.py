from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..db import UTCDateTime, utcnow
from ..extensions import db

ROLES = ("learner", "admin")


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('learner', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="learner")
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    # The login session this request runs under (see UserSession); set on login and
    # when Flask-Login loads the user from the cookie.
    current_session_token = None

    def get_id(self) -> str:
        if not self.current_session_token:
            raise RuntimeError("log in through auth.service.start_session")
        return self.current_session_token

    # The words of the name and email, kept by auth.search on every flush (admin filter).
    search_terms = relationship("UserSearchTerm", cascade="all, delete-orphan", lazy="select",
                                passive_deletes=True)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class UserSession(db.Model):
    """One login (one browser). The cookie holds only this random token, never the user
    id: revoking the row on logout makes every copy of that cookie worthless, without
    logging the user out of their other devices; a password change revokes them all.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user = relationship(User)


# Compared bytewise on PostgreSQL too ("C"), as SQLite's BINARY does: a prefix is then an
# index range on the primary key whatever the database's collation.
SEARCH_TERM = String(64).with_variant(String(64, collation="C"), "postgresql")


class UserSearchTerm(db.Model):
    """One lowercased word of a user's display name or email ("emma", "smith", "acme"):
    the admin filter finds "Emma Smith" by "smi" or "acme" through the primary key
    (term, user_id), on SQLite and PostgreSQL alike. Written only by `auth.search`."""

    __tablename__ = "user_search_terms"

    term: Mapped[str] = mapped_column(SEARCH_TERM, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)
