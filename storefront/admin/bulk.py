"""Bulk changes: "grant N credits to the M users matching this filter", and CSV imports.

Both are applied at most once:
- a bulk grant is a `BulkOperation` row whose status moves pending -> applied with a
  conditional UPDATE (the second confirmation finds nothing to update), and whose
  ledger references are "bulk:<token>:<user_id>";
- an import's ledger references are "import:<sha256 of the file>:<line number>", so
  re-importing the same file replays every row and changes nothing.
An import is all-or-nothing: every row is checked first (the dry run), then applied in
one transaction; any failure rolls the whole file back. Its progress and liveness are
recorded outside that transaction, for every worker to see (import_progress.py).
"""
from __future__ import annotations

import csv
import hashlib
import io
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from ..audit import service as audit
from ..auth.models import User
from ..cli import end_of_day
from ..db import utcnow, write_transaction
from ..extensions import db
from ..ledger import service as ledger
from ..ledger.models import Kind
from ..web import parse_int
from . import import_progress
from .adjust import REASON_MAX
from .models import BulkOperation, BulkStatus, CreditImport, ImportStatus
from .userlist import UserFilter, matching

BULK_MAX_USERS = 100_000
IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_ROWS = 50_000


# --- bulk grant ------------------------------------------------------------------------

def prepare_bulk_grant(admin, f: UserFilter, amount: int, reason: str,
                       expires_at: datetime | None) -> BulkOperation:
    """Snapshot the matching users: the confirmation grants to exactly those."""
    user_ids = db.session.scalars(matching(f).order_by(User.id).limit(BULK_MAX_USERS + 1)).all()
    if len(user_ids) > BULK_MAX_USERS:
        raise ValueError("too many users")
    op = BulkOperation(token=secrets.token_urlsafe(24), admin_id=admin.id, amount=amount,
                       reason=reason, expires_at=expires_at, filter_params=f.saved_params(),
                       user_ids=list(user_ids))
    db.session.add(op)
    db.session.flush()
    return op


def apply_bulk_grant(admin, op: BulkOperation) -> bool:
    """Grant to every snapshotted user; False (nothing done) when already applied."""
    claimed = db.session.execute(
        update(BulkOperation)
        .where(BulkOperation.id == op.id, BulkOperation.status == BulkStatus.PENDING)
        .values(status=BulkStatus.APPLIED, applied_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        return False
    actor = ledger.Actor.of(admin)
    for user_id in op.user_ids:
        ledger.grant(user_id, op.amount, reference=f"bulk:{op.token}:{user_id}", actor=actor,
                     kind=Kind.ADMIN_GRANT, reason=op.reason, expires_at=op.expires_at)
    audit.record(admin, "credits-bulk-granted", target=op, amount=op.amount, users=op.count,
                 reason=op.reason, filter=op.filter_params, token=op.token)
    db.session.expire(op)
    return True


# --- CSV import: parsing and the dry run -----------------------------------------------

@dataclass
class ImportRow:
    line: int
    email: str
    amount: int
    reason: str
    expires_at: datetime | None
    user_id: int | None = None


@dataclass
class DryRun:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message); line 0: file
    sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)

    @property
    def credits(self) -> int:
        return sum(r.amount for r in self.rows)


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def dry_run(data: bytes, now: datetime | None = None) -> DryRun:
    """Check every row (columns: email, amount, reason, optional expiry YYYY-MM-DD).

    Reports every bad row, not just the first: unknown email, bad amount, missing
    reason, bad or past date, wrong number of columns, duplicate email.
    """
    now = now or utcnow()
    result = DryRun(sha256=hashlib.sha256(data).hexdigest())
    if len(data) > IMPORT_MAX_BYTES:
        result.errors.append((0, _("The file is larger than %(mb)d MB.", mb=IMPORT_MAX_BYTES // 2**20)))
        return result
    text = _decode(data)
    if text is None:
        result.errors.append((0, _("The file is not UTF-8 text.")))
        return result
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        result.errors.append((0, _("The file is not valid CSV: %(error)s", error=str(exc))))
        return result
    first_line = {}
    for number, record in enumerate(records, start=1):
        if not any(cell.strip() for cell in record):
            continue
        if number == 1 and record[0].strip().lower() == "email":
            continue  # header
        if len(result.rows) + len(result.errors) >= IMPORT_MAX_ROWS:
            result.errors.append((number, _("Too many rows: at most %(max)d per file.", max=IMPORT_MAX_ROWS)))
            break
        row = _check_record(number, record, now, result.errors)
        if row is None:
            continue
        key = row.email.lower()
        if key in first_line:
            result.errors.append((number, _("Duplicate row: %(email)s already appears on line %(line)d.",
                                            email=row.email, line=first_line[key])))
            continue
        first_line[key] = number
        result.rows.append(row)
    _resolve_users(result)
    if not result.rows and not result.errors:
        result.errors.append((0, _("The file has no rows to import.")))
    return result


def _check_record(number: int, record: list[str], now: datetime, errors: list) -> ImportRow | None:
    cells = [c.strip() for c in record]
    if len(cells) not in (3, 4):
        errors.append((number, _("Expected 3 or 4 columns (email, amount, reason, expiry), found %(n)d.",
                                 n=len(cells))))
        return None
    email, amount_text, reason = cells[:3]
    expiry_text = cells[3] if len(cells) == 4 else ""
    bad = len(errors)
    if not email or "@" not in email or len(email) > 254:
        errors.append((number, _("Bad email address: %(email)s", email=email)))
    amount = parse_int(amount_text, minimum=1, maximum=ledger.MAX_AMOUNT)
    if amount is None:
        errors.append((number, _("Bad amount %(amount)s: a whole number from 1 to %(max)d.",
                                 amount=amount_text, max=ledger.MAX_AMOUNT)))
    if not reason or len(reason) > REASON_MAX:
        errors.append((number, _("A reason is required (at most %(max)d characters).", max=REASON_MAX)))
    expires_at = None
    if expiry_text:
        try:
            expires_at = end_of_day(date.fromisoformat(expiry_text))
        except ValueError:
            errors.append((number, _("Bad date %(date)s: use YYYY-MM-DD.", date=expiry_text)))
        else:
            if expires_at <= now:
                errors.append((number, _("The expiry date %(date)s is in the past.", date=expiry_text)))
    if len(errors) > bad:
        return None
    return ImportRow(number, email, amount, reason, expires_at)


def _resolve_users(result: DryRun) -> None:
    """Emails -> user ids, 500 at a time (a constant number of queries per 500 rows)."""
    by_email: dict[str, int] = {}
    emails = sorted({r.email.lower() for r in result.rows})
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        by_email.update({e: i for i, e in db.session.execute(
            select(User.id, func.lower(User.email)).where(func.lower(User.email).in_(chunk)))})
    known = []
    for row in result.rows:
        row.user_id = by_email.get(row.email.lower())
        if row.user_id is None:
            result.errors.append((row.line, _("Unknown email: %(email)s", email=row.email)))
        else:
            known.append(row)
    result.rows = known
    result.errors.sort(key=lambda e: e[0])


def store_checked_import(admin, filename: str, data: bytes, check: DryRun) -> CreditImport:
    job = CreditImport(token=secrets.token_urlsafe(24), admin_id=admin.id,
                       filename=(filename or "import.csv")[:255], sha256=check.sha256,
                       content=_decode(data), rows_total=len(check.rows), credits_total=check.credits)
    db.session.add(job)
    db.session.flush()
    return job


def previous_import(sha256: str, exclude_id: int) -> CreditImport | None:
    return db.session.scalar(
        select(CreditImport).where(CreditImport.sha256 == sha256, CreditImport.id != exclude_id,
                                   CreditImport.status == ImportStatus.APPLIED)
        .order_by(CreditImport.id.desc()).limit(1))


# --- CSV import: applying ------------------------------------------------------------

def claim_import(job: CreditImport) -> bool:
    """checked/failed/interrupted -> running, once: a second "Apply" finds nothing to claim.

    An interrupted import (running, but no sign of life for a while: see
    import_progress) may be claimed again; the claim starts a new attempt, so the old
    one, should it still be alive, can no longer record an outcome.
    """
    now = utcnow()
    claimable = CreditImport.status.in_([ImportStatus.CHECKED, ImportStatus.FAILED])
    if import_progress.state(job, now).status == import_progress.INTERRUPTED:
        claimable = claimable | ((CreditImport.status == ImportStatus.RUNNING)
                                 & (CreditImport.attempt == job.attempt)
                                 & import_progress.stale_condition(now))
    return db.session.execute(
        update(CreditImport).where(CreditImport.id == job.id, claimable)
        .values(status=ImportStatus.RUNNING, error=None, attempt=CreditImport.attempt + 1,
                rows_processed=0, heartbeat_at=now)
        .execution_options(synchronize_session=False)).rowcount == 1


def apply_import(job_id: int) -> None:
    """Apply a claimed import in ONE transaction (all rows or none), then record the outcome.

    Runs in a background thread (or inline); needs an app context. The progress is
    reported outside that transaction (import_progress.Reporter); the outcome is
    recorded only if this attempt is still the latest one.
    """
    token, attempt = db.session.execute(
        select(CreditImport.token, CreditImport.attempt).where(CreditImport.id == job_id)).one()
    db.session.rollback()
    this_attempt = (CreditImport.id == job_id) & (CreditImport.attempt == attempt) \
        & (CreditImport.status == ImportStatus.RUNNING)
    report = import_progress.Reporter(job_id, token, attempt)
    try:
        with write_transaction():
            job = db.session.get(CreditImport, job_id)
            admin = db.session.get(User, job.admin_id)
            report(0, force=True)
            check = dry_run(job.content.encode("utf-8"))
            if not check.ok:  # a user or the clock changed since the dry run
                raise ImportFailed("; ".join(f"{line}: {msg}" for line, msg in check.errors[:20]))
            actor = ledger.Actor.of(admin)
            applied = replayed = 0
            for done, row in enumerate(check.rows, start=1):
                reference = f"import:{job.sha256}:{row.line}"
                first = ledger.entry_by_reference(reference) is None
                ledger.grant(row.user_id, row.amount, reference=reference, actor=actor,
                             kind=Kind.IMPORT, reason=row.reason, expires_at=row.expires_at)
                applied, replayed = applied + first, replayed + (not first)
                report(done)
            report(len(check.rows), force=True)
            # The first and only write to the import's row in this transaction: from here
            # on the row is locked until the commit, so no more progress is reported.
            now = utcnow()
            recorded = db.session.execute(
                update(CreditImport).where(this_attempt)
                .values(status=ImportStatus.APPLIED, finished_at=now, heartbeat_at=now,
                        rows_processed=len(check.rows), rows_applied=applied, rows_replayed=replayed)
                .execution_options(synchronize_session=False)).rowcount
            if recorded != 1:
                raise Superseded()
            audit.record(admin, "credits-imported", target=job, file=job.filename, sha256=job.sha256,
                         rows=len(check.rows), new_entries=applied, already_imported=replayed,
                         credits=check.credits)
    except Superseded:  # a retry took over: it applies the file; this attempt rolled back
        current_app.logger.warning("import %s: attempt %s was superseded and rolled back", job_id, attempt)
    except Exception as exc:  # noqa: BLE001 - any failure: nothing applied, say why
        with write_transaction():
            db.session.execute(
                update(CreditImport).where(this_attempt)
                .values(status=ImportStatus.FAILED, finished_at=utcnow(),
                        error=str(exc)[:2000] or exc.__class__.__name__)
                .execution_options(synchronize_session=False))
    finally:
        report.close()


class Superseded(Exception):
    """This attempt was declared interrupted and claimed again meanwhile."""


class ImportFailed(Exception):
    pass


def start_import(app, job_id: int, background: bool) -> threading.Thread | None:
    def run():
        with app.app_context():
            apply_import(job_id)
            db.session.remove()

    if not background:
        run()
        return None
    thread = threading.Thread(target=run, name=f"credit-import-{job_id}", daemon=True)
    thread.start()
    return thread
