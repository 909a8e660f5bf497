"""Bad input, on every route: a clear error, nothing changed, never a 500.

The shop's rule: "Bad input always gets a clear error message and changes nothing;
never a 500." This campaign checks it over the whole URL map, as an admin and as a
learner, against a small shop (a learner with credits, a live and a cancelled
enrolment, a paid and a pending order; a pack; a published course with a card price;
a bulk grant and an import waiting for confirmation). The shop's free texts (names,
titles, reasons) already hold hostile HTML, so every page also shows stored hostile
text.

For each route (read from `app.url_map`: a new route is covered on its own):
- path parameters that name nothing: 0, unknown ids, ids past the databases'
  integers (2**31, 2**64), non-numbers; malformed slugs, tokens and session ids;
- every query-string and form field the view reads (`INPUTS`), replaced one at a time
  in an otherwise plausible request (its baseline) by each value of `HOSTILE`: empty,
  10,000 characters, non-digits, negative, zero, huge, decimal, NUL, emoji, HTML, SQL,
  impossible and extreme dates, the same key twice; HTML also as htmx asks for it
  (the fragments are templates too); the CSV import gets hostile files;
- a route whose inputs are not declared still gets the hostile values under common
  field names (and `test_every_route_declares_its_inputs` asks for the declaration).
Then every page once more (what was stored shows everywhere), and every POST without
its CSRF token (400, nothing changed, even on real objects: pay, cancel, log out).

Each answer must carry a real HTTP status below 500, hold no traceback, never echo the
raw `<script>` (HTML answers and redirects), and say why when it refuses (the error
page, or the page again with its alert or field error). Each request must leave the
database as it found it (`Fingerprint`) when it is refused (>= 400), and also when it
succeeds, except on the few routes that exist to change things with input that turned
out valid (`MAY_CHANGE`: the catalogue forms on their own scratch objects, drafts,
saved filters, audited exports). At the end the learner's balance, ledger entries,
orders and enrolments are what they were, and every ledger invariant holds.

The baselines are built so that no single substitution can make a request succeed
where success would spend, grant, buy or enrol (stale expected balance, a course the
learner cannot afford, a refund amount that does not match, a wrong current password,
mismatched new passwords): what this finds is bad input getting through, not a valid
request doing its job.

Each defect the campaign found has its own regression test at the end of the module,
and a property test runs the form parsers on arbitrary text.
"""
from __future__ import annotations

import io
import re
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter

from storefront import create_app
from storefront.extensions import db

from payments.course_helpers import make_course  # noqa: F401  (fixture)

XSS = "<script>alert(1)</script>"
TODAY = date.today()
NEXT_WEEK = (TODAY + timedelta(days=7)).isoformat()

# Every kind of bad value, as typed or pasted into a form or a URL.
HOSTILE: dict[str, str | list[str]] = {
    "empty": "",
    "long": "x" * 10_000,
    "long-digits": "9" * 10_000,
    "alpha": "abc",
    "negative": "-1",
    "zero": "0",
    "int32+1": "2147483648",
    "huge": "99999999999999999999",
    "decimal": "1.5",
    "nul": "\x00",
    "unicode": "é😀",
    "html": XSS,
    "sql": "' OR 1=1 --",
    "feb-30": "2026-02-30",
    "zero-date": "0000-00-00",
    "first-day": "0001-01-01",
    "last-day": "9999-12-31",
    "twice": ["abc", XSS],
}

# Path parameters that name nothing, by converter.
BAD_INT_PATH = ["0", "99999999", "2147483648", "99999999999999999999", "-1", "abc"]
BAD_STR_PATH = ["nope", "x" * 5000, XSS, "\x00", "é😀", "' OR 1=1 --", "..", "%"]

# Field names tried on a route that reads none (or that forgot to declare them).
GENERIC = ("q", "page", "id", "next", "sort", "before", "status", "token")

# A refusal says why: the error page (its title, message and "Back to the shop" link),
# or the page again with its message (an alert, a field error, an error flash).
SAYS_WHY = ('role="alert"', 'class="error', "flash-error", "Back to the shop")

SKIPPED = {"static", "stripe_webhook.webhook"}  # files; the webhook has its signature tests


@dataclass
class World:
    admin: object
    learner: object
    admin_client: object
    learner_client: object
    pack: int
    scratch_pack: int
    course: object           # published, card price, no last start date, beyond the learner's credits
    scratch_course: object   # what the course form edits
    enrolment: int
    cancelled_enrolment: int
    paid_order: int
    pending_order: int
    pending_session: str
    bulk_token: str
    import_token: str
    balance: int
    counter: int = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter


@dataclass(frozen=True)
class Inputs:
    """What a view reads: form and query-string fields with a plausible value each."""
    form: Callable[[World], dict] = lambda w: {}
    args: Callable[[World], dict] = lambda w: {}
    # Hostile kinds that are a valid answer for a field (e.g. an empty start date means
    # today): not bad input there, so not sent.
    valid: dict[str, set[str]] = field(default_factory=dict)
    file: str | None = None  # an upload field (CSV import)


def _pack_form(w: World) -> dict:
    return {"name": f"Fuzz pack {w.next()}", "credits": "7", "price": "70.00", "currency": "eur",
            "validity_days": "", "position": "3"}


def _course_form(w: World) -> dict:
    n = w.next()
    return {"title": f"Fuzz course {n}", "slug": f"fuzz-course-{n}", "summary": "s", "description": "d",
            "price_credits": "4", "price_money": "40.00", "capacity": "10", "duration_days": "30",
            "last_start_date": "", "refundable": "y", "published": "y"}


def _filter_form(w: World) -> dict:
    return {"q": "", "min": "", "max": "", "sort": "name", "page": "1"}


INPUTS: dict[tuple[str, str], Inputs] = {
    # --- admin: credits, bulk, import, audit, packs --------------------------------
    ("admin.credits", "GET"): Inputs(args=_filter_form),
    ("admin.save_filter", "POST"): Inputs(form=_filter_form),
    ("admin.user_credits", "GET"): Inputs(args=lambda w: {"before": "1"}),
    # On an enrolment cancelled already (`_path_values`): even a valid reason cancels nothing.
    ("admin.cancel_enrolment", "POST"): Inputs(form=lambda w: {"reason": "fuzz"}),
    # The balance the admin "saw" is stale: even a well-formed change is refused.
    ("admin.adjust", "POST"): Inputs(form=lambda w: {
        "delta": "5", "set": "", "expected_balance": str(w.balance + 1), "form_id": str(uuid.uuid4()),
        "reason": "fuzz", "expires": "", "next": "/admin/credits"}),
    ("admin.bulk_preview", "POST"): Inputs(form=lambda w: {
        "q": "lea", "min": "", "max": "", "sort": "name", "amount": "1", "reason": "fuzz", "expires": ""}),
    ("admin.import_check", "POST"): Inputs(file="file"),
    ("admin.audit_log", "GET"): Inputs(args=lambda w: {"admin": str(w.admin.id), "from": "2020-01-01",
                                                       "to": "2030-01-01", "page": "1"}),
    ("admin.pack_new", "POST"): Inputs(form=_pack_form),
    ("admin.pack_edit", "POST"): Inputs(form=_pack_form),
    # The pack is on sale already; "0" (zero) is the other valid answer: take it off sale.
    ("admin.pack_active", "POST"): Inputs(form=lambda w: {"active": "1"}, valid={"active": {"zero"}}),
    # --- admin: orders and courses ------------------------------------------------
    ("admin_orders.index", "GET"): Inputs(args=lambda w: {"status": "paid", "page": "1"}),
    # The amount does not match the review: never refunds.
    ("admin_orders.refund", "POST"): Inputs(form=lambda w: {
        "mode": "full", "confirm": "yes", "form_id": str(uuid.uuid4()), "amount_cents": "1"}),
    ("admin_courses.new", "POST"): Inputs(form=_course_form),
    ("admin_courses.edit", "POST"): Inputs(form=_course_form),
    # --- accounts (logged in already; the forms are refused all the same) -------------
    ("auth.login", "POST"): Inputs(form=lambda w: {"email": w.learner.email, "password": "wrong-password"},
                                   args=lambda w: {"next": "/credits"}),
    ("auth.register", "POST"): Inputs(form=lambda w: {
        "email": f"fuzz{w.next()}@example.com", "display_name": "Fuzz", "password": "long-enough-1",
        "confirm": "long-enough-2"}, args=lambda w: {"next": "/credits"}),
    ("auth.password", "POST"): Inputs(form=lambda w: {
        "current": "wrong-password", "password": "long-enough-1", "confirm": "long-enough-2"}),
    # --- learner pages ----------------------------------------------------------------
    ("shop.set_language", "POST"): Inputs(form=lambda w: {"lang": "en", "next": "/courses"}),
    ("credits.history", "GET"): Inputs(args=lambda w: {"before": "1"}),
    ("courses.index", "GET"): Inputs(args=lambda w: {"q": "course", "min_price": "1", "max_price": "100",
                                                     "available": "1", "page": "1"}),
    ("courses.detail", "GET"): Inputs(args=lambda w: {"start_date": NEXT_WEEK}, valid={"start_date": {"empty"}}),
    # The course costs more credits than the learner has: enrolling is refused.
    ("courses.enrol", "POST"): Inputs(form=lambda w: {"start_date": NEXT_WEEK, "form_token": uuid.uuid4().hex},
                                      valid={"start_date": {"empty"}}),
    ("courses.buy", "POST"): Inputs(form=lambda w: {"start_date": "not-a-date"}, valid={"start_date": {"empty"}}),
    ("packs.buy", "POST"): Inputs(form=lambda w: {"quantity": "0"}),
    ("checkout.success", "GET"): Inputs(args=lambda w: {"session_id": "cs_unknown"}),
    # A cancel link for the learner's pending order with a forged signature: closes nothing.
    ("checkout.cancel", "GET"): Inputs(args=lambda w: {"order": str(w.pending_order), "token": "forged"}),
}

# Routes that read no query-string or form field at all (only their path, if any).
NO_INPUTS = {
    ("admin.dashboard", "GET"), ("admin.packs", "GET"), ("admin.pack_new", "GET"), ("admin.pack_edit", "GET"),
    ("admin.clear_filter", "POST"), ("admin.bulk_show", "GET"), ("admin.bulk_confirm", "POST"),
    ("admin.import_form", "GET"), ("admin.import_show", "GET"), ("admin.import_progress", "GET"),
    ("admin.import_apply", "POST"), ("admin.export_balances", "GET"), ("admin.export_ledger", "GET"),
    ("admin_orders.show", "GET"), ("admin_courses.index", "GET"), ("admin_courses.new", "GET"),
    ("admin_courses.edit", "GET"), ("admin_courses.publish", "POST"), ("admin_courses.unpublish", "POST"),
    ("auth.login", "GET"), ("auth.register", "GET"), ("auth.password", "GET"), ("auth.logout", "POST"),
    ("shop.home", "GET"), ("shop.health", "GET"), ("credits.widget", "GET"), ("packs.index", "GET"),
    ("orders.index", "GET"), ("orders.receipt", "GET"), ("courses.mine", "GET"), ("courses.cancel", "POST"),
    ("simulated.page", "GET"), ("simulated.pay", "POST"), ("simulated.cancel", "POST"),
    ("simulated.decline", "POST"),
}

# Routes that exist to change things: when they ACCEPT the input (< 400) it was valid
# (a pack named "' OR 1=1 --" is a name), so the database may change. Refusals never may.
MAY_CHANGE = {
    "admin.pack_new", "admin.pack_edit", "admin_courses.new", "admin_courses.edit",  # scratch objects
    "admin.save_filter", "admin.clear_filter",    # the admin's own saved filter
    "admin.bulk_preview", "admin.import_check",  # drafts: nothing is granted before confirmation
    "admin.export_balances", "admin.export_ledger",  # each download is audited
    "auth.logout",
}


def _path_values(w: World, endpoint: str) -> dict[str, str]:
    """The existing object each path parameter names (the scratch ones for the forms)."""
    values = {"user_id": w.learner.id, "pack_id": w.pack, "course_id": w.scratch_course.id,
              "order_id": w.paid_order, "slug": w.course.slug, "enrolment_id": w.enrolment,
              "session_id": w.pending_session,
              "token": w.import_token if endpoint.startswith("admin.import") else w.bulk_token}
    if endpoint in ("admin.pack_edit", "admin.pack_active"):
        values["pack_id"] = w.scratch_pack
    if endpoint == "admin.cancel_enrolment":
        values["enrolment_id"] = w.cancelled_enrolment
    return {k: str(v) for k, v in values.items()}


def routes(app) -> list[tuple[object, str]]:
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "auth.logout", r.rule)):
        if rule.endpoint in SKIPPED:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return found


def build_url(rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: quote(values[m.group(1)], safe=""), rule.rule)


# --- what a request may leave behind --------------------------------------------------

def _fingerprint_query():
    """One SELECT of counts and sums that any change to the shop's data moves."""
    t = db.metadata.tables

    def one(table, expression=None, *where):
        return select(expression if expression is not None else func.count()).select_from(t[table]) \
            .where(*where).scalar_subquery()

    def total(table, column):
        return one(table, func.coalesce(func.sum(t[table].c[column]), 0))

    def stamp(table, column="updated_at"):
        return one(table, func.max(t[table].c[column]))

    return select(*[one(name) for name in sorted(t)], *[
        total("accounts", "balance"), stamp("accounts"), total("ledger_lots", "remaining"),
        stamp("orders"), total("orders", "refunded_cents"),
        one("orders", None, t["orders"].c.status == "pending"),
        one("enrolments", None, t["enrolments"].c.cancelled_at.is_(None)),
        stamp("courses"), total("courses", "seats_taken"),
        one("packs", None, t["packs"].c.active.is_(True)), total("packs", "credits"), total("packs", "price_cents"),
        total("packs", "position"), total("packs", "validity_days"),
        one("packs", func.coalesce(func.sum(func.length(t["packs"].c.name)), 0)),
        one("simulated_sessions", None, t["simulated_sessions"].c.status == "open"),
        one("user_sessions", None, t["user_sessions"].c.revoked_at.is_(None)),
        one("admin_bulk_operations", None, t["admin_bulk_operations"].c.status != "pending"),
        one("admin_credit_imports", None, t["admin_credit_imports"].c.status != "checked"),
        stamp("admin_saved_filters")])


class Fingerprint:
    """What a request may have left behind, read on a connection of its own (committed data).

    The full query runs only when the database says something was written since the
    last call (SQLite's data_version, PostgreSQL's transaction counter): most requests
    write nothing, and then the cheap check is all they cost.
    """

    def __init__(self, app):
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.engine = sa.create_engine(url, poolclass=sa.pool.StaticPool)
        self.marker_query = sa.text("PRAGMA data_version" if url.startswith("sqlite")
                                    else "SELECT pg_current_snapshot()::text")
        self.query = _fingerprint_query()
        self.marker = self.value = None

    def __call__(self) -> tuple:
        with self.engine.connect() as connection:
            marker = connection.execute(self.marker_query).scalar()
            if marker != self.marker:
                self.marker, self.value = marker, tuple(connection.execute(self.query).one())
        return self.value

    def close(self) -> None:
        self.engine.dispose()


def learner_state(app, user_id: int) -> dict:
    from storefront.enrolment.models import Enrolment
    from storefront.ledger.models import Account, Entry
    from storefront.payments.models import Order

    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.user_id == user_id))
        state = {
            "balance": account.balance,
            "entries": db.session.scalar(select(func.count()).select_from(Entry)
                                         .where(Entry.account_id == account.id)),
            "all entries": db.session.scalar(select(func.count()).select_from(Entry)),
            "orders": db.session.execute(select(Order.id, Order.status, Order.refunded_cents)
                                         .order_by(Order.id)).all(),
            "enrolments": db.session.execute(select(Enrolment.id, Enrolment.user_id, Enrolment.start_date,
                                                    Enrolment.cancelled_at).order_by(Enrolment.id)).all(),
        }
        db.session.remove()
    return state


# --- the campaign ---------------------------------------------------------------------

@dataclass
class Request:
    endpoint: str
    method: str
    url: str
    label: str
    args: dict = field(default_factory=dict)
    form: dict = field(default_factory=dict)
    htmx: bool = False  # as htmx sends it: the answer is a fragment


@dataclass
class Campaign:
    fingerprint: Fingerprint
    problems: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # per role
    statuses: dict[int, int] = field(default_factory=dict)
    last: tuple | None = None

    def send(self, client, token: str | None, role: str, req: Request):
        """Send one request and check what a user (and the database) would see."""
        before = self.last if self.last is not None else self.fingerprint()
        where = f"{role} {req.method} {req.url[:120]!r} [{req.label}]"
        self.sent[role] = self.sent.get(role, 0) + 1
        headers = {"HX-Request": "true"} if req.htmx else {}
        try:
            if req.method == "GET":
                response = client.get(req.url, query_string=req.args, headers=headers)
            else:
                form = dict(req.form)
                if token is not None:
                    form["csrf_token"] = token
                response = client.post(req.url, query_string=req.args, data=form, headers=headers)
        except Exception as exc:  # noqa: BLE001 - the test client re-raises what would be a 500
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            self.problems.append(f"{where}: 500 ({type(exc).__name__}: {str(exc)[:200]} "
                                 f"at {frame.filename.split('/storefront/')[-1]}:{frame.lineno})")
            self.statuses[500] = self.statuses.get(500, 0) + 1
            self.last = self.fingerprint()
            return None
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        body = response.get_data(as_text=True)
        if status >= 500:
            self.problems.append(f"{where}: {status}")
        elif status < 100:
            self.problems.append(f"{where}: not an HTTP status: {response.status!r}")
        if "Traceback (most recent call last)" in body:
            self.problems.append(f"{where}: a traceback in the page")
        if response.mimetype == "text/html" and XSS in body:
            self.problems.append(f"{where}: raw <script> in the page")
        if XSS in response.headers.get("Location", ""):
            self.problems.append(f"{where}: raw <script> in the Location header")
        if status >= 400 and not body.strip():
            self.problems.append(f"{where}: {status} with an empty body")
        elif status >= 400 and response.mimetype == "text/html" and not any(mark in body for mark in SAYS_WHY):
            self.problems.append(f"{where}: {status} without a message")
        self.last = self.fingerprint()
        if self.last != before and (status >= 400 or req.endpoint not in MAY_CHANGE):
            self.problems.append(f"{where}: answered {status} but changed the database")
        return response


def _csv_files(w: World) -> list[tuple[str, bytes, str]]:
    """(label, content, filename) of hostile CSV uploads: each column spoiled in turn."""
    files = [("empty file", b"", "empty.csv"), ("not UTF-8", b"\xff\xfe\xfa,1,x\n", "latin.csv"),
             ("NUL bytes", b"\x00" * 64, "nul.csv"), ("header only", b"email,amount,reason,expiry\n", "h.csv"),
             ("no file", None, "")]
    for kind, value in HOSTILE.items():
        if isinstance(value, list):
            continue
        rows = [f"{value},5,fuzz,", f"{w.learner.email},{value},fuzz,", f"{w.admin.email},5,{value},",
                f"{w.learner.email.upper()},5,fuzz,{value}"]
        files.append((kind, "\n".join(rows).encode("utf-8", "surrogatepass"), f"{value[:200]}.csv"))
    return files


def plan(rule, method: str, w: World, refused: bool) -> list[Request]:
    """Every request to send to one route (fewer when the role may not use it at all)."""
    endpoint, key = rule.endpoint, (rule.endpoint, method)
    inputs = INPUTS.get(key)
    path = _path_values(w, endpoint)
    requests = []

    def make(label, url=None, args=None, form=None):
        requests.append(Request(endpoint, method, url or build_url(rule, path), label, args or {}, form or {}))
        if XSS in label or XSS in repr(args) or XSS in repr(form) or XSS in (url or ""):
            # Reflected HTML again, as htmx asks for it: fragments are templates too.
            requests.append(Request(endpoint, method, url or build_url(rule, path), label + " (htmx)", args or {},
                                    form or {}, htmx=True))

    def baseline():
        return (inputs.args(w) if inputs else {}), (inputs.form(w) if inputs else {})

    # Path parameters that name nothing.
    for name, converter in rule._converters.items():
        bad = BAD_INT_PATH if isinstance(converter, IntegerConverter) else BAD_STR_PATH
        for value in bad:
            args, form = baseline()
            make(f"path {name}={value[:30]!r}", build_url(rule, {**path, name: value}), args, form)
    if refused:  # the view never reads its fields: one try with all of them hostile is enough
        args, form = baseline()
        make("refused, hostile fields", args={k: XSS for k in args}, form={k: XSS for k in form})
        return requests
    if inputs is None or inputs.file:
        if inputs is None and rule.arguments and method == "POST":
            return requests  # an action on an existing object (pay, cancel...): its path is its input
        if inputs is None and key in NO_INPUTS:  # reads nothing: every kind at once (NUL apart: refused
            # before any view runs), and HTML under the common names
            variants = [("every kind", {k: v for k, v in HOSTILE.items() if k != "nul"}),
                        ("nul", {"nul": HOSTILE["nul"]}), ("common names=html", dict.fromkeys(GENERIC, XSS))]
        elif inputs is None:  # not declared: every kind under every common name
            variants = [(f"common names={kind}", dict.fromkeys(GENERIC, value)) for kind, value in HOSTILE.items()]
        else:
            variants = []
        for label, fields in variants:
            make(label, args=fields if method == "GET" else {}, form=fields if method == "POST" else {})
        return requests
    args_base, form_base = baseline()
    for where, names in (("args", list(args_base)), ("form", list(form_base))):
        for name in names:
            for kind, value in HOSTILE.items():
                if kind in inputs.valid.get(name, ()):
                    continue
                args, form = baseline()
                (args if where == "args" else form)[name] = value
                make(f"{name}={kind}", args=args, form=form)
    return requests


def _is_refused(response) -> bool:
    """The role may not use this route at all (admin only, or not logged in)."""
    return response is not None and (response.status_code == 403 or (
        response.status_code in (301, 302, 303) and "/auth/login" in response.headers.get("Location", "")))


def run_route(campaign: Campaign, rule, method: str, w: World, role: str, client, token: str) -> None:
    endpoint = rule.endpoint
    inputs = INPUTS.get((endpoint, method))
    args, form = (inputs.args(w), inputs.form(w)) if inputs else ({}, {})
    if inputs is None and rule.arguments and method == "POST":
        first = None  # an action on an existing object: never sent to the real one
        refused = role == "learner" and endpoint.startswith("admin")
    else:
        first = campaign.send(client, token, role, Request(endpoint, method, build_url(rule, _path_values(w, endpoint)),
                                                           "baseline", args, form))
        refused = _is_refused(first)
    for req in plan(rule, method, w, refused):
        campaign.send(client, token, role, req)
    if inputs is not None and inputs.file and not refused:
        url = build_url(rule, _path_values(w, endpoint))
        for label, content, filename in _csv_files(w):
            form = {} if content is None else {inputs.file: (io.BytesIO(content), filename)}
            campaign.send(client, token, role, Request(endpoint, method, url, f"file {label}", {}, form))


# --- the shop the campaign runs against ------------------------------------------------

@pytest.fixture
def app_config():
    # The login throttle would answer 429 long before the hostile values are all tried.
    return {"STRIPE_SECRET_KEY": None, "MAIL_BACKEND": "memory", "ADMIN_IMPORT_BACKGROUND": False,
            "LOGIN_FAILURES_PER_ACCOUNT": "100000 per minute", "LOGIN_FAILURES_PER_ADDRESS": "100000 per minute"}


def _location_token(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def world(app, make_user, login, make_pack, make_course, fast_password_hashing):  # noqa: F811  (imported fixture)
    from storefront.enrolment.models import Enrolment
    from storefront.payments.models import Order

    admin = make_user("ada@example.com", name=f"Ada {XSS}", admin=True)
    learner = make_user("lea@example.com", name=f"Léa {XSS}", credits=20)
    pack = make_pack(credits=10, price_cents=9000, name=f"Pack {XSS}")
    scratch_pack = make_pack(credits=5, price_cents=5000, name="Scratch pack")
    course = make_course(f"Course {XSS}", price=50, price_cents=12000, last_start_date=None)
    cheap = make_course("Cheap course", price=5)
    scratch_course = make_course("Scratch course", price=3)
    admin_client, learner_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    login(learner_client, learner)

    assert learner_client.submit(f"/courses/{cheap.slug}/enrol", {"start_date": NEXT_WEEK}).status_code == 303
    assert learner_client.submit(f"/courses/{scratch_course.slug}/enrol", {"start_date": NEXT_WEEK}).status_code == 303
    paid_session = _location_token(learner_client.submit(f"/packs/{pack}/buy", {"quantity": "1"}))
    assert learner_client.submit(f"/checkout/simulated/{paid_session}/pay").status_code == 303
    pending_session = _location_token(learner_client.submit(f"/packs/{pack}/buy", {"quantity": "2"}))
    bulk_token = _location_token(admin_client.submit("/admin/bulk/grant", {
        "q": "lea", "amount": "1", "reason": f"Bulk {XSS}", "sort": "name"}))
    csv = f"email,amount,reason\n{learner.email},3,Import {XSS}\n".encode()
    import_token = _location_token(admin_client.submit("/admin/import", {"file": (io.BytesIO(csv), "in.csv")}))
    with app.app_context():
        enrolment, cancelled = db.session.scalars(select(Enrolment.id).where(Enrolment.user_id == learner.id)
                                                  .order_by(Enrolment.id)).all()
        orders = dict(db.session.execute(select(Order.checkout_session_id, Order.id)).all())
        db.session.remove()
    assert learner_client.submit(f"/my/courses/{cancelled}/cancel").status_code == 303
    return World(admin=admin, learner=learner, admin_client=admin_client, learner_client=learner_client,
                 pack=pack, scratch_pack=scratch_pack, course=course, scratch_course=scratch_course,
                 enrolment=enrolment, cancelled_enrolment=cancelled, paid_order=orders[paid_session], pending_order=orders[pending_session],
                 pending_session=pending_session, bulk_token=bulk_token, import_token=import_token,
                 balance=20 - 5 + 10)


# --- the tests --------------------------------------------------------------------------

def test_every_route_declares_its_inputs(tmp_path):
    """Undeclared routes are still sent hostile values under common names, but only the
    declaration tells the campaign which fields the view really reads."""
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "INSTANCE_PATH": str(tmp_path)})
    keys = {(rule.endpoint, method) for rule, method in routes(app)}
    undeclared = sorted(keys - set(INPUTS) - NO_INPUTS)
    assert undeclared == [], f"declare what these views read in INPUTS (or NO_INPUTS): {undeclared}"
    assert not (set(INPUTS) & NO_INPUTS)
    assert set(INPUTS) | NO_INPUTS <= keys, "stale entries: " + repr(sorted((set(INPUTS) | NO_INPUTS) - keys))


def test_bad_input_everywhere_changes_nothing_and_never_fails(app, world, verify_ledger, request):
    before = learner_state(app, world.learner.id)
    assert before["balance"] == world.balance
    fingerprint = Fingerprint(app)
    request.addfinalizer(fingerprint.close)
    campaign = Campaign(fingerprint)
    clients = [("admin", world.admin_client), ("learner", world.learner_client)]
    tokens = {role: client.csrf_token() for role, client in clients}
    for role, client in clients:  # the admin first: the learner then sees what the admin stored
        for rule, method in routes(app):
            if rule.endpoint != "auth.logout":
                run_route(campaign, rule, method, world, role, client, tokens[role])

    # Pages as they are now, for both (what the admin stored shows up everywhere).
    for role, client in clients:
        for rule, method in routes(app):
            if method == "GET":
                url = build_url(rule, _path_values(world, rule.endpoint))
                campaign.send(client, None, role, Request(rule.endpoint, method, url, "page after the campaign"))

    # Without the CSRF token, every POST is refused and changes nothing, even on the
    # real objects (pay, cancel an enrolment, publish, log out...).
    for role, client in clients:
        for rule, method in routes(app):
            if method != "POST":
                continue
            inputs = INPUTS.get((rule.endpoint, method))
            req = Request(rule.endpoint, method, build_url(rule, _path_values(world, rule.endpoint)),
                          "no CSRF token", inputs.args(world) if inputs else {}, inputs.form(world) if inputs else {})
            response = campaign.send(client, None, role, req)
            if response is not None and response.status_code != 400:
                campaign.problems.append(f"{role} POST {req.url} without a CSRF token: {response.status_code}")

    for role, client in clients:  # logging out last: it ends the session the campaign used
        assert client.get("/credits").status_code == 200  # still logged in: the logout without a token did nothing
        for rule, method in routes(app):
            if rule.endpoint == "auth.logout":
                run_route(campaign, rule, method, world, role, client, tokens[role])

    report = "\n".join(campaign.problems[:80])
    total = sum(campaign.sent.values())
    assert campaign.problems == [], f"{len(campaign.problems)} problems in {total} requests:\n{report}"
    assert learner_state(app, world.learner.id) == before
    verify_ledger()
    print(f"\n{total} requests {campaign.sent}, statuses {dict(sorted(campaign.statuses.items()))}")


# The parsers behind the forms, on any text: what they let through fits the database
# and the calendar (the campaign's defects were numbers past INTEGER and dates past 9999).
TEXTS = st.one_of(st.text(max_size=30), st.from_regex(r"\s*[-+]?\d{1,25}([.,]\d{0,3})?\s*", fullmatch=True),
                  st.dates().map(date.isoformat), st.sampled_from([v for v in HOSTILE.values() if isinstance(v, str)]))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=TEXTS)
def test_parsed_input_fits_the_database_and_the_calendar(text):
    from storefront.enrolment.service import InvalidStartDate, START_HORIZON, check_start_date, parse_start_date
    from storefront.money import to_cents
    from storefront.web import INTEGER_MAX, parse_int

    number = parse_int(text)
    assert number is None or -INTEGER_MAX <= number <= INTEGER_MAX
    cents = to_cents(text)
    assert cents is None or 0 <= cents <= INTEGER_MAX
    try:
        start = check_start_date(parse_start_date(text), None, on=TODAY)
    except InvalidStartDate:
        return
    assert TODAY <= start <= TODAY + START_HORIZON
    start + timedelta(days=3650)  # the longest course (3650 days) still ends on a real day


# --- regressions: one test per defect the campaign found ----------------------------------

def test_an_id_beyond_the_database_integers_names_nothing(client, make_user, login):
    """Path ids past 2**31 - 1 were a 500: "integer out of range" on PostgreSQL, "Python
    int too large to convert to SQLite INTEGER" past 2**63 on SQLite."""
    login(client, make_user(admin=True))
    for number in ("2147483648", "99999999999999999999"):
        for url in (f"/orders/{number}", f"/admin/credits/{number}", f"/admin/orders/{number}",
                    f"/admin/courses/{number}/edit", f"/admin/packs/{number}/edit"):
            response = client.get(url)
            assert response.status_code == 404, url
            assert "This page does not exist." in response.get_data(as_text=True)
        for url in (f"/packs/{number}/buy", f"/my/courses/{number}/cancel", f"/admin/courses/{number}/publish"):
            assert client.submit(url, {"quantity": "1"}).status_code == 404, url
    assert client.get("/orders/2147483647").status_code == 404  # the largest id is still an id


def test_numbers_in_query_strings_past_the_database_integers_are_ignored(client, make_user, login):
    """?before= on the credit history, ?admin= on the audit log, ?before= on a learner's
    ledger and ?order= on the checkout cancel link reached the database unbounded: a
    500 on PostgreSQL from 2**31 on (and on SQLite past 2**63)."""
    admin = make_user(admin=True, credits=3)
    login(client, admin)
    for number in ("2147483648", "99999999999999999999"):
        history = client.get(f"/credits?before={number}")
        assert history.status_code == 200 and "test credits" in history.get_data(as_text=True)
        assert client.get(f"/admin/audit?admin={number}").status_code == 200
        assert client.get(f"/admin/credits/{admin.id}?before={number}").status_code == 200
        cancelled = client.get(f"/checkout/cancel?order={number}&token=x")
        assert cancelled.status_code == 303 and cancelled.headers["Location"].endswith("/packs")


def test_audit_log_from_the_first_day_of_the_calendar(client, make_user, login):
    """?from=0001-01-01 was a 500: the day before it does not exist (OverflowError)."""
    login(client, make_user(admin=True))
    client.get("/admin/export/balances.csv").get_data()  # an audit event, today
    for query in ("from=0001-01-01", "from=0001-01-01&to=9999-12-31", "to=9999-12-31"):
        page = client.get(f"/admin/audit?{query}")
        assert page.status_code == 200, query
        assert "Balances downloaded." in page.get_data(as_text=True)
    later = date.today() + timedelta(days=2)  # whatever the local and UTC days
    assert "Balances downloaded." not in client.get(f"/admin/audit?from={later}").get_data(as_text=True)


def test_a_start_date_at_the_end_of_the_calendar_is_refused(app, client, make_user, login, make_course):  # noqa: F811
    """In a course without a last start date, 9999-12-31 was a 500 on the course page and
    on enrolling (its end date is past the calendar's last day), and paying by card
    started a checkout whose fulfilment would have failed the same way."""
    from storefront.enrolment.models import Enrolment
    from storefront.payments.models import Order

    learner = make_user(credits=20)
    course = make_course(price=5, price_cents=12000, last_start_date=None)
    login(client, learner)
    message = "The last possible start date for this course is"
    for start in ("9999-12-31", (date.today() + timedelta(days=3660)).isoformat()):
        page = client.get(f"/courses/{course.slug}?start_date={start}")
        assert page.status_code == 422 and message in page.get_data(as_text=True)
        enrol = client.submit(f"/courses/{course.slug}/enrol", {"start_date": start})
        assert enrol.status_code == 422 and message in enrol.get_data(as_text=True)
        buy = client.submit(f"/courses/{course.slug}/buy", {"start_date": start})
        assert buy.status_code == 422 and message in buy.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enrolment)) == 0
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    in_five_years = (date.today() + timedelta(days=5 * 365)).isoformat()
    assert client.get(f"/courses/{course.slug}?start_date={in_five_years}").status_code == 200


def test_a_nul_character_is_refused_with_a_message_before_any_view_reads_it(app, client, make_user, login):
    """PostgreSQL cannot store or compare text with a NUL: searching, logging in, an
    unknown slug, session id or token holding one, or a pack or course name with one,
    were a 500 there. Now a 400 that says why, on both databases, and nothing changes."""
    from storefront.catalog.models import Course, Pack

    login(client, make_user(admin=True))
    message = "The address or the form contains an invalid character (a null byte). Nothing was changed."
    gets = ["/courses?q=%00", "/courses/a%00b", "/admin/credits?q=x%00", "/checkout/success?session_id=%00",
            "/checkout/simulated/cs_%00", "/admin/bulk/%00", "/admin/import/%00/progress"]
    for url in gets:
        response = client.get(url)
        assert response.status_code == 400 and message in response.get_data(as_text=True), url
    posts = [("/auth/login", {"email": "a\x00@example.com", "password": "x"}),
             ("/admin/packs/new", {"name": "Pack\x00", "credits": "5", "price": "50", "currency": "eur"}),
             ("/admin/courses/new", {"title": "T", "slug": "t", "summary": "\x00", "price_credits": "4",
                                     "duration_days": "30"}),
             ("/admin/bulk/grant", {"q": "", "amount": "1", "reason": "why\x00"})]
    for url, form in posts:
        response = client.submit(url, form)
        assert response.status_code == 400 and message in response.get_data(as_text=True), url
    upload = client.submit("/admin/import", {"file": (io.BytesIO(b"a@b.c,1,x\n"), "in\x00.csv")})
    assert upload.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Pack)) == 0
        assert db.session.scalar(select(func.count()).select_from(Course)) == 0
    french = client.get("/courses?q=%00", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "caractère invalide (un octet nul)" in french


def test_a_pack_is_taken_off_sale_only_when_the_form_says_so(app, client, make_user, login):
    """Any value of `active` but "1" (empty, "abc"...) took the pack off sale."""
    from storefront.catalog.models import Pack

    login(client, make_user(admin=True))
    assert client.submit("/admin/packs/new", {"name": "Ten", "credits": "10", "price": "90",
                                              "currency": "eur"}).status_code == 303
    with app.app_context():
        pack_id = db.session.scalar(select(Pack.id))
    for value in ("", "abc", "true", "01", ["abc", "1"]):
        response = client.submit(f"/admin/packs/{pack_id}/active", {"active": value} if value != "" else {})
        text = response.get_data(as_text=True)
        assert response.status_code == 422 and "Nothing was changed" in text and "Ten" in text, value
    with app.app_context():
        assert db.session.get(Pack, pack_id).active is True
    assert client.submit(f"/admin/packs/{pack_id}/active", {"active": "0"}).status_code == 303
    with app.app_context():
        assert db.session.get(Pack, pack_id).active is False


def test_the_orders_filter_answers_a_real_http_status(client, make_user, login):
    """?status=paid was passed to the page helper's HTTP status: the response's status
    line read "0 paid" (no browser or server accepts that), and the filter was lost."""
    login(client, make_user(admin=True))
    for status in ("paid", "needs-refund", "expired"):
        page = client.get(f"/admin/orders?status={status}")
        assert page.status_code == 200 and page.status == "200 OK", status
        assert f'value="{status}" selected' in page.get_data(as_text=True)
    page = client.get("/admin/orders?status=abc")
    assert page.status_code == 200 and " selected" not in page.get_data(as_text=True)
