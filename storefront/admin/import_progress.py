"""Progress and liveness of a running CSV import, visible from every worker and host.

An import is applied in ONE transaction (all rows or none), so nothing it writes in
that transaction is visible before the end. Its progress is therefore written OUTSIDE
it, by a `Reporter`, at most once per `ADMIN_IMPORT_PROGRESS_SECONDS`:

- PostgreSQL (and any server database): a separate short transaction on its own
  pooled connection updates `rows_processed` and `heartbeat_at` of the import's row.
  The import's transaction does not touch that row until its very last statement, so
  these updates never wait for it; any worker's poll reads them (READ COMMITTED).
- SQLite: the import's transaction holds the database's only write lock (BEGIN
  IMMEDIATE) from its first to its last statement, so no other connection can write
  anything, progress included, meanwhile. Chunking the import into several
  transactions would break all-or-nothing, and an in-memory counter is invisible to
  the other worker processes. But SQLite is single-host by nature: every process that
  uses the database file can read the files beside it. So the reporter writes a small
  JSON file next to the database ("<db>.import-<token>.json", replaced atomically)
  and the pollers read it. An in-memory SQLite database has no file: no progress is
  shown there (and it cannot be shared between processes anyway).

A "running" import whose last sign of life is older than `ADMIN_IMPORT_STALE_SECONDS`
is shown as interrupted and may be claimed again. That is safe: a process that died
had its transaction rolled back by the database (nothing was applied), and should the
old attempt still be alive, the ledger references "import:<sha256>:<line>" are UNIQUE
(a row reaches the ledger once, whichever attempt commits) and only the latest
attempt may record the outcome (`attempt` guard): the superseded one rolls back.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import text, update

from ..db import utcnow
from ..extensions import db
from .models import CreditImport, ImportStatus

INTERRUPTED = "interrupted"  # a display status: "running" without a recent heartbeat
STALE_SECONDS = 120
PROGRESS_SECONDS = 1.0


@dataclass(frozen=True)
class ImportState:
    """What the admin sees of an import: its status and, while running, the lines done."""
    status: str
    processed: int | None
    heartbeat_at: datetime | None


def _sqlite_file(token: str) -> Path | None:
    """The progress file of an import on SQLite; None on other databases or in memory."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.import-{token}.json")


def _read_file(path: Path) -> tuple[int, int, datetime] | None:
    """(attempt, processed, heartbeat) from a progress file; None if absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["attempt"]), int(data["processed"]), datetime.fromisoformat(data["heartbeat"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=current_app.config.get("ADMIN_IMPORT_STALE_SECONDS", STALE_SECONDS))


def state(job: CreditImport, now: datetime | None = None) -> ImportState:
    """The status to show, from the row and (SQLite) the progress file beside the database."""
    if job.status != ImportStatus.RUNNING:
        return ImportState(job.status, None, job.heartbeat_at)
    processed, heartbeat = job.rows_processed, job.heartbeat_at
    if db.engine.url.get_backend_name() == "sqlite":
        path = _sqlite_file(job.token)
        data = _read_file(path) if path is not None else None
        if data and data[0] == job.attempt:
            processed = data[1]
            heartbeat = max(filter(None, [heartbeat, data[2]]))
        elif path is None:
            processed = None  # in memory: nowhere to share it
    if heartbeat is None or heartbeat < _stale_before(now or utcnow()):
        return ImportState(INTERRUPTED, processed, heartbeat)
    return ImportState(ImportStatus.RUNNING, processed, heartbeat)


def stale_condition(now: datetime):
    """SQL: the row's own heartbeat is old (SQLite's file is checked by `state` first)."""
    cutoff = _stale_before(now)
    return (CreditImport.heartbeat_at.is_(None)) | (CreditImport.heartbeat_at < cutoff)


class Reporter:
    """Writes one attempt's progress outside its transaction, at most every N seconds."""

    def __init__(self, job_id: int, token: str, attempt: int):
        self.job_id, self.token, self.attempt = job_id, token, attempt
        self.interval = current_app.config.get("ADMIN_IMPORT_PROGRESS_SECONDS", PROGRESS_SECONDS)
        self.file = _sqlite_file(token)
        self.last = float("-inf")

    def __call__(self, processed: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        try:
            self._write(processed)
        except Exception:  # noqa: BLE001 - progress is informative: never fail the import for it
            current_app.logger.exception("could not record the progress of import %s", self.job_id)

    def _write(self, processed: int) -> None:
        if db.engine.url.get_backend_name() == "sqlite":
            if self.file is not None:
                payload = {"attempt": self.attempt, "processed": processed, "heartbeat": utcnow().isoformat()}
                partial = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
                partial.write_text(json.dumps(payload), encoding="utf-8")
                os.replace(partial, self.file)  # readers see the old file or the new one
            return
        # Its own connection and short transaction, committed at once. lock_timeout: the
        # row is only ever locked briefly (a claim, an outcome); never wait long for it.
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL lock_timeout = '2s'"))
            connection.execute(
                update(CreditImport)
                .where(CreditImport.id == self.job_id, CreditImport.attempt == self.attempt,
                       CreditImport.status == ImportStatus.RUNNING)
                .values(rows_processed=processed, heartbeat_at=utcnow()))

    def close(self) -> None:
        """The outcome is in the row now: the SQLite progress file has served."""
        if self.file is not None:
            self.file.unlink(missing_ok=True)
