"""Bad input gets a clear error message and changes nothing; never a 500.

One test per defect that the bad-input campaign found, each on both databases.
"""
from __future__ import annotations

from datetime import date, timedelta


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
