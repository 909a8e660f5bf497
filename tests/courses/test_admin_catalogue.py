"""Admin catalogue: create, edit, publish and unpublish, with validation and audit."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from storefront.audit.models import AuditEvent
from storefront.catalog.models import Course
from storefront.extensions import db

VALID = {"title": "First aid at work", "slug": "first-aid", "summary": "Respond to emergencies.",
         "description": "Two days.", "price_credits": "5", "price_money": "120.50", "capacity": "12",
         "duration_days": "14", "last_start_date": (date.today() + timedelta(days=90)).isoformat(),
         "refundable": "y", "published": "y"}


@pytest.fixture
def admin_client(client, make_user, login):
    login(client, make_user(admin=True))
    return client


def course_by_slug(app, slug):
    with app.app_context():
        course = db.session.scalar(select(Course).where(Course.slug == slug))
        return None if course is None else {c: getattr(course, c) for c in
                                            ("id", "title", "price_credits", "price_cents", "capacity",
                                             "published", "refundable", "duration_days")}


def audit_actions(app):
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_learners_and_visitors_are_kept_out(client, make_user, login):
    assert client.get("/admin/courses").status_code in (302, 303)
    login(client, make_user())
    assert client.get("/admin/courses").status_code == 403
    assert client.submit("/admin/courses/new", VALID).status_code == 403


def test_create_course_with_card_price(app, admin_client):
    response = admin_client.submit("/admin/courses/new", VALID)
    assert response.status_code == 303
    course = course_by_slug(app, "first-aid")
    assert course["price_cents"] == 12050 and course["capacity"] == 12 and course["published"]
    assert audit_actions(app) == ["course-created"]
    assert "First aid at work" in admin_client.get("/courses").get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("title", "", "This field is required."),
    ("slug", "First Aid!", "Use lowercase letters, digits and single hyphens"),
    ("price_credits", "0", "The price must be between 1 and"),
    ("price_credits", "2.5", "Enter a whole number of credits."),
    ("price_money", "12,345.6", "Enter an amount like 120 or 120.50."),
    ("price_money", "0", "The card price must be above zero."),
    ("capacity", "-1", "Seats must be between 0 and 100000."),
    ("duration_days", "0", "The duration must be between 1 and 3650 days."),
    ("last_start_date", "soon", "Not a valid date value."),
])
def test_invalid_fields_are_explained_and_nothing_is_saved(app, admin_client, field, value, message):
    response = admin_client.submit("/admin/courses/new", {**VALID, field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert course_by_slug(app, VALID["slug"]) is None and audit_actions(app) == []


def test_slug_taken_is_a_form_error(app, admin_client, make_course):
    make_course(slug="first-aid")
    response = admin_client.submit("/admin/courses/new", VALID)
    assert response.status_code == 422
    assert "Another course already uses this address." in response.get_data(as_text=True)


def test_edit_records_what_changed(app, admin_client, make_course):
    course = make_course("Old title", slug="old", price=5)
    page = admin_client.get(f"/admin/courses/{course.id}/edit").get_data(as_text=True)
    assert 'value="Old title"' in page
    response = admin_client.submit(f"/admin/courses/{course.id}/edit", {**VALID, "slug": "old", "price_credits": "7"})
    assert response.status_code == 303
    assert course_by_slug(app, "old")["price_credits"] == 7
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "course-updated"))
        assert event.details["price_credits"] == [5, 7] and event.target_id == str(course.id)
    assert admin_client.get("/admin/courses/99999/edit").status_code == 404


def test_capacity_cannot_drop_below_seats_taken(app, admin_client, make_course, make_user, login, client):
    course = make_course(slug="busy", capacity=5)
    from tests.courses.test_concurrency import race

    race(app, [(make_user(credits=10), course, None), (make_user(credits=10), course, None)])
    response = admin_client.submit(f"/admin/courses/{course.id}/edit", {**VALID, "slug": "busy", "capacity": "1"})
    assert response.status_code == 422
    assert "2 seats are already taken" in response.get_data(as_text=True)


def test_unpublish_hides_the_course_but_keeps_enrolments(app, admin_client, make_course, make_user,
                                                         enrolments_of, balance_of, verify_ledger):
    course = make_course(slug="kept", price=5)
    from tests.courses.test_concurrency import race

    learner = make_user(credits=10)
    race(app, [(learner, course, None)])
    assert admin_client.submit(f"/admin/courses/{course.id}/unpublish").status_code == 303
    assert course_by_slug(app, "kept")["published"] is False
    assert admin_client.get("/courses/kept").status_code == 404
    assert [status for _, _, status in enrolments_of(learner)] == ["upcoming"]
    assert balance_of(learner) == 5
    assert admin_client.submit(f"/admin/courses/{course.id}/publish").status_code == 303
    assert audit_actions(app) == ["course-unpublished", "course-published"]
    assert admin_client.submit("/admin/courses/99999/publish").status_code == 404
    verify_ledger()


def test_admin_pages_speak_french(admin_client):
    admin_client.submit("/lang", {"lang": "fr"})
    page = admin_client.submit("/admin/courses/new", {**VALID, "duration_days": "0"}).get_data(as_text=True)
    assert "La durée doit être comprise entre 1 et 3650 jours." in page
    assert "Nouvelle formation" in page
