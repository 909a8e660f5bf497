"""Per-learner adjustments: add, remove, set; stale balance; double submit; bad input."""
from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest

from .conftest import form_fields, row_of


def adjust(client, user_id, htmx=False, **data):
    fields = {**form_fields(client, user_id), **{k: str(v) for k, v in data.items()}}
    if htmx:
        return client.htmx("POST", f"/admin/credits/{user_id}/adjust", data=fields)
    return client.submit(f"/admin/credits/{user_id}/adjust", fields)


def test_add_credits_with_reason(admin_client, make_user, balance_of, audit_actions, verify_ledger):
    learner = make_user()
    response = adjust(admin_client, learner.id, delta="20", reason="Welcome gift")
    assert response.status_code == 303
    assert balance_of(learner.id) == 20
    page = admin_client.get(f"/admin/credits/{learner.id}").get_data(as_text=True)
    assert "Welcome gift" in page and "Ada Admin" in page
    assert audit_actions() == ["credits-adjusted"]
    verify_ledger()


def test_htmx_answer_is_the_row_with_new_balance(admin_client, make_user, verify_ledger):
    learner = make_user()
    response = adjust(admin_client, learner.id, htmx=True, delta="20", reason="Gift")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="user-{learner.id}"')
    assert 'data-testid="row-balance">20<' in html
    assert "credits-changed" in response.headers["HX-Trigger"]
    verify_ledger()


def test_remove_and_set(admin_client, make_user, balance_of, verify_ledger):
    learner = make_user(credits=30)
    assert adjust(admin_client, learner.id, delta="-12", reason="Mistake").status_code == 303
    assert balance_of(learner.id) == 18
    assert adjust(admin_client, learner.id, set="5", reason="Agreed balance").status_code == 303
    assert balance_of(learner.id) == 5
    assert adjust(admin_client, learner.id, set="40", reason="Top up to 40").status_code == 303
    assert balance_of(learner.id) == 40
    verify_ledger()


def test_expiry_for_added_credits(admin_client, make_user, app, verify_ledger):
    from storefront.ledger.models import Lot
    from storefront.extensions import db

    learner = make_user()
    day = (date.today() + timedelta(days=40)).isoformat()
    assert adjust(admin_client, learner.id, delta="7", reason="Promo", expires=day).status_code == 303
    with app.app_context():
        lot = db.session.scalars(db.select(Lot)).one()
        assert lot.expires_at.date().isoformat() == day
    verify_ledger()


def test_removal_larger_than_balance_is_refused(admin_client, make_user, balance_of, audit_actions, verify_ledger):
    learner = make_user(credits=10)
    response = adjust(admin_client, learner.id, htmx=True, delta="-11", reason="Too much")
    assert response.status_code == 422
    assert "Cannot remove 11 credits: the balance is only 10." in response.get_data(as_text=True)
    assert balance_of(learner.id) == 10
    assert audit_actions() == []
    verify_ledger()


@pytest.mark.parametrize("data,message", [
    ({"delta": "abc", "reason": "x"}, "Enter a whole number of credits"),
    ({"delta": "1.5", "reason": "x"}, "Enter a whole number of credits"),
    ({"delta": "0", "reason": "x"}, "Enter a whole number of credits"),
    ({"delta": "1000001", "reason": "x"}, "Enter a whole number of credits"),
    ({"delta": "1e3", "reason": "x"}, "Enter a whole number of credits"),
    ({"set": "-1", "reason": "x"}, "Enter the new balance"),
    ({"delta": "5", "set": "5", "reason": "x"}, "either the credits to add or remove, or the new balance"),
    ({"reason": "x"}, "either the credits to add or remove, or the new balance"),
    ({"delta": "5", "reason": "   "}, "A reason is required"),
    ({"delta": "5"}, "A reason is required"),
    ({"delta": "5", "reason": "x" * 501}, "A reason is required"),
    ({"delta": "5", "reason": "x", "expires": "2020-01-01"}, "The expiry must be a future date"),
    ({"delta": "5", "reason": "x", "expires": "31/12/2099"}, "The expiry must be a future date"),
    ({"delta": "-5", "reason": "x", "expires": "2099-01-01"}, "An expiry date only applies"),
    ({"set": "10", "reason": "x"}, "The balance is already 10"),
    ({"delta": "5", "reason": "x", "form_id": "not-a-uuid"}, "The form is incomplete"),
    ({"delta": "5", "reason": "x", "expected_balance": ""}, "The form is incomplete"),
])
def test_bad_input_is_refused_with_a_message(admin_client, make_user, balance_of, data, message, verify_ledger):
    learner = make_user(credits=10)
    for htmx in (True, False):
        response = adjust(admin_client, learner.id, htmx=htmx, **data)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert balance_of(learner.id) == 10
    verify_ledger()


def test_unknown_user_is_404(admin_client):
    assert admin_client.submit("/admin/credits/999999/adjust", {"delta": "1", "reason": "x"}).status_code == 404
    assert admin_client.get("/admin/credits/999999").status_code == 404


def test_double_submit_changes_once(admin_client, make_user, balance_of, audit_actions, verify_ledger):
    learner = make_user(credits=20)
    fields = {**form_fields(admin_client, learner.id), "delta": "5", "reason": "Bonus"}
    first = admin_client.htmx("POST", f"/admin/credits/{learner.id}/adjust", data=fields)
    second = admin_client.htmx("POST", f"/admin/credits/{learner.id}/adjust", data=fields)
    assert first.status_code == second.status_code == 200
    assert "Already applied" in second.get_data(as_text=True)
    assert balance_of(learner.id) == 25
    assert audit_actions() == ["credits-adjusted"]
    verify_ledger()


def test_stale_balance_is_refused(admin_client, make_user, grant, balance_of, verify_ledger):
    learner = make_user(credits=20)
    fields = {**form_fields(admin_client, learner.id), "set": "30", "reason": "Top up"}
    grant(learner.id, 5, "meanwhile")  # someone else changed the balance: 25 now
    response = admin_client.htmx("POST", f"/admin/credits/{learner.id}/adjust", data=fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Balance changed from 20 to 25 since you loaded this page" in html
    assert 'data-testid="row-balance">25<' in row_of(html, learner.id)
    assert balance_of(learner.id) == 25
    verify_ledger()


def test_two_admins_edit_concurrently(app, admin_client, make_user, login, balance_of, audit_actions, verify_ledger):
    """Both saw 20; both submit at once: exactly one change, the other is told it is stale."""
    learner = make_user(credits=20)
    other = app.test_client()
    login(other, make_user("bob@example.com", name="Bob Admin", admin=True))
    clients = [admin_client, other]
    forms = [{**form_fields(c, learner.id), "delta": d, "reason": "concurrent", "csrf_token": c.csrf_token()}
             for c, d in zip(clients, ("-15", "-10"))]
    barrier, results = threading.Barrier(2), [None, None]

    def run(i):
        barrier.wait()
        results[i] = clients[i].post(f"/admin/credits/{learner.id}/adjust", data=forms[i],
                                     headers={"HX-Request": "true"})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 422]
    refused = next(r for r in results if r.status_code == 422).get_data(as_text=True)
    assert "since you loaded this page" in refused
    assert balance_of(learner.id) in (5, 10)
    assert audit_actions() == ["credits-adjusted"]
    verify_ledger()


def test_without_javascript_errors_render_the_learner_page(admin_client, make_user):
    learner = make_user(credits=3)
    response = adjust(admin_client, learner.id, delta="-5", reason="x")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Cannot remove 5 credits" in html and "Credits of" in html
