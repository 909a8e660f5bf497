"""The admin area across the three admin blueprints (admin, admin_orders, admin_courses):
a learner's page lists enrolments and orders, the dashboard's money comes from the
orders, every admin action reads well in the audit log, and one sub-navigation joins
everything. Orders are bought and paid through the simulated provider's pages, refunds
go through /admin/orders, enrolments through enrolment.service.enrol: the real paths.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select

from storefront.auth.models import User
from storefront.catalog.models import Course, Pack
from storefront.db import write_transaction
from storefront.enrolment import service as enrolment
from storefront.enrolment.models import Enrolment
from storefront.extensions import db
from storefront.ledger import service as ledger
from storefront.payments.adjustments import record_dispute
from storefront.payments.models import Order, Status

NAV = ("Dashboard", "Credits", "Orders", "Courses", "Packs", "Audit log")


@pytest.fixture
def app_config():
    # No Stripe key: the simulated provider, whose "Pay" goes through the real fulfilment.
    return {"STRIPE_SECRET_KEY": None, "MAIL_BACKEND": "memory"}


def course_form(title="First aid", slug="first-aid", price="3"):
    return {"title": title, "slug": slug, "summary": "Respond to emergencies.", "description": "Two days.",
            "price_credits": price, "price_money": "", "capacity": "", "duration_days": "14",
            "last_start_date": "", "refundable": "y", "published": "y"}


class AdminWorld:
    """What the admin and learners do, through the pages and the services."""

    def __init__(self, app, admin_client, make_user, login):
        self.app, self.admin, self.make_user, self.login = app, admin_client, make_user, login

    def course(self, title, slug, price="3") -> int:
        assert self.admin.submit("/admin/courses/new", course_form(title, slug, price)).status_code == 303
        with self.app.app_context():
            return db.session.scalar(select(Course.id).where(Course.slug == slug))

    def pack(self, credits=10, price="90") -> int:
        response = self.admin.submit("/admin/packs/new", {"name": f"{credits} credits", "credits": str(credits),
                                                          "price": price, "currency": "eur"})
        assert response.status_code == 303
        with self.app.app_context():
            return db.session.scalar(select(func.max(Pack.id)))

    def learner(self, **kwargs):
        user = self.make_user(**kwargs)
        client = self.app.test_client()
        self.login(client, user)
        return user, client

    def buy(self, client, pack_id: int, pay: bool = True) -> int:
        """Buy a pack from /packs and (unless pay=False) pay on the simulated page; the order id."""
        response = client.submit(f"/packs/{pack_id}/buy", {"quantity": "1"})
        assert response.status_code == 303 and "/checkout/simulated/" in response.headers["Location"]
        path = "/" + response.headers["Location"].split("://", 1)[-1].split("/", 1)[1]
        if pay:
            assert client.submit(f"{path}/pay").status_code == 303
        session_id = path.rsplit("/", 1)[1]
        with self.app.app_context():
            return db.session.scalar(select(Order.id).where(Order.checkout_session_id == session_id))

    def refund(self, order_id: int, mode: str) -> None:
        """The admin reviews then confirms a refund on /admin/orders/<id>."""
        review = self.admin.submit(f"/admin/orders/{order_id}/refund", {"mode": mode})
        assert review.status_code == 200, review.get_data(as_text=True)
        form = dict(re.findall(r'name="(mode|amount_cents|form_id|confirm)" value="([^"]*)"',
                               review.get_data(as_text=True)))
        assert self.admin.submit(f"/admin/orders/{order_id}/refund", form).status_code == 303

    def balance(self, user_id: int) -> int:
        with self.app.app_context():
            return ledger.balance(user_id)

    def enrol(self, user_id: int, course_id: int, days_from_today: int):
        with self.app.app_context(), write_transaction():
            start = enrolment.today() + timedelta(days=days_from_today)
            return enrolment.enrol(db.session.get(User, user_id), db.session.get(Course, course_id), start).id

    def enrol_by_card(self, user_id: int, course_id: int, order_id: int):
        """The card path of the enrolment service (what a paid course order fulfils)."""
        with self.app.app_context(), write_transaction():
            start = (enrolment.today() + timedelta(days=3)).isoformat()
            order = SimpleNamespace(id=order_id, user_id=user_id, product_id=course_id,
                                    details={"start_date": start})
            return enrolment.enrol_paid_by_card(order).id

    def dispute(self, order_id: int, amount_cents: int, status: str = "needs_response") -> None:
        with self.app.app_context(), write_transaction():
            intent = db.session.get(Order, order_id).payment_intent_id
            record_dispute({"id": f"dp_{order_id}", "payment_intent": intent, "amount": amount_cents,
                            "status": status})

    @contextmanager
    def count_queries(self):
        counter = SimpleNamespace(n=0)

        def count(*_args):
            counter.n += 1

        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def world(app, admin_client, make_user, login):
    return AdminWorld(app, admin_client, make_user, login)


def text_of(html: str, testid: str) -> str:
    """The visible text of the element carrying this data-testid."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no {testid}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2))).strip()


# --- 1. one learner: enrolments and orders ----------------------------------------------

def test_learner_page_shows_enrolments_and_orders(world, verify_ledger):
    course_id = world.course("First aid", "first-aid", price="3")
    pack_id = world.pack(credits=10, price="90")
    learner, client = world.learner(name="Lea Learner")
    order_id = world.buy(client, pack_id)
    enrolment_id = world.enrol(learner.id, course_id, days_from_today=7)
    world.refund(order_id, "unspent")  # the 7 unspent credits: €63.00 back, order partly refunded

    html = world.admin.get(f"/admin/credits/{learner.id}").get_data(as_text=True)
    row = text_of(html, f"user-enrolment-{enrolment_id}")
    assert "First aid" in row and "Upcoming" in row and "credits 3 Cancel enrolment" in row
    assert f'href="/admin/courses/{course_id}/edit"' in html
    order = text_of(html, f"user-order-{order_id}")
    assert f"#{order_id}" in order and "1 × 10 credits" in order
    assert "€90.00" in order and "partly refunded" in order and "€63.00" in order
    assert f'href="/admin/orders/{order_id}"' in html
    assert world.admin.get(f"/admin/orders/{order_id}").status_code == 200
    verify_ledger()


def test_learner_page_costs_the_same_queries_for_many_rows(world, verify_ledger):
    """No per-row query: 1 enrolment + 1 order costs what 3 enrolments + 4 orders cost."""
    courses = [world.course(f"Course {i}", f"course-{i}", price="1") for i in range(3)]
    pack_id = world.pack(credits=10, price="90")
    few, few_client = world.learner()
    world.buy(few_client, pack_id)
    world.enrol(few.id, courses[0], 1)
    many, many_client = world.learner()
    for pay in (True, True, False, True):
        world.buy(many_client, pack_id, pay=pay)
    for i, course_id in enumerate(courses[:2]):
        world.enrol(many.id, course_id, i + 1)
    card = world.enrol_by_card(many.id, courses[2], order_id=999)

    world.admin.get(f"/admin/credits/{few.id}")  # warm-up (first-request caches)
    with world.count_queries() as one:
        assert world.admin.get(f"/admin/credits/{few.id}").status_code == 200
    with world.count_queries() as seven:
        html = world.admin.get(f"/admin/credits/{many.id}").get_data(as_text=True)
    assert html.count('data-testid="user-order-') == 4 and html.count('data-testid="user-enrolment-') == 3
    assert "card" in text_of(html, f"user-enrolment-{card}")
    assert one.n == seven.n, (one.n, seven.n)
    verify_ledger()


# --- 2. dashboard money from the orders ---------------------------------------------------

def test_dashboard_money_is_paid_minus_refunded_per_order(world, app, verify_ledger):
    today_course = world.course("Today", "today", price="2")
    later_course = world.course("Later", "later", price="2")
    pack_id = world.pack(credits=10, price="90")
    small_pack = world.pack(credits=5, price="50.50")
    ann, ann_client = world.learner()
    bob, bob_client = world.learner()
    refunded = world.buy(ann_client, pack_id)
    world.enrol(ann.id, today_course, 0)      # active today
    world.enrol(ann.id, later_course, 10)     # upcoming
    world.refund(refunded, "unspent")         # 6 unspent of 10 -> €54.00 back
    disputed = world.buy(bob_client, small_pack)
    world.buy(bob_client, pack_id, pay=False)  # pending: no money yet
    world.dispute(disputed, 2000)

    with app.app_context():
        rows = db.session.scalars(select(Order).where(Order.status.in_(Status.SETTLED))).all()
        expected = sum(o.amount_cents - o.refunded_cents for o in rows)
        assert {o.refunded_cents for o in rows} == {5400, 0}
    assert expected == 9000 - 5400 + 5050

    html = world.admin.get("/admin").get_data(as_text=True)
    assert text_of(html, "received") == "€86.50"  # == expected, formatted
    assert "€140.50" in html and "€54.00" in html  # paid, refunded
    counts = {name: text_of(html, name) for name in
              ("orders-paid", "orders-pending", "refunds", "disputes-open", "enrolments-upcoming",
               "enrolments-active")}
    assert counts == {"orders-paid": "2", "orders-pending": "1", "refunds": "1", "disputes-open": "1",
                      "enrolments-upcoming": "1", "enrolments-active": "1"}
    assert "At stake: €20.00" in html
    verify_ledger()


def test_a_lost_dispute_comes_off_the_money_received(world, verify_ledger):
    pack_id = world.pack(credits=10, price="90")
    ann, ann_client = world.learner()
    kept = world.buy(ann_client, pack_id)
    lost = world.buy(ann_client, pack_id)
    world.dispute(lost, 9000)
    world.dispute(lost, 9000, status="lost")  # the bank took the money back
    world.dispute(kept, 9000)
    world.dispute(kept, 9000, status="won")

    html = world.admin.get("/admin").get_data(as_text=True)
    assert text_of(html, "received") == "€90.00"
    assert "Lost in disputes: €90.00" in html
    verify_ledger()


# --- 3. navigation ------------------------------------------------------------------------

def test_every_admin_page_has_the_same_sub_navigation(world, admin_client):
    course_id = world.course("First aid", "first-aid")
    pack_id = world.pack()
    learner, client = world.learner()
    order_id = world.buy(client, pack_id)
    pages = {"/admin": "dashboard", "/admin/credits": "credits", f"/admin/credits/{learner.id}": "credits",
             "/admin/import": "credits", "/admin/orders": "orders", f"/admin/orders/{order_id}": "orders",
             "/admin/courses": "courses", "/admin/courses/new": "courses",
             f"/admin/courses/{course_id}/edit": "courses", "/admin/packs": "packs",
             f"/admin/packs/{pack_id}/edit": "packs", "/admin/audit": "audit"}
    for url, section in pages.items():
        response = admin_client.get(url)
        assert response.status_code == 200, url
        nav = re.search(r'<nav class="admin-nav".*?</nav>', response.get_data(as_text=True), re.S).group(0)
        links = re.findall(r'<a href="([^"]+)" data-section="(\w+)"( aria-current="page")?>([^<]+)</a>', nav)
        assert [label for *_, label in links] == list(NAV), url
        assert [href for href, *_ in links] == ["/admin", "/admin/credits", "/admin/orders", "/admin/courses",
                                               "/admin/packs", "/admin/audit"]
        assert [key for _, key, current, _ in links if current] == [section], url


def test_top_nav_and_widget_lead_admins_to_the_admin_area(admin_client, make_user, login, app):
    home = admin_client.get("/").get_data(as_text=True)
    assert re.search(r'<a href="/admin">Admin</a>', home)
    assert re.search(r'<a href="/admin/credits">Manage credits \(admin\)</a>', home)
    learner = app.test_client()
    login(learner, make_user())
    page = learner.get("/").get_data(as_text=True)
    assert 'href="/admin' not in page


# --- 4. audit: every area's actions, readable ---------------------------------------------

def test_audit_log_reads_well_for_every_area(world, admin_client, make_user, verify_ledger):
    course_id = world.course("First aid", "first-aid")
    assert admin_client.submit(f"/admin/courses/{course_id}/edit",
                               course_form("First aid at work", "first-aid")).status_code == 303
    assert admin_client.submit(f"/admin/courses/{course_id}/unpublish", {}).status_code == 303
    pack_id = world.pack(credits=10, price="90")
    learner, client = world.learner(name="Lea Learner")
    order_id = world.buy(client, pack_id)
    world.refund(order_id, "full")
    from .conftest import form_fields
    admin_client.submit(f"/admin/credits/{learner.id}/adjust",
                        {**form_fields(admin_client, learner.id), "delta": "4", "reason": "Goodwill"})
    admin_client.get("/admin/export/balances.csv").close()

    html = admin_client.get("/admin/audit").get_data(as_text=True)
    rows = {action: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)) for action, body in
            re.findall(r'<tr data-action="([\w-]+)">(.*?)</tr>', html, re.S)}
    assert set(rows) == {"course-created", "course-updated", "course-unpublished", "pack-created",
                         "order-refund", "credits-adjusted", "credits-exported"}
    assert "Course edited" in rows["course-updated"] and "title: First aid → First aid at work" in rows["course-updated"]
    assert f"Course #{course_id}" in rows["course-updated"]
    assert f'href="/admin/courses/{course_id}/edit"' in html
    assert "Course hidden" in rows["course-unpublished"]
    assert "Order refunded" in rows["order-refund"] and f"Order #{order_id}" in rows["order-refund"]
    assert "€90.00 refunded; 10 credits taken back, 0 already spent" in rows["order-refund"]
    assert f'href="/admin/orders/{order_id}"' in html
    assert "Credits adjusted" in rows["credits-adjusted"] and "Lea Learner" in rows["credits-adjusted"]
    assert "+4 credits (balance 0 → 4). Reason: Goodwill" in rows["credits-adjusted"]
    assert "Pack created" in rows["pack-created"] and "Balances downloaded." in rows["credits-exported"]

    admin_client.submit("/lang", {"lang": "fr", "next": "/admin/audit"})
    french = admin_client.get("/admin/audit").get_data(as_text=True)
    for text in ("Formation modifiée", "titre : First aid → First aid at work", "Commande remboursée",
                 "remboursés ; 10 crédits repris", "Crédits modifiés", "Formation masquée", "Pack créé",
                 "Journal d'audit", "Commandes", "Formations"):
        assert text in french, text
    verify_ledger()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_dashboard_and_learner_page_in_french(world, admin_client):
    learner, _ = world.learner()
    admin_client.submit("/lang", {"lang": "fr", "next": "/admin"})
    html = admin_client.get("/admin").get_data(as_text=True)
    for text in ("Argent encaissé (paiements moins remboursements et litiges perdus)", "Commandes payées", "Litiges en cours",
                 "Inscriptions à venir", "Inscriptions en cours", "Activité"):
        assert text in html, text
    page = admin_client.get(f"/admin/credits/{learner.id}").get_data(as_text=True)
    assert "Aucune inscription." in page and "Payé par" not in page  # no table when empty


# --- 5. an admin cancels a learner's enrolment --------------------------------------------

def cancel_url(learner_id: int, enrolment_id: int) -> str:
    return f"/admin/credits/{learner_id}/enrolments/{enrolment_id}/cancel"


def seats_taken(app, course_id: int) -> int:
    with app.app_context():
        return db.session.get(Course, course_id).seats_taken


def test_admin_cancels_an_upcoming_enrolment_once_with_a_reason(world, app, verify_ledger):
    course_id = world.course("First aid", "first-aid", price="3")
    learner, client = world.learner(name="Lea Learner", credits=10)
    enrolment_id = world.enrol(learner.id, course_id, days_from_today=7)
    assert (world.balance(learner.id), seats_taken(app, course_id)) == (7, 1)
    page = world.admin.get(f"/admin/credits/{learner.id}").get_data(as_text=True)
    assert "Cancel and return 3 credits" in text_of(page, f"user-enrolment-{enrolment_id}")

    for reason in ("", "   ", "x" * 501):  # a reason is mandatory, and bounded
        refused = world.admin.submit(cancel_url(learner.id, enrolment_id), {"reason": reason})
        assert refused.status_code == 422
        assert "A reason is required (at most 500 characters)." in refused.get_data(as_text=True)
    assert world.balance(learner.id) == 7

    done = world.admin.submit(cancel_url(learner.id, enrolment_id), {"reason": "Moved to the March session"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/admin/credits/{learner.id}")
    page = world.admin.get(done.headers["Location"]).get_data(as_text=True)
    assert "Enrolment in First aid cancelled: 3 credits returned." in page
    assert "Cancelled" in text_of(page, f"user-enrolment-{enrolment_id}")
    assert "Cancel and return" not in text_of(page, f"user-enrolment-{enrolment_id}")
    assert (world.balance(learner.id), seats_taken(app, course_id)) == (10, 0)

    again = world.admin.submit(cancel_url(learner.id, enrolment_id), {"reason": "Moved to the March session"})
    assert again.status_code == 303  # a double submit (or a second admin): once
    assert "This enrolment is already cancelled." in world.admin.get(again.headers["Location"]).get_data(as_text=True)
    assert (world.balance(learner.id), seats_taken(app, course_id)) == (10, 0)

    history = client.get("/credits").get_data(as_text=True)
    assert "Enrolment cancelled by an administrator: credits returned — Moved to the March session" in history
    client.submit("/lang", {"lang": "fr", "next": "/credits"})
    assert ("Inscription annulée par un administrateur : crédits restitués — Moved to the March session"
            in client.get("/credits").get_data(as_text=True))
    assert "cancelled" in client.get("/my/courses").get_data(as_text=True).lower()
    audit = world.admin.get("/admin/audit").get_data(as_text=True)
    rows = re.findall(r'<tr data-action="enrolment-cancelled">(.*?)</tr>', audit, re.S)
    assert len(rows) == 1
    row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows[0]))
    assert "Enrolment cancelled" in row and "Lea Learner" in row
    assert "First aid" in row and "3 credits returned. Reason: Moved to the March session" in row
    verify_ledger()


def test_admin_cancels_a_running_enrolment_the_learner_cannot(world, app, verify_ledger):
    world.admin.submit("/admin/courses/new", {**course_form("Welding", "welding", "4"), "refundable": ""})
    with app.app_context():
        course_id = db.session.scalar(select(Course.id).where(Course.slug == "welding"))
    learner, client = world.learner(credits=4)
    enrolment_id = world.enrol(learner.id, course_id, days_from_today=0)  # started today, not refundable
    assert client.submit(f"/my/courses/{enrolment_id}/cancel").status_code == 409
    assert world.balance(learner.id) == 0
    done = world.admin.submit(cancel_url(learner.id, enrolment_id), {"reason": "Course moved, learner ill"})
    assert done.status_code == 303
    assert world.balance(learner.id) == 4 and seats_taken(app, course_id) == 0
    assert "Enrolment cancelled by an administrator" in client.get("/credits").get_data(as_text=True)
    verify_ledger()


def test_card_paid_ended_and_foreign_enrolments_are_not_cancelled_here(world, app, verify_ledger):
    courses = [world.course(f"Course {i}", f"course-{i}", price="2") for i in range(2)]
    learner, _ = world.learner(credits=10)
    other, _ = world.learner(credits=10)
    card = world.enrol_by_card(learner.id, courses[0], order_id=999)
    ended = world.enrol(learner.id, courses[1], days_from_today=0)
    with app.app_context(), write_transaction():  # it ran last month
        row = db.session.get(Enrolment, ended)
        row.start_date, row.end_date = row.start_date - timedelta(days=40), row.end_date - timedelta(days=40)
    foreign = world.enrol(other.id, courses[0], days_from_today=3)

    page = world.admin.get(f"/admin/credits/{learner.id}").get_data(as_text=True)
    assert "Refund the order to cancel" in text_of(page, f"user-enrolment-{card}")
    assert 'href="/admin/orders/999"' in page
    assert "Cancel and return" not in text_of(page, f"user-enrolment-{ended}")
    for enrolment_id in (card, ended):
        refused = world.admin.submit(cancel_url(learner.id, enrolment_id), {"reason": "Please"})
        assert refused.status_code == 409
        assert "a card payment is undone by refunding its order" in refused.get_data(as_text=True)
    assert world.admin.submit(cancel_url(learner.id, foreign), {"reason": "Please"}).status_code == 404
    assert world.admin.submit(cancel_url(learner.id, 10**9), {"reason": "Please"}).status_code == 404
    assert world.admin.submit(cancel_url(10**9, foreign), {"reason": "Please"}).status_code == 404
    assert (world.balance(learner.id), world.balance(other.id)) == (8, 8)
    assert world.admin.get("/admin/audit").get_data(as_text=True).count('data-action="enrolment-cancelled"') == 0
    verify_ledger()


def test_an_admin_cancelling_their_own_enrolment_reads_as_their_own(world, verify_ledger):
    course_id = world.course("First aid", "first-aid", price="3")
    admin, client = world.learner(admin=True, credits=5)
    enrolment_id = world.enrol(admin.id, course_id, days_from_today=7)
    assert client.submit(f"/my/courses/{enrolment_id}/cancel").status_code == 303
    history = client.get("/credits").get_data(as_text=True)
    rows = re.search(r'<tbody id="history-rows">(.*?)</tbody>', history, re.S).group(1)
    assert "Enrolment cancelled: credits returned" in rows and "cancelled by an administrator" not in rows, rows
    assert world.balance(admin.id) == 5
    verify_ledger()
