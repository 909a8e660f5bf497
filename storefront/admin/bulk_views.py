"""Bulk grant (preview, confirm), CSV import (dry run, apply, progress) and CSV exports."""
from __future__ import annotations

from flask import Response, current_app, flash, redirect, request, stream_with_context, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user
from sqlalchemy import select

from ..audit import service as audit
from ..db import utcnow, writes_on_get
from ..extensions import db
from ..ledger import service as ledger
from ..web import admin_required, parse_int, render
from . import bp
from . import bulk, exports
from .adjust import AdjustError
from .import_progress import state as import_state
from .models import BulkOperation, CreditImport, ImportStatus
from .userlist import UserFilter
from .views import adjust_message, parse_expiry, parse_reason


# --- bulk grant ------------------------------------------------------------------------

@bp.post("/bulk/grant")
@admin_required
def bulk_preview():
    f = UserFilter.from_params(request.form)
    errors = list(f.errors)
    amount = parse_int(request.form.get("amount"), minimum=1, maximum=ledger.MAX_AMOUNT)
    if amount is None:
        errors.append(_("Enter a whole number of credits from 1 to %(max)d.", max=ledger.MAX_AMOUNT))
    reason = expires_at = None
    try:
        reason = parse_reason(request.form.get("reason"))
    except AdjustError as exc:
        errors.append(adjust_message(exc))
    try:
        expires_at = parse_expiry(request.form.get("expires"))
    except AdjustError as exc:
        errors.append(adjust_message(exc))
    if errors:
        return render("admin/bulk.html", status=422, op=None, errors=errors)
    try:
        op = bulk.prepare_bulk_grant(current_user, f, amount, reason, expires_at)
    except ValueError:
        return render("admin/bulk.html", status=422, op=None, errors=[
            _("More than %(max)d users match: narrow the filter.", max=bulk.BULK_MAX_USERS)])
    if not op.count:
        return render("admin/bulk.html", status=422, op=None, errors=[_("No user matches this filter.")])
    return redirect(url_for("admin.bulk_show", token=op.token), code=303)


def _bulk_or_404(token: str) -> BulkOperation:
    return db.first_or_404(select(BulkOperation).where(BulkOperation.token == token))


@bp.get("/bulk/<token>")
@admin_required
def bulk_show(token: str):
    return render("admin/bulk.html", op=_bulk_or_404(token), errors=[])


@bp.post("/bulk/<token>/confirm")
@admin_required
def bulk_confirm(token: str):
    op = _bulk_or_404(token)
    try:
        applied = bulk.apply_bulk_grant(current_user, op)
    except ledger.LedgerError as exc:
        db.session.rollback()
        return render("admin/bulk.html", status=422, op=_bulk_or_404(token), errors=[
            _("Nothing was granted: %(error)s", error=str(exc))])
    if applied:
        flash(ngettext("%(num)d user received %(amount)d credits.",
                       "%(num)d users received %(amount)d credits.", op.count, amount=op.amount), "success")
    else:
        flash(_("This bulk grant was already applied: nothing was changed."), "info")
    return redirect(url_for("admin.bulk_show", token=token), code=303)


# --- CSV import ------------------------------------------------------------------------

def _recent_imports():
    """The last imports with what to show of each: (job, ImportState)."""
    jobs = db.session.scalars(select(CreditImport).order_by(CreditImport.id.desc()).limit(10)).all()
    return [(job, import_state(job)) for job in jobs]


@bp.get("/import")
@admin_required
def import_form():
    return render("admin/import.html", check=None, imports=_recent_imports())


@bp.post("/import")
@admin_required
def import_check():
    """The dry run: every bad row is reported; a clean file is kept, ready to apply."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render("admin/import.html", status=422, check=None, imports=_recent_imports(),
                      error=_("Choose a CSV file to import."))
    data = upload.read(bulk.IMPORT_MAX_BYTES + 1)
    check = bulk.dry_run(data)
    if not check.ok:
        return render("admin/import.html", status=422, check=check, imports=_recent_imports(),
                      error=_("Nothing was imported: correct these rows and upload the file again."))
    job = bulk.store_checked_import(current_user, upload.filename, data, check)
    return redirect(url_for("admin.import_show", token=job.token), code=303)


def _import_or_404(token: str) -> CreditImport:
    return db.first_or_404(select(CreditImport).where(CreditImport.token == token))


@bp.get("/import/<token>")
@admin_required
def import_show(token: str):
    job = _import_or_404(token)
    rows = bulk.dry_run(job.content.encode("utf-8")).rows[:50] if job.status == ImportStatus.CHECKED else []
    return render("admin/import_job.html", job=job, rows=rows, state=import_state(job),
                  previous=bulk.previous_import(job.sha256, job.id))


@bp.get("/import/<token>/progress")
@admin_required
def import_progress(token: str):
    """Polled by htmx while the import runs; the answer stops polling once it is over.

    Any worker or host can answer: the progress comes from the database (or, on SQLite,
    the file beside it), not from the memory of the process that applies the import.
    """
    job = _import_or_404(token)
    return render("admin/_import_progress.html", job=job, state=import_state(job))


@bp.post("/import/<token>/apply")
@admin_required
def import_apply(token: str):
    job = _import_or_404(token)
    job_id = job.id  # read before the commit: afterwards it would start a new (write) transaction
    if not bulk.claim_import(job):
        flash(_("This import was already applied or is running."), "info")
        return redirect(url_for("admin.import_show", token=token), code=303)
    # The one commit in a view, on purpose: the claim must be visible to the worker
    # thread (its own transaction) before it starts.
    db.session.commit()
    bulk.start_import(current_app._get_current_object(), job_id,
                      background=current_app.config.get("ADMIN_IMPORT_BACKGROUND", True))
    return redirect(url_for("admin.import_show", token=token), code=303)


# --- exports ---------------------------------------------------------------------------

def _csv_response(generator, name: str) -> Response:
    filename = f"{name}-{utcnow():%Y%m%d-%H%M%S}.csv"
    return Response(stream_with_context(generator), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


@bp.get("/export/balances.csv")
@admin_required
@writes_on_get
def export_balances():
    audit.record(current_user, "credits-exported", export="balances")
    return _csv_response(exports.balances_csv(), "balances")


@bp.get("/export/ledger.csv")
@admin_required
@writes_on_get
def export_ledger():
    audit.record(current_user, "credits-exported", export="ledger")
    return _csv_response(exports.ledger_csv(), "ledger")
