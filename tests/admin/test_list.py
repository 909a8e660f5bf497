"""The credits list: filter (name/email prefix, balance range), sort, pages, saved filter,
and a constant number of queries per page."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from storefront.extensions import db

from .conftest import row_of


@pytest.fixture
def learners(make_user):
    return {
        "alice": make_user("alice@example.com", name="Alice Martin", credits=5),
        "albert": make_user("albert@corp.example.org", name="Albert Durand", credits=50),
        "bruno": make_user("bruno@example.com", name="Bruno Alvarez", credits=0),
        "chloe": make_user("c.petit@example.com", name="Chloé Petit", credits=12),
    }


def names(html: str) -> list[str]:
    return re.findall(r'<tr id="user-\d+"[^>]*>\s*<td><a [^>]*>([^<]+)</a>', html)


def filtered(admin_client, q: str) -> list[str]:
    return names(admin_client.get("/admin/credits", query_string={"q": q}).get_data(as_text=True))


def test_filter_by_name_or_email_prefix(admin_client, learners):
    assert filtered(admin_client, "al") == ["Albert Durand", "Alice Martin", "Bruno Alvarez"]  # ALvarez
    assert filtered(admin_client, "C.PET") == ["Chloé Petit"]
    html = admin_client.get("/admin/credits?q=100%25").get_data(as_text=True)
    assert names(html) == [] and "No user matches this filter." in html


def test_filter_finds_the_start_of_any_word_of_name_or_email(admin_client, learners, make_user):
    assert filtered(admin_client, "mart") == ["Alice Martin"]         # a surname
    assert filtered(admin_client, "PETIT") == ["Chloé Petit"]         # any case
    assert filtered(admin_client, "chlo") == ["Chloé Petit"]
    assert filtered(admin_client, "CHLOÉ") == ["Chloé Petit"]         # accented capitals too
    assert filtered(admin_client, "corp") == ["Albert Durand"]        # the email's domain
    assert filtered(admin_client, "durand albert") == ["Albert Durand"]  # words in any order
    assert filtered(admin_client, "al dur") == ["Albert Durand"]      # every word must match
    assert filtered(admin_client, "al zzz") == []
    assert filtered(admin_client, "artin") == []                      # not inside a word
    # a renamed learner is found by the new name only
    from storefront.auth.models import User
    with admin_client.application.app_context():
        from storefront.db import write_transaction
        with write_transaction():
            db.session.get(User, learners["bruno"].id).display_name = "Bruno Zeller"
    assert filtered(admin_client, "zel") == ["Bruno Zeller"]
    assert filtered(admin_client, "alv") == []


def test_balance_range_and_sort(admin_client, learners):
    html = admin_client.get("/admin/credits?min=5&max=20&sort=-balance").get_data(as_text=True)
    assert names(html) == ["Chloé Petit", "Alice Martin"]
    html = admin_client.get("/admin/credits?sort=balance").get_data(as_text=True)
    assert names(html)[-1] == "Albert Durand"


def test_bad_filter_values_get_a_message(admin_client, learners):
    response = admin_client.get("/admin/credits?min=abc&max=-1")
    assert response.status_code == 422
    assert "The balance bounds must be whole numbers" in response.get_data(as_text=True)
    response = admin_client.get("/admin/credits?min=10&max=5")
    assert "The minimum balance is larger than the maximum." in response.get_data(as_text=True)


def test_htmx_filter_returns_the_table_fragment(admin_client, learners):
    response = admin_client.htmx("GET", "/admin/credits?q=bru")
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="user-table">')
    assert names(html) == ["Bruno Alvarez"]
    assert "<html" not in html


def test_saved_filter_applies_without_parameters_and_clears(admin_client, app, admin, login, learners):
    response = admin_client.submit("/admin/credits/filter", {"q": "al", "min": "10", "sort": "-balance"})
    assert response.status_code == 303
    html = admin_client.get("/admin/credits").get_data(as_text=True)
    assert names(html) == ["Albert Durand"]
    assert 'value="al"' in html
    # another session (another device) of the same admin finds it too
    other = app.test_client()
    login(other, admin)
    assert names(other.get("/admin/credits").get_data(as_text=True)) == ["Albert Durand"]
    # explicit parameters win over the saved filter
    assert len(names(admin_client.get("/admin/credits?q=").get_data(as_text=True))) == 5
    assert admin_client.submit("/admin/credits/filter/clear").status_code == 303
    assert len(names(admin_client.get("/admin/credits").get_data(as_text=True))) == 5


def test_saved_filter_is_per_admin(admin_client, app, make_user, login, learners):
    admin_client.submit("/admin/credits/filter", {"q": "al"})
    bob = app.test_client()
    login(bob, make_user("bob@example.com", name="Bob Admin", admin=True))
    assert len(names(bob.get("/admin/credits").get_data(as_text=True))) == 6


def test_pagination(admin_client, make_user):
    for i in range(30):
        make_user(f"p{i:02d}@example.com", name=f"Pupil {i:02d}")
    first = admin_client.get("/admin/credits?q=pupil").get_data(as_text=True)
    assert len(names(first)) == 25 and "30 users match." in first and "Page 1 of 2" in first
    second = admin_client.get("/admin/credits?q=pupil&page=2").get_data(as_text=True)
    assert names(second) == [f"Pupil {i}" for i in range(25, 30)]


def test_expiring_soon_and_last_change_columns(admin_client, make_user, grant):
    from datetime import timedelta
    from storefront.db import utcnow

    learner = make_user()
    grant(learner.id, 4, "soon", expires_at=utcnow() + timedelta(days=10))
    grant(learner.id, 6, "later", expires_at=utcnow() + timedelta(days=100))
    row = row_of(admin_client.get("/admin/credits").get_data(as_text=True), learner.id)
    assert re.search(r'<td class="num">4</td>', row)


def count_queries(app, client, url):
    statements = []
    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return len(statements)


def test_constant_number_of_queries(app, admin_client, make_user, grant):
    make_user(credits=3)
    few = count_queries(app, admin_client, "/admin/credits")
    for i in range(40):
        user = make_user(credits=i + 1)
        grant(user.id, 2, f"extra-{i}", expires_at=None)
    many = count_queries(app, admin_client, "/admin/credits")
    assert few == many
    assert many <= 10
