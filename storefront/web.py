"""Small helpers shared by every blueprint's views."""
from __future__ import annotations

import json
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, g, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.routing import IntegerConverter

# The largest number an INTEGER column holds (ids, amounts) on PostgreSQL; SQLite
# stores 64 bits but the Python driver refuses anything larger, with an error.
INTEGER_MAX = 2**31 - 1


def is_htmx() -> bool:
    """A request from htmx that wants a fragment (boosted links want whole pages)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(template: str, fragment: str | None = None, status: int = 200, **context):
    """Full page for browsers, the named fragment for htmx (same data, same URL)."""
    name = fragment if fragment and is_htmx() else template
    return render_template(name, **context), status


def trigger(event: str) -> None:
    """Ask htmx on the client to fire `event` (sent in the HX-Trigger header)."""
    g.setdefault("hx_triggers", set()).add(event)


def add_triggers(response):
    """after_request: send the collected events, merged with any HX-Trigger the view set."""
    events = g.get("hx_triggers")
    if events:
        existing = response.headers.get("HX-Trigger")
        merged = {}
        if existing:
            try:
                merged = json.loads(existing)
            except ValueError:
                merged = None
            if not isinstance(merged, dict):  # a plain "a, b" list of event names
                merged = {name.strip(): None for name in existing.split(",") if name.strip()}
        merged.update({event: None for event in events})
        response.headers["HX-Trigger"] = json.dumps(merged)
    return response


def safe_next(target: str | None, default: str = "shop.home") -> str:
    """Only same-site paths: "https://evil", "//evil", "/\\evil" all fall back.

    Control characters fall back too: browsers drop tabs and newlines from URLs (so a
    slash, a tab and "/evil" is "//evil" to them) and a newline in a Location header is
    an error (a 500).
    """
    if target and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        target = target.replace("\\", "/").strip()
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for(default)


def admin_required(view):
    """Anonymous users go to the login page; logged-in non-admins get 403."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def parse_int(value, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """A whole number from a form field, or None when it is not one (or out of range).

    Without explicit bounds, the range is what an INTEGER column holds: the number may
    be compared with ids and amounts in the database without failing there.
    """
    minimum = -INTEGER_MAX if minimum is None else minimum
    maximum = INTEGER_MAX if maximum is None else maximum
    if value is None:
        return None
    text = str(value).strip()
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())) or len(text) > 12:
        return None
    number = int(text)
    if number < minimum or number > maximum:
        return None
    return number


class IntegerIdConverter(IntegerConverter):
    """`<int:...>` in routes: a number beyond any stored id names nothing (404), instead
    of failing in the database (PostgreSQL: integer out of range; SQLite's driver:
    too large to convert)."""

    def __init__(self, map, fixed_digits=0, min=None, max=INTEGER_MAX, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
