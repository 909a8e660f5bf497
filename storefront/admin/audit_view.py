"""What the audit log page shows for each event: a translated action name, one readable
sentence built from the event's details, and its target as a link.

Audit events are written by every admin area (credits, bulk, import, exports, packs in
`admin`; refunds in `payments`; the course catalogue in `courses`) with kebab-case
action names and free-form details. The page must not show those raw: an admin reading
"order-refund {amount_cents: 6300}" has to decode it; "Refunded €63.00 on order #4"
needs no decoding. An action without an entry here still shows (its raw name), so a new
action is never hidden, only less readable until it gets its label.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import select

from ..auth.models import User
from ..extensions import db
from ..payments.views import money

ACTIONS = {
    "credits-adjusted": _l("Credits adjusted"),
    "credits-bulk-granted": _l("Bulk grant"),
    "credits-imported": _l("Credits imported (CSV)"),
    "credits-exported": _l("Export (CSV)"),
    "pack-created": _l("Pack created"),
    "pack-updated": _l("Pack edited"),
    "pack-activated": _l("Pack put on sale"),
    "pack-deactivated": _l("Pack taken off sale"),
    "course-created": _l("Course created"),
    "course-updated": _l("Course edited"),
    "course-published": _l("Course published"),
    "course-unpublished": _l("Course hidden"),
    "order-refund": _l("Order refunded"),
    "enrolment-cancelled": _l("Enrolment cancelled"),
}

# Field names as an admin knows them (course and pack forms).
FIELDS = {
    "title": _l("title"), "slug": _l("address"), "summary": _l("summary"),
    "description": _l("description"), "price_credits": _l("price in credits"),
    "price_cents": _l("price"), "capacity": _l("capacity"), "duration_days": _l("duration (days)"),
    "last_start_date": _l("last start date"), "refundable": _l("refundable"),
    "published": _l("published"), "name": _l("name"), "credits": _l("credits"),
    "currency": _l("currency"), "validity_days": _l("validity (days)"), "position": _l("position"),
}

LONG_VALUE = 60


@dataclass
class Described:
    label: str
    summary: str
    target: str | None
    target_url: str | None


def _value(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    text = str(value)
    return text if len(text) <= LONG_VALUE else text[:LONG_VALUE - 1] + "…"


def _changes(changes: dict) -> str:
    """{field: [old, new]} -> "price: 9000 → 99; name: … → …" (long texts shortened)."""
    parts = []
    for field, pair in sorted((changes or {}).items()):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            continue
        old, new = pair
        parts.append(_("%(field)s: %(old)s → %(new)s", field=FIELDS.get(field, field), old=_value(old),
                       new=_value(new)))
    return "; ".join(parts)


def _new_value(changes: dict, field: str):
    pair = (changes or {}).get(field)
    return pair[1] if isinstance(pair, (list, tuple)) and len(pair) == 2 else None


def _summary(action: str, d: dict) -> str:
    if action == "credits-adjusted":
        return _("%(delta)+d credits (balance %(before)s → %(after)s). Reason: %(reason)s",
                 delta=int(d.get("delta") or 0), before=_value(d.get("balance_before")),
                 after=_value(d.get("balance_after")), reason=_value(d.get("reason")))
    if action == "credits-bulk-granted":
        return _("%(amount)s credits to each of %(users)s learners. Reason: %(reason)s",
                 amount=_value(d.get("amount")), users=_value(d.get("users")), reason=_value(d.get("reason")))
    if action == "credits-imported":
        return _("File %(file)s: %(rows)s rows, %(credits)s credits (%(new)s new entries, "
                 "%(old)s already imported).", file=_value(d.get("file")), rows=_value(d.get("rows")),
                 credits=_value(d.get("credits")), new=_value(d.get("new_entries")),
                 old=_value(d.get("already_imported")))
    if action == "credits-exported":
        return _("Full ledger downloaded.") if d.get("export") == "ledger" else _("Balances downloaded.")
    if action == "pack-created":
        return _("New pack “%(name)s”.", name=_value(_new_value(d.get("changes"), "name")))
    if action == "pack-updated":
        return _changes(d.get("changes"))
    if action in ("pack-activated", "pack-deactivated"):
        return _value(d.get("name"))
    if action == "course-created":
        return _("New course “%(title)s”.", title=_value(_new_value(d, "title")))
    if action == "course-updated":
        return _changes(d)
    if action in ("course-published", "course-unpublished"):
        return _value(d.get("slug"))
    if action == "order-refund":
        amount = d.get("amount_cents")
        shown = money(int(amount), str(d.get("currency") or "eur")) if isinstance(amount, int) else _value(amount)
        return _("%(amount)s refunded; %(recovered)s credits taken back, %(unrecovered)s already spent "
                 "(not recovered).", amount=shown, recovered=_value(d.get("credits_recovered")),
                 unrecovered=_value(d.get("credits_unrecovered")))
    if action == "enrolment-cancelled":
        return _("%(course)s, starting %(start)s: %(credits)s credits returned. Reason: %(reason)s",
                 course=_value(d.get("course")), start=_value(d.get("start_date")),
                 credits=_value(d.get("credits_returned")), reason=_value(d.get("reason")))
    return ""


def _target(event, names: dict[int, str]) -> tuple[str | None, str | None]:
    kind, ident, d = event.target_type, event.target_id, event.details or {}
    if kind is None:
        return None, None
    number = int(ident) if (ident or "").isdigit() else None
    if kind == "user" and number:
        return names.get(number) or _("Learner #%(id)s", id=ident), url_for("admin.user_credits", user_id=number)
    if kind == "order" and number:
        return _("Order #%(id)s", id=ident), url_for("admin_orders.show", order_id=number)
    if kind == "course" and number:
        return _("Course #%(id)s", id=ident), url_for("admin_courses.edit", course_id=number)
    if kind == "pack" and number:
        return _("Pack #%(id)s", id=ident), url_for("admin.pack_edit", pack_id=number)
    if kind == "bulkoperation":
        token = d.get("token")
        return _("Bulk grant #%(id)s", id=ident), url_for("admin.bulk_show", token=token) if token else None
    if kind == "creditimport":
        return _("Import #%(id)s", id=ident), None
    return f"{kind} {ident}", None


def describe(events) -> list[tuple[object, Described]]:
    """Each event with its description; learners' names in one query for the whole page."""
    user_ids = {int(e.target_id) for e in events if e.target_type == "user" and (e.target_id or "").isdigit()}
    names = dict(db.session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    result = []
    for event in events:
        target, target_url = _target(event, names)
        label = ACTIONS.get(event.action)
        result.append((event, Described(str(label) if label else event.action,
                                        _summary(event.action, event.details or {}), target, target_url)))
    return result
