"""What a learner sees: the balance widget on every page, the credit history, htmx wiring."""
from __future__ import annotations

import json
import re
from datetime import timedelta

from flask_login import current_user

from storefront.db import utcnow, write_transaction
from storefront.ledger import service as ledger
from storefront.web import add_triggers, trigger

ADMIN_LINK = "Manage credits (admin)"


def test_anonymous_visitors_see_the_block_with_a_login_prompt(client):
    for url in ("/", "/credits/widget"):
        page = client.get(url).get_data(as_text=True)
        assert "My training credits" in page
        assert "Log in to see your credits" in page
        assert "Available credits" not in page
        assert 'hx-trigger="credits-changed' not in page  # nothing to refresh for them


def test_learner_widget_shows_balance_top_up_and_refresh_wiring(client, make_user, login):
    login(client, make_user(credits=20))
    page = client.get("/").get_data(as_text=True)
    assert "My training-credit account lets me enrol in any course" in page
    assert re.search(r'Available credits:\s*<strong data-testid="balance">20</strong>\s*credits', page)
    assert "Top up my account" in page
    widget = re.search(r'<section id="credit-widget"[^>]*>', page).group(0)
    assert 'hx-get="/credits/widget"' in widget
    assert 'hx-trigger="credits-changed from:body, every 1s"' in widget  # tests poll each second


def test_widget_fragment_is_the_block_alone(client, make_user, login):
    login(client, make_user(credits=1))
    for headers in ({"HX-Request": "true"}, {}):
        response = client.get("/credits/widget", headers=headers)
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert body.strip().startswith('<section id="credit-widget"')
        assert "<html" not in body
        assert re.search(r'data-testid="balance">1<.*\bcredit\b', body, re.S)


def test_widget_announces_the_next_expiry(client, make_user, login):
    login(client, make_user(credits=5, expires_at=utcnow() + timedelta(days=10)))
    page = client.get("/credits/widget").get_data(as_text=True)
    assert re.search(r"5 credits expire on \d+ \w+ \d{4}", page)


def test_admin_link_only_for_admins(app, make_user, login):
    learner, admin = app.test_client(), app.test_client()
    login(learner, make_user(credits=3))
    login(admin, make_user(admin=True))
    for url in ("/", "/credits", "/credits/widget"):
        assert ADMIN_LINK not in learner.get(url).get_data(as_text=True)
        page = admin.get(url).get_data(as_text=True)
        assert ADMIN_LINK in page
        assert 'href="/admin/credits"' in page
    assert ADMIN_LINK not in app.test_client().get("/").get_data(as_text=True)


def test_french_block_uses_the_seed_wording(client, make_user, login):
    login(client, make_user(credits=20, admin=True))
    client.submit("/lang", {"lang": "fr"})
    page = client.get("/").get_data(as_text=True)
    assert "Mon compte de crédits pédagogiques" in page
    assert "Mon compte de crédits pédagogiques me permet de m'inscrire" in page.replace("&#39;", "'")
    assert re.search(r'Crédits disponibles :\s*<strong data-testid="balance">20</strong>\s*crédits', page)
    assert "Recharger mon compte" in page
    assert "Gérer les crédits (administrateur)" in page


def test_history_lists_only_my_changes(app, client, make_user, login, verify_ledger):
    me, other = make_user(credits=10), make_user()
    with app.app_context(), write_transaction():
        ledger.grant(other.id, 7, reference="t:other", actor=ledger.Actor.system(), reason="someone else's gift")
        ledger.grant(me.id, 5, reference="t:mine", actor=ledger.Actor.system(), reason="loyalty bonus")
        ledger.spend(me.id, 3, reference="enrol:1", actor=ledger.Actor.system())
    login(client, me)
    page = client.get("/credits").get_data(as_text=True)
    assert "someone else" not in page
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody", 1)[1], re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert [(c[2], c[3]) for c in cells] == [("-3", "12"), ("+5", "15"), ("+10", "10")]  # newest first
    assert "Enrolment" in cells[0][1]
    assert "Credits added by an administrator" in cells[1][1] and "loyalty bonus" in cells[1][1]
    assert all(re.search(r"\d", c[0]) for c in cells)  # every row is dated
    verify_ledger()


def test_history_pages_older_entries_through_htmx(app, client, make_user, login):
    user = make_user()
    with app.app_context(), write_transaction():
        for n in range(55):
            ledger.grant(user.id, 1, reference=f"t:{n}", actor=ledger.Actor.system(), reason=f"gift {n}")
    login(client, user)
    page = client.get("/credits").get_data(as_text=True)
    assert page.count('class="num plus"') == 50
    more = re.search(r'hx-get="([^"]+)"', page.split("<tbody", 1)[1]).group(1).replace("&amp;", "&")
    fragment = client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment
    assert fragment.count('class="num plus"') == 5
    assert "gift 0" in fragment and "Older changes" not in fragment


def test_history_needs_a_login_and_starts_empty(client, make_user, login):
    assert client.get("/credits").status_code == 302
    login(client, make_user())
    assert "No change to your credits yet." in client.get("/credits").get_data(as_text=True)


def test_a_response_that_changes_credits_tells_htmx(app, make_user, login):
    """Any view that changes credits through the ledger sends HX-Trigger: credits-changed."""

    def gift():  # a stand-in for the packs/courses/admin views that change credits
        ledger.grant(current_user.id, 2, reference="t:gift", actor=ledger.Actor.system(), reason="gift")
        return "ok"

    app.add_url_rule("/test-only/gift", view_func=gift, methods=["POST"])
    client = app.test_client()
    login(client, make_user())
    assert "HX-Trigger" not in client.get("/").headers
    response = client.htmx("POST", "/test-only/gift")
    assert response.status_code == 200
    assert "credits-changed" in json.loads(response.headers["HX-Trigger"])
    assert 'data-testid="balance">2<' in client.get("/credits/widget").get_data(as_text=True)


def test_add_triggers_merges_with_the_views_own_header(app):
    with app.test_request_context("/"):
        trigger("credits-changed")
        for existing, expected in [
            (None, {"credits-changed": None}),
            ("flash-shown", {"flash-shown": None, "credits-changed": None}),
            ("a, b", {"a": None, "b": None, "credits-changed": None}),
            ('{"show-message": "Saved"}', {"show-message": "Saved", "credits-changed": None}),
            ("123", {"123": None, "credits-changed": None}),  # not an object: kept as a name
        ]:
            response = app.response_class("x")
            if existing:
                response.headers["HX-Trigger"] = existing
            assert json.loads(add_triggers(response).headers["HX-Trigger"]) == expected
    with app.test_request_context("/"):
        assert "HX-Trigger" not in add_triggers(app.response_class("x")).headers
