"""The learner's pages over HTTP: catalogue, course page, enrol, my courses, cancel."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from .conftest import confirm_token

TODAY = date.today()
NEXT_MONTH = TODAY + timedelta(days=31)


def text(response) -> str:
    return response.get_data(as_text=True)


def test_catalogue_search_filters_and_badges(client, make_user, make_course, login, enrolments_of):
    make_course("First aid at work", price=5, capacity=20)
    make_course("Public speaking", price=4, capacity=1, summary="Speak to any audience")
    make_course("Advanced spreadsheets", price=12)
    make_course("Hidden draft", published=False)
    page = text(client.get("/courses"))
    assert "First aid at work" in page and "Hidden draft" not in page
    assert "3 courses" in page and "20 seats left" in page

    assert "Public speaking" in text(client.get("/courses?q=AUDIENCE"))  # summary, any case
    found = text(client.get("/courses?q=first"))
    assert "First aid at work" in found and "Public speaking" not in found
    priced = text(client.get("/courses?min_price=4&max_price=5"))
    assert "First aid" in priced and "Public speaking" in priced and "Advanced" not in priced
    assert "No course matches" in text(client.get("/courses?q=%25_%25"))  # LIKE wildcards are literal

    learner = make_user(credits=20)
    login(client, learner)
    client.submit("/courses/course-2/enrol", {"start_date": TODAY.isoformat()})
    page = text(client.get("/courses"))
    assert page.count('data-testid="enrolled-badge"') == 1
    open_only = text(client.get("/courses?available=1"))
    assert "Public speaking" not in open_only and "First aid" in open_only


def test_catalogue_bad_filters_are_explained_not_fatal(client, make_course):
    make_course("Anything", price=5)
    response = client.get("/courses?min_price=cheap&max_price=-3&page=zero")
    assert response.status_code == 200
    assert "Prices are whole numbers of credits: cheap was ignored." in text(response)
    assert "Anything" in text(response)
    swapped = text(client.get("/courses?min_price=9&max_price=2"))
    assert "The lowest price is above the highest" in swapped and "Anything" in swapped


def test_catalogue_paginates_and_answers_htmx_with_the_results_only(client, make_course):
    for n in range(25):
        make_course(f"Topic {n:02d}", price=3)
    first = text(client.get("/courses?q=topic"))
    assert "Page 1 of 2" in first and "Topic 19" in first and "Topic 20" not in first
    assert "q=topic" in first and "page=2" in first
    second = client.htmx("GET", "/courses?q=topic&page=2")
    assert "Topic 24" in text(second) and "<html" not in text(second)
    assert 'id="course-results"' in text(second)


def test_course_page_shows_balance_and_after(client, make_user, make_course, login):
    make_course("First aid at work", slug="first-aid", price=5, duration_days=14)
    assert "Log in to enrol" in text(client.get("/courses/first-aid"))
    login(client, make_user(credits=20))
    page = text(client.get("/courses/first-aid"))
    assert "Your balance: 20 credits — after enrolment: 15" in page
    assert "14 days" in page and 'name="start_date"' in page


def test_unknown_or_unpublished_course_is_404(client, make_user, make_course, login, balance_of, verify_ledger):
    make_course(slug="draft", published=False)
    learner = make_user(credits=20)
    login(client, learner)
    assert client.get("/courses/nope").status_code == 404
    assert client.get("/courses/draft").status_code == 404
    assert client.submit("/courses/nope/enrol", {"start_date": TODAY.isoformat()}).status_code == 404
    assert client.submit("/courses/draft/enrol", {"start_date": TODAY.isoformat()}).status_code == 404
    assert balance_of(learner) == 20
    verify_ledger()


def test_full_flow_without_javascript(client, make_user, make_course, login, balance_of, enrolments_of,
                                      verify_ledger):
    course = make_course("First aid at work", slug="first-aid", price=5)
    learner = make_user(credits=20)
    login(client, learner)
    confirm = text(client.get(f"/courses/first-aid?start_date={NEXT_MONTH.isoformat()}"))
    assert 'data-testid="cost">5 credits' in confirm and 'data-testid="after">15 credits' in confirm
    token = confirm_token(client, "first-aid", NEXT_MONTH)
    response = client.submit("/courses/first-aid/enrol", {"start_date": NEXT_MONTH.isoformat(), "form_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/courses/first-aid")
    page = text(client.get("/courses/first-aid"))
    assert "Enrolled — starts on" in page and "You are enrolled in this course" in page
    assert balance_of(learner) == 15
    assert enrolments_of(learner) == [(course.id, NEXT_MONTH, "upcoming")]

    mine = text(client.get("/my/courses"))
    assert "First aid at work" in mine and "Upcoming" in mine and 'data-testid="cancel"' in mine
    enrolment_id = int(mine.split("/my/courses/")[1].split("/cancel")[0])
    response = client.submit(f"/my/courses/{enrolment_id}/cancel")
    assert response.status_code == 303
    assert "Enrolment cancelled: 5 credits returned." in text(client.get("/my/courses"))
    assert balance_of(learner) == 20
    assert client.submit(f"/my/courses/{enrolment_id}/cancel").status_code == 409
    assert balance_of(learner) == 20
    verify_ledger()


def test_htmx_enrol_swaps_the_panel_and_triggers_the_widget(client, make_user, make_course, login, balance_of,
                                                            verify_ledger):
    make_course("First aid at work", slug="first-aid", price=5)
    login(client, make_user(credits=20))
    step = client.htmx("GET", f"/courses/first-aid?start_date={NEXT_MONTH.isoformat()}")
    assert 'id="enrol-panel"' in text(step) and "<html" not in text(step)
    token = confirm_token(client, "first-aid", NEXT_MONTH)
    response = client.htmx("POST", "/courses/first-aid/enrol",
                           data={"start_date": NEXT_MONTH.isoformat(), "form_token": token})
    assert response.status_code == 200
    assert "credits-changed" in json.loads(response.headers["HX-Trigger"])
    assert "Enrolled — starts on" in text(response)


def test_tampered_price_is_ignored(client, make_user, make_course, login, balance_of, verify_ledger):
    make_course(slug="pricey", price=8)
    learner = make_user(credits=20)
    login(client, learner)
    response = client.submit("/courses/pricey/enrol", {"start_date": TODAY.isoformat(), "price": "1",
                                                       "price_credits": "1", "credits": "1"})
    assert response.status_code == 303
    assert balance_of(learner) == 12
    verify_ledger()


def test_double_submitted_form_charges_once_and_shows_the_first_result(client, make_user, make_course, login,
                                                                       balance_of, verify_ledger):
    make_course(slug="once", price=5, capacity=1)
    learner = make_user(credits=20)
    login(client, learner)
    token = confirm_token(client, "once", NEXT_MONTH)
    form = {"start_date": NEXT_MONTH.isoformat(), "form_token": token}
    assert client.submit("/courses/once/enrol", form).status_code == 303
    again = client.htmx("POST", "/courses/once/enrol", data=form)
    assert again.status_code == 200 and "Enrolled — starts on" in text(again)
    assert balance_of(learner) == 15
    verify_ledger()


@pytest.mark.parametrize("start, message", [
    ((TODAY - timedelta(days=1)).isoformat(), "The start date cannot be in the past."),
    ((TODAY + timedelta(days=100)).isoformat(), "The last possible start date for this course is"),
    ("31/12/2030", "Enter the start date as YYYY-MM-DD."),
    ("<script>", "Enter the start date as YYYY-MM-DD."),
])
def test_bad_start_dates_get_a_clear_error(client, make_user, make_course, login, balance_of, start, message,
                                           verify_ledger):
    make_course(slug="dated", price=5, last_start_date=TODAY + timedelta(days=30))
    learner = make_user(credits=20)
    login(client, learner)
    response = client.submit("/courses/dated/enrol", {"start_date": start})
    assert response.status_code == 422 and message in text(response)
    assert client.get(f"/courses/dated?start_date={start}").status_code == 422
    assert balance_of(learner) == 20
    verify_ledger()


def test_already_enrolled_and_full_are_409_without_charge(client, make_user, make_course, login, balance_of,
                                                          verify_ledger):
    make_course(slug="tiny", price=5, capacity=1)
    first, second = make_user(credits=20), make_user(credits=20)
    login(client, first)
    client.submit("/courses/tiny/enrol", {"start_date": TODAY.isoformat()})
    again = client.submit("/courses/tiny/enrol", {"start_date": NEXT_MONTH.isoformat()})
    assert again.status_code == 409 and "already enrolled" in text(again)
    client.submit("/auth/logout")
    login(client, second)
    full = client.submit("/courses/tiny/enrol", {"start_date": TODAY.isoformat()})
    assert full.status_code == 409 and "this course is full" in text(full)
    assert (balance_of(first), balance_of(second)) == (15, 20)
    verify_ledger()


def test_shortfall_offers_the_smallest_covering_pack(client, make_user, make_course, make_pack, login,
                                                     balance_of, verify_ledger):
    make_course(slug="big", price=5)
    make_pack("Single", 1, 1000)
    make_pack("Starter", 3, 2500)
    make_pack("Programme", 25, 20000)
    make_pack("Retired", 4, 100, active=False)
    learner = make_user(credits=2)
    login(client, learner)
    page = text(client.get("/courses/big"))
    assert "You need 3 more credits." in page
    assert "Starter covers it" in page and 'data-testid="enrol-button"' not in page
    assert 'name="start_date"' not in page
    response = client.submit("/courses/big/enrol", {"start_date": TODAY.isoformat()})
    assert response.status_code == 409 and "You need 3 more credits." in text(response)
    assert balance_of(learner) == 2
    verify_ledger()


def test_anonymous_is_sent_to_login(client, make_course):
    make_course(slug="open")
    response = client.submit("/courses/open/enrol", {"start_date": TODAY.isoformat()})
    assert response.status_code in (302, 303) and "/auth/login" in response.headers["Location"]
    assert client.get("/my/courses").status_code in (302, 303)


def test_other_learners_enrolments_are_404(client, app, make_user, make_course, login, balance_of, verify_ledger):
    make_course(slug="mine", price=5)
    owner, intruder = make_user(credits=20), make_user(credits=20)
    login(client, owner)
    client.submit("/courses/mine/enrol", {"start_date": NEXT_MONTH.isoformat()})
    enrolment_id = int(text(client.get("/my/courses")).split("/my/courses/")[1].split("/cancel")[0])
    client.submit("/auth/logout")
    login(client, intruder)
    assert client.submit(f"/my/courses/{enrolment_id}/cancel").status_code == 404
    assert "mine" not in text(client.get("/my/courses")).split('id="my-courses"')[1]
    assert balance_of(owner) == 15
    verify_ledger()


def test_missing_csrf_token_is_refused(client, make_user, make_course, login, balance_of):
    make_course(slug="csrf", price=5)
    learner = make_user(credits=20)
    login(client, learner)
    assert client.post("/courses/csrf/enrol", data={"start_date": TODAY.isoformat()}).status_code == 400
    assert balance_of(learner) == 20


def test_pages_speak_french(client, make_user, make_course, login):
    make_course("Premiers secours", slug="secours", price=5)
    client.submit("/lang", {"lang": "fr"})
    login(client, make_user(credits=20))
    page = text(client.get("/courses/secours"))
    assert "Votre solde : 20 crédits — après inscription : 15" in page
    assert "Inscription" in page or "S’inscrire" in page
    assert "1 formation" in text(client.get("/courses"))


def test_escaped_output(client, make_course):
    make_course("<script>alert(1)</script>", slug="xss")
    assert "<script>alert(1)</script>" not in text(client.get("/courses"))
    assert "&lt;script&gt;" in text(client.get("/courses/xss"))


def test_catalogue_query_count_does_not_grow_with_enrolments(app, client, make_user, make_course, login):
    """No N+1: the same number of statements with 0 and with 12 enrolments on the page."""
    from sqlalchemy import event

    from storefront.extensions import db

    courses = [make_course(f"Course {n:02d}", price=1, capacity=50) for n in range(15)]
    learner = make_user(credits=50)
    login(client, learner)
    with app.app_context():
        engine = db.engine
    statements = []

    def count(*_):
        statements.append(1)

    def statements_for(url):
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    before = statements_for("/courses")
    for course in courses[:12]:
        client.submit(f"/courses/{course.slug}/enrol", {"start_date": NEXT_MONTH.isoformat()})
    assert text(client.get("/courses")).count('data-testid="enrolled-badge"') == 12
    assert statements_for("/courses") == before
    assert statements_for("/my/courses") == statements_for("/my/courses")
