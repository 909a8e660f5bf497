"""Bulk grant to a filter (preview, confirm once) and CSV import (dry run, all-or-nothing,
replay-safe)."""
from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta

import pytest


def bulk_token(response) -> str:
    return re.search(r"/admin/bulk/([\w-]+)$", response.headers["Location"]).group(1)


def test_bulk_grant_preview_confirm_and_replay(admin_client, make_user, balance_of, audit_actions, verify_ledger):
    targets = [make_user(f"team{i}@example.com", name=f"Team {i}", credits=i) for i in range(3)]
    outsider = make_user("other@example.com", name="Zed Other")
    preview = admin_client.submit("/admin/bulk/grant", {"q": "team", "amount": "10", "reason": "Team day"})
    assert preview.status_code == 303
    token = bulk_token(preview)
    page = admin_client.get(f"/admin/bulk/{token}").get_data(as_text=True)
    assert "Grant 10 credits to the 3 users matching the filter." in page
    assert [balance_of(u.id) for u in targets] == [0, 1, 2]  # nothing before confirmation
    first = admin_client.submit(f"/admin/bulk/{token}/confirm")
    second = admin_client.submit(f"/admin/bulk/{token}/confirm")
    assert first.status_code == second.status_code == 303
    assert [balance_of(u.id) for u in targets] == [10, 11, 12]
    assert balance_of(outsider.id) == 0
    assert "already applied" in admin_client.get(f"/admin/bulk/{token}").get_data(as_text=True)
    assert audit_actions() == ["credits-bulk-granted"]
    verify_ledger()


@pytest.mark.parametrize("data,message", [
    ({"amount": "0", "reason": "x"}, "Enter a whole number of credits from 1"),
    ({"amount": "ten", "reason": "x"}, "Enter a whole number of credits from 1"),
    ({"amount": "5", "reason": ""}, "A reason is required"),
    ({"amount": "5", "reason": "x", "expires": "yesterday"}, "The expiry must be a future date"),
    ({"amount": "5", "reason": "x", "q": "nobody-matches"}, "No user matches this filter."),
])
def test_bulk_grant_bad_input(admin_client, make_user, data, message, verify_ledger):
    make_user(credits=1)
    response = admin_client.submit("/admin/bulk/grant", data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    verify_ledger()


# --- CSV import ------------------------------------------------------------------------

def upload(client, text: str, name="credits.csv"):
    return client.submit("/admin/import", {"file": (io.BytesIO(text.encode()), name)},
                         content_type="multipart/form-data")


def token_of(response) -> str:
    return re.search(r"/admin/import/([\w-]+)$", response.headers["Location"]).group(1)


FUTURE = (date.today() + timedelta(days=90)).isoformat()


@pytest.fixture
def two_learners(make_user):
    return make_user("ann@example.com", name="Ann"), make_user("ben@example.com", name="Ben", credits=1)


def test_dry_run_reports_every_bad_row(admin_client, two_learners, balance_of, verify_ledger):
    text = ("email,amount,reason,expiry\n"
            "ann@example.com,5,Welcome\n"
            "ghost@example.com,5,Welcome\n"
            "ben@example.com,-3,Oops\n"
            "ben@example.com,2.5,Oops\n"
            "ANN@example.com,5,Again\n"
            "ben@example.com,4,Late,2020-01-01\n"
            "ben@example.com,4,Bad date,31/12/2030\n"
            "ben@example.com,4\n"
            "ben@example.com,4,\n")
    response = upload(admin_client, text)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for expected in ("Unknown email: ghost@example.com", "Bad amount -3", "Bad amount 2.5",
                     "Duplicate row: ANN@example.com already appears on line 2",
                     "The expiry date 2020-01-01 is in the past", "Bad date 31/12/2030",
                     "Expected 3 or 4 columns", "A reason is required"):
        assert expected in html, expected
    assert [balance_of(u.id) for u in two_learners] == [0, 1]
    verify_ledger()


def test_import_good_file_then_reimport_does_nothing(admin_client, app, two_learners, balance_of,
                                                     audit_actions, verify_ledger):
    app.config["ADMIN_IMPORT_BACKGROUND"] = False
    text = f"ann@example.com,5,Welcome\nben@example.com,7,Welcome,{FUTURE}\n"
    checked = upload(admin_client, text)
    assert checked.status_code == 303
    token = token_of(checked)
    page = admin_client.get(f"/admin/import/{token}").get_data(as_text=True)
    assert "Every line is valid." in page and "12 credits in total." in page
    assert [balance_of(u.id) for u in two_learners] == [0, 1]  # the dry run grants nothing
    assert admin_client.submit(f"/admin/import/{token}/apply").status_code == 303
    assert [balance_of(u.id) for u in two_learners] == [5, 8]
    assert "Import applied: 2 new grants" in admin_client.get(f"/admin/import/{token}").get_data(as_text=True)
    # applying twice, or importing the same file again, changes nothing
    admin_client.submit(f"/admin/import/{token}/apply")
    again = token_of(upload(admin_client, text))
    assert "already imported" in admin_client.get(f"/admin/import/{again}").get_data(as_text=True)
    admin_client.submit(f"/admin/import/{again}/apply")
    assert [balance_of(u.id) for u in two_learners] == [5, 8]
    assert "0 new grants, 2 lines already imported" in admin_client.get(f"/admin/import/{again}").get_data(as_text=True)
    assert audit_actions() == ["credits-imported", "credits-imported"]
    verify_ledger()


def test_import_is_all_or_nothing(admin_client, app, two_learners, balance_of, verify_ledger):
    """A row that fails when applied (its expiry passed since the dry run) rolls back all rows."""
    from storefront.admin.models import CreditImport
    from storefront.db import write_transaction
    from storefront.extensions import db

    app.config["ADMIN_IMPORT_BACKGROUND"] = False
    token = token_of(upload(admin_client, f"ann@example.com,5,One\nben@example.com,7,Two,{FUTURE}\n"))
    with app.app_context(), write_transaction():  # simulate: the second row went bad meanwhile
        job = db.session.scalar(db.select(CreditImport).where(CreditImport.token == token))
        job.content = job.content.replace(FUTURE, "2020-01-01")
    admin_client.submit(f"/admin/import/{token}/apply")
    page = admin_client.get(f"/admin/import/{token}").get_data(as_text=True)
    assert "The import failed and nothing was applied" in page
    assert [balance_of(u.id) for u in two_learners] == [0, 1]
    verify_ledger()


def test_large_import_runs_in_background_with_progress(admin_client, app, make_user, balance_of, verify_ledger):
    users = [make_user(f"bulk{i}@example.com", name=f"Bulk {i}") for i in range(120)]
    text = "".join(f"{u.email},2,Campaign\n" for u in users)
    token = token_of(upload(admin_client, text))
    assert admin_client.submit(f"/admin/import/{token}/apply").status_code == 303
    deadline = time.monotonic() + 60
    while True:
        fragment = admin_client.htmx("GET", f"/admin/import/{token}/progress").get_data(as_text=True)
        if 'data-status="applied"' in fragment or 'data-status="failed"' in fragment:
            break
        assert 'hx-trigger="every 1s"' in fragment  # still running: keeps polling
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert 'data-status="applied"' in fragment and "hx-trigger" not in fragment
    assert all(balance_of(u.id) == 2 for u in users)
    verify_ledger()


def test_upload_without_file_or_binary_file(admin_client):
    response = admin_client.submit("/admin/import", {}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose a CSV file" in response.get_data(as_text=True)
    response = admin_client.submit("/admin/import", {"file": (io.BytesIO(b"\xff\xfe\x00bad"), "x.csv")},
                                   content_type="multipart/form-data")
    assert response.status_code == 422 and "not UTF-8" in response.get_data(as_text=True)
