"""Races between threads, on the SQLite file database and on PostgreSQL.

Every thread waits at a barrier, then enrols in its own unit of work (or its own test
client, going through the request transaction), like simultaneous requests.
"""
from __future__ import annotations

import threading
from datetime import date, timedelta

from storefront.auth.models import User
from storefront.catalog.models import Course
from storefront.db import write_transaction
from storefront.enrolment import service
from storefront.extensions import db
from storefront.ledger import service as ledger

NEXT_MONTH = date.today() + timedelta(days=31)


def race(app, jobs):
    """Run every (user, course, token) enrolment at once; returns the outcome names."""
    barrier = threading.Barrier(len(jobs))
    outcomes = [None] * len(jobs)

    def work(i, user, course, token):
        with app.app_context():
            barrier.wait()
            try:
                with write_transaction():
                    enrolment = service.enrol(db.session.get(User, user.id), db.session.get(Course, course.id),
                                              NEXT_MONTH, token)
                    outcomes[i] = ("ok", enrolment.id)
            except (service.EnrolmentError, ledger.LedgerError) as exc:
                outcomes[i] = (type(exc).__name__, None)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def names(outcomes):
    return sorted(name for name, _ in outcomes)


def test_same_learner_same_course_twice_at_once(app, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5)
    outcomes = race(app, [(learner, course, "tok-aaaaaaaa"), (learner, course, "tok-bbbbbbbb")])
    assert names(outcomes) == ["AlreadyEnrolled", "ok"]
    assert balance_of(learner) == 15
    verify_ledger()


def test_one_seat_left_five_learners(app, make_user, make_course, balance_of, verify_ledger):
    course = make_course(price=5, capacity=2)
    race(app, [(make_user(credits=5), course, None)])  # one seat already taken
    learners = [make_user(credits=10) for _ in range(5)]
    outcomes = race(app, [(learner, course, None) for learner in learners])
    assert names(outcomes) == ["CourseFull"] * 4 + ["ok"]
    assert sorted(balance_of(learner) for learner in learners) == [5, 10, 10, 10, 10]
    verify_ledger()


def test_five_credits_two_courses_at_once(app, make_user, make_course, balance_of, verify_ledger):
    learner = make_user(credits=5)
    outcomes = race(app, [(learner, make_course(price=5), None), (learner, make_course(price=5), None)])
    assert names(outcomes) == ["InsufficientCredits", "ok"]
    assert balance_of(learner) == 0
    verify_ledger()


def test_double_submit_at_once_gives_the_first_result(app, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5, capacity=1)
    outcomes = race(app, [(learner, course, "same-token-1")] * 3)
    assert [name for name, _ in outcomes] == ["ok"] * 3
    assert len({enrolment_id for _, enrolment_id in outcomes}) == 1
    assert balance_of(learner) == 15
    verify_ledger()


def post_at_once(posts) -> list[int]:
    """Send every (client, url, form) POST at the same moment (CSRF token included);
    the status codes, in the same order."""
    tokens = [client.csrf_token() for client, _, _ in posts]
    barrier = threading.Barrier(len(posts))
    statuses = [None] * len(posts)

    def post(i):
        client, url, data = posts[i]
        barrier.wait()
        statuses[i] = client.post(url, data={"csrf_token": tokens[i], **data}).status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def test_concurrent_requests_through_the_web_layer(app, make_user, make_course, login, balance_of, verify_ledger):
    """The same learner in two tabs: two POSTs with different form tokens."""
    learner, course = make_user(credits=20), make_course(price=5)
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        login(client, learner)
    statuses = post_at_once([(client, f"/courses/{course.slug}/enrol",
                              {"start_date": NEXT_MONTH.isoformat(), "form_token": f"web-token-{i}xx"})
                             for i, client in enumerate(clients)])
    assert sorted(statuses) == [303, 409]
    assert balance_of(learner) == 15
    verify_ledger()


def test_learner_and_admin_cancel_the_same_enrolment_at_once(app, make_user, make_course, login, balance_of,
                                                             verify_ledger):
    """Two cancellations racing through the web layer: the credits come back once."""
    learner, course = make_user(credits=20), make_course(price=5, capacity=3)
    enrolment_id = race(app, [(learner, course, None)])[0][1]
    learner_client, admin_client = app.test_client(), app.test_client()
    login(learner_client, learner)
    login(admin_client, make_user(admin=True))
    statuses = post_at_once([(learner_client, f"/my/courses/{enrolment_id}/cancel", {}),
                             (admin_client, f"/admin/credits/{learner.id}/enrolments/{enrolment_id}/cancel",
                              {"reason": "Asked by phone"})])
    # the learner's page says 409 when the admin was first; the admin's always redirects
    # (cancelled, or "already cancelled")
    assert statuses[1] == 303 and statuses[0] in (303, 409), statuses
    assert balance_of(learner) == 20
    with app.app_context():
        assert db.session.get(Course, course.id).seats_taken == 0
    verify_ledger()
