"""Dashboard and audit log."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from flask import request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..audit.models import AuditEvent
from ..auth.models import User
from ..cli import end_of_day
from ..extensions import db
from ..web import admin_required, parse_int, render
from . import audit_view, bp, reports

AUDIT_PAGE = 50


@bp.get("")
@admin_required
def dashboard():
    weeks = reports.weekly()
    return render("admin/dashboard.html", figures=reports.figures(), activity=reports.activity(),
                  weeks=weeks, chart=reports.chart(weeks))


def _day(text: str | None, errors: list[str]) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(_("Dates are written YYYY-MM-DD: %(value)s is not one.", value=text))
        return None


@bp.get("/audit")
@admin_required
def audit_log():
    """Every admin action, newest first; filter by admin and by day range (UTC)."""
    errors: list[str] = []
    admin_id = parse_int(request.args.get("admin"), minimum=1)
    start, end = _day(request.args.get("from"), errors), _day(request.args.get("to"), errors)
    page = parse_int(request.args.get("page"), minimum=1, maximum=100_000) or 1
    query = select(AuditEvent).options(joinedload(AuditEvent.actor))
    if admin_id:
        query = query.where(AuditEvent.actor_id == admin_id)
    if start:
        query = query.where(AuditEvent.created_at >= datetime.combine(start, time.min, tzinfo=timezone.utc))
    if end:
        query = query.where(AuditEvent.created_at <= end_of_day(end))
    events = db.session.scalars(query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
                                .limit(AUDIT_PAGE + 1).offset((page - 1) * AUDIT_PAGE)).all()
    admins = db.session.execute(select(User.id, User.display_name).where(User.role == "admin")
                                .order_by(User.display_name)).all()
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render("admin/audit.html", status=422 if errors else 200, errors=errors,
                  events=audit_view.describe(events[:AUDIT_PAGE]), more=len(events) > AUDIT_PAGE, page=page, args=args,
                  admins=admins, admin_id=admin_id, start=start, end=end)
