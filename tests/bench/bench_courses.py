"""Benchmark: GET /courses with 1,000 courses and a learner holding 200 enrolments.

Prints the number of SQL statements per request (must not grow with the data: no N+1)
and the median latency as a ratio to GET /healthz, the bare constant endpoint, on the
same app. Runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set
(`make bench` sets it). Asserts nothing: figures are for the report.

    .venv/bin/python tests/bench/bench_courses.py
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storefront import create_app  # noqa: E402
from storefront.auth.models import User  # noqa: E402
from storefront.auth.service import create_user  # noqa: E402
from storefront.catalog.models import Course  # noqa: E402
from storefront.db import write_transaction  # noqa: E402
from storefront.enrolment import service as enrolments  # noqa: E402
from storefront.extensions import db  # noqa: E402
from storefront.ledger import service as ledger  # noqa: E402

COURSES, ENROLMENTS, RUNS = 1000, 200, 200
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def make_app(url: str, instance: str):
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": instance})
    with app.app_context():
        upgrade()
    return app


def fill(app) -> None:
    with app.app_context(), write_transaction():
        last = date.today() + timedelta(days=365)
        db.session.execute(insert(Course), [dict(
            slug=f"course-{n:04d}", title=f"Course {n:04d} on topic {n % 37}", summary=f"Summary {n}",
            description="", price_credits=1 + n % 9, currency="eur", capacity=None if n % 3 else 50,
            duration_days=30, last_start_date=last, refundable=True, published=True, seats_taken=0)
            for n in range(COURSES)])
        user = create_user("bench@example.com", "bench-password-1", "Bench")
        ledger.grant(user.id, 10 * ENROLMENTS, reference="bench:grant", actor=ledger.Actor.system())
    with app.app_context(), write_transaction():
        user = db.session.scalar(sa.select(User).where(User.email == "bench@example.com"))
        courses = db.session.scalars(sa.select(Course).order_by(Course.id).limit(ENROLMENTS)).all()
        for course in courses:
            enrolments.enrol(user, course, date.today() + timedelta(days=7))


def measure(app, label: str) -> None:
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(1)  # noqa: E731
    client = app.test_client()
    token = CSRF.search(client.get("/auth/login").get_data(as_text=True)).group(1)
    assert client.post("/auth/login", data={"email": "bench@example.com", "password": "bench-password-1",
                                            "csrf_token": token}).status_code == 303
    event.listen(engine, "before_cursor_execute", listener)
    counts = {}
    for url in ("/courses", "/courses?page=25", "/courses?q=topic+3&available=1", "/my/courses", "/healthz"):
        statements.clear()
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        counts[url] = len(statements)
    event.remove(engine, "before_cursor_execute", listener)

    def median(url):
        client.get(url)
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    base, courses = median("/healthz"), median("/courses")
    print(f"[{label}] {COURSES} courses, learner with {ENROLMENTS} enrolments")
    for url, n in counts.items():
        print(f"[{label}]   SQL statements for GET {url}: {n}")
    print(f"[{label}]   median GET /healthz {base * 1000:.2f} ms, GET /courses {courses * 1000:.2f} ms, "
          f"ratio {courses / base:.1f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/bench.sqlite3", tmp)
        fill(app)
        measure(app, "sqlite")
        with app.app_context():
            db.engine.dispose()
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        print("[postgresql] skipped (TEST_DATABASE_URL unset)")
        return
    name = f"bench_courses_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory() as tmp:
            app = make_app(url, tmp)
            fill(app)
            measure(app, "postgresql")
            with app.app_context():
                db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
