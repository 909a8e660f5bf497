"""Database plumbing shared by every domain: UTC timestamps and transaction control.

SQLite's Python driver opens transactions lazily and in DEFERRED mode: a transaction
that reads and then writes can fail with "database is locked" when another writer got
in between. We take the BEGIN over (the recipe of the SQLAlchemy pysqlite docs) and
issue BEGIN IMMEDIATE for every transaction that is going to write, so writers queue
on the busy timeout instead of failing. PostgreSQL needs none of this: it uses row
locks (the ledger's conditional UPDATEs) and the default READ COMMITTED level.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from .extensions import db

_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_immediate", default=False)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in Python on both databases (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (use with escape="\\")."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")


def writes_on_get(view):
    """Mark a GET view that may write (e.g. the checkout success page fulfils)."""
    view.writes_on_get = True
    return view


def set_write_intent(value: bool) -> contextvars.Token:
    """Declare whether transactions begun from now on in this context will write."""
    return _immediate.set(value)


def reset_write_intent(token: contextvars.Token) -> None:
    _immediate.reset(token)


@contextmanager
def write_transaction():
    """One unit of work outside a request (CLI, tests, jobs): commit or roll back.

    The session is closed first so that the transaction begins here, as a writer.
    """
    token = _immediate.set(True)
    db.session.rollback()
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _immediate.reset(token)
