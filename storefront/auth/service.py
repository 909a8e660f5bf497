"""Creating users: one place for the rules shared by the register form and the CLI."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..ledger.service import account_for
from ..db import utcnow
from .models import User, UserSession


class UserError(Exception):
    pass


class EmailTaken(UserError):
    """Another account already uses this address (told apart so forms can say so)."""


def normalize_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise UserError(f"invalid email address: {exc}") from exc


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == (email or "").strip().lower()))


def create_user(email: str, password: str, display_name: str | None = None, *, admin: bool = False) -> User:
    email = normalize_email(email)
    if len(password or "") < 8:
        raise UserError("the password needs at least 8 characters")
    if find_by_email(email):
        raise EmailTaken(f"an account with {email} already exists")
    user = User(email=email, display_name=(display_name or email.split("@")[0]).strip()[:120],
                role="admin" if admin else "learner")
    user.set_password(password)
    try:
        with db.session.begin_nested():
            db.session.add(user)
            db.session.flush()
    except IntegrityError as exc:  # registered concurrently
        raise EmailTaken(f"an account with {email} already exists") from exc
    account_for(user.id)
    return user


def start_session(user: User) -> UserSession:
    """A new login session for this browser; `login_user(user)` stores its token."""
    session = UserSession(user_id=user.id)
    db.session.add(session)
    db.session.flush()
    user.current_session_token = session.token
    return session


def end_session(token: str | None) -> None:
    if token:
        db.session.execute(update(UserSession).where(UserSession.token == token,
                                                     UserSession.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))


def end_all_sessions(user: User) -> None:
    db.session.execute(update(UserSession).where(UserSession.user_id == user.id,
                                                 UserSession.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
