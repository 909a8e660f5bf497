"""Bad input gets a clear error message and changes nothing; never a 500.

One test per defect that the bad-input campaign found, each on both databases.
"""
from __future__ import annotations

import io
from datetime import date, timedelta

from sqlalchemy import func, select

from storefront.extensions import db

from payments.course_helpers import make_course  # noqa: F401  (fixture)


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
