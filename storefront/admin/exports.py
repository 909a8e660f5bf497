"""CSV exports, streamed: rows go out in chunks as the database cursor yields them
(server-side cursor on PostgreSQL), so a 1,000,000-entry ledger never sits in memory."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..auth.models import User
from ..db import reset_write_intent, set_write_intent
from ..extensions import db
from ..ledger.models import Account, Entry

CHUNK = 2000
# A cell starting with one of these is a formula for spreadsheet programs (CSV
# injection): it is prefixed with a quote so that it shows as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _stream(header: list[str], stmt, text_columns: set[int]):
    """Yield CSV text in chunks. Numbers stay numbers; text cells are made formula-safe."""
    token = set_write_intent(False)  # a long read must not hold SQLite's write lock
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    result = db.session.execute(stmt, execution_options={"yield_per": CHUNK, "stream_results": True})
    try:
        for partition in result.partitions():
            for row in partition:
                writer.writerow([safe_cell(v) if i in text_columns or not isinstance(v, int) else v
                                 for i, v in enumerate(row)])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    finally:
        result.close()
        db.session.rollback()  # end the read transaction (and its server-side cursor)
        reset_write_intent(token)


def balances_csv():
    stmt = (select(User.id, User.email, User.display_name, Account.balance, Account.updated_at)
            .join(Account, Account.user_id == User.id).order_by(User.id))
    return _stream(["user_id", "email", "display_name", "balance", "last_change"], stmt, {1, 2})


def ledger_csv():
    actor = aliased(User)
    stmt = (select(Entry.id, Entry.created_at, User.email, Entry.kind, Entry.delta,
                   Entry.balance_after, Entry.reference, Entry.actor_type, actor.email, Entry.reason)
            .join(Account, Account.id == Entry.account_id).join(User, User.id == Account.user_id)
            .outerjoin(actor, actor.id == Entry.actor_id).order_by(Entry.id))
    return _stream(["entry_id", "created_at", "email", "kind", "delta", "balance_after", "reference",
                    "actor_type", "actor_email", "reason"], stmt, {2, 3, 6, 7, 8, 9})
