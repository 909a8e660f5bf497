"""The admin sub-navigation, shared by the three admin blueprints.

The admin area is served by `admin` (credits, packs, audit, dashboard), `admin_orders`
(payments) and `admin_courses` (courses). Their pages all extend
templates/admin/_layout.html, which draws these sections and marks the one the current
page belongs to, so an admin moves between areas without knowing who built which.
"""
from __future__ import annotations

from flask import has_request_context, request
from flask_babel import lazy_gettext as _l

from . import bp

# (section key, endpoint the link goes to, label)
SECTIONS = (
    ("dashboard", "admin.dashboard", _l("Dashboard")),
    ("credits", "admin.credits", _l("Credits")),
    ("orders", "admin_orders.index", _l("Orders")),
    ("courses", "admin_courses.index", _l("Courses")),
    ("packs", "admin.packs", _l("Packs")),
    ("audit", "admin.audit_log", _l("Audit log")),
)

_ADMIN_VIEW_SECTIONS = {"dashboard": "dashboard", "audit_log": "audit"}


def section_of(endpoint: str | None) -> str | None:
    """Which section an endpoint belongs to (None outside the admin area)."""
    blueprint, _, view = (endpoint or "").partition(".")
    if blueprint == "admin_orders":
        return "orders"
    if blueprint == "admin_courses":
        return "courses"
    if blueprint != "admin":
        return None
    if view.startswith("pack"):
        return "packs"
    return _ADMIN_VIEW_SECTIONS.get(view, "credits")  # list, one learner, bulk, import, export


@bp.app_context_processor
def admin_navigation():
    # App-wide: admin_orders and admin_courses pages use the same layout. Templates may
    # also render outside a request (receipt emails from the CLI): no section then.
    endpoint = request.endpoint if has_request_context() else None
    return {"admin_sections": SECTIONS, "admin_section": section_of(endpoint)}
