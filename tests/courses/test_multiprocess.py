"""Races between two gunicorn server processes sharing one PostgreSQL database.

Each server is a separate process (own connection pool, own Python interpreter), so
only the database can keep the rules: real HTTP clients, real sessions, real CSRF
tokens, all requests released at once.
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["postgresql"])]

ROOT = Path(__file__).resolve().parents[2]
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
NEXT_MONTH = (date.today() + timedelta(days=31)).isoformat()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(postgres_url, tmp_path_factory):
    """Two gunicorn processes (4 threads each) on the test database; their base URLs."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    instance = tmp_path_factory.mktemp("gunicorn-instance")
    env = {**os.environ, "DATABASE_URL": postgres_url, "SECRET_KEY": "multi-process-test-secret",
           "STOREFRONT_INSTANCE": str(instance)}
    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        procs.append(subprocess.Popen(
            [str(gunicorn), "--workers", "1", "--threads", "4", "--bind", f"127.0.0.1:{port}",
             "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 303 is the answer we want to see


class HttpClient:
    """A cookie-keeping client that submits forms with the page's CSRF token."""

    def __init__(self):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)
        self.token = None

    def request(self, method: str, url: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(urllib.request.Request(url, data=body, method=method), timeout=60) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def submit(self, url: str, data: dict) -> tuple[int, str]:
        return self.request("POST", url, {"csrf_token": self.token, **data})

    def login(self, base: str, user) -> "HttpClient":
        self.token = CSRF_META.search(self.request("GET", base + "/auth/login")[1]).group(1)
        status, page = self.submit(base + "/auth/login", {"email": user.email, "password": user.password})
        assert status == 303, page
        self.token = CSRF_META.search(self.request("GET", base + "/courses")[1]).group(1)
        return self


def all_at_once(calls):
    """Run the callables together, released by one barrier; returns their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def enrol_call(client: HttpClient, base: str, slug: str, token: str | None = None):
    data = {"start_date": NEXT_MONTH, **({"form_token": token} if token else {})}
    return lambda: client.submit(f"{base}/courses/{slug}/enrol", data)[0]


def test_one_seat_five_learners_over_two_servers(servers, make_user, make_course, balance_of, verify_ledger):
    course = make_course(price=5, capacity=1)
    learners = [make_user(credits=5) for _ in range(5)]
    clients = [HttpClient().login(servers[i % 2], learner) for i, learner in enumerate(learners)]
    statuses = all_at_once([enrol_call(c, servers[i % 2], course.slug) for i, c in enumerate(clients)])
    assert sorted(statuses) == [303, 409, 409, 409, 409]
    assert sorted(balance_of(learner) for learner in learners) == [0, 5, 5, 5, 5]
    verify_ledger()


def test_same_learner_same_course_on_both_servers(servers, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5)
    clients = [HttpClient().login(base, learner) for base in servers]
    statuses = all_at_once([enrol_call(clients[i], servers[i], course.slug, f"tab-token-{i}x") for i in range(2)])
    assert sorted(statuses) == [303, 409]
    assert balance_of(learner) == 15
    verify_ledger()


def test_double_submit_over_both_servers_charges_once(servers, make_user, make_course, balance_of, verify_ledger):
    learner, course = make_user(credits=20), make_course(price=5)
    client = HttpClient().login(servers[0], learner)
    statuses = all_at_once([enrol_call(client, servers[i % 2], course.slug, "one-form-token") for i in range(4)])
    assert statuses == [303] * 4  # every copy of the form answers with the first result
    assert balance_of(learner) == 15
    verify_ledger()


def test_five_credits_two_courses_over_two_servers(servers, make_user, make_course, balance_of, verify_ledger):
    learner = make_user(credits=5)
    courses = [make_course(price=5), make_course(price=5)]
    clients = [HttpClient().login(base, learner) for base in servers]
    statuses = all_at_once([enrol_call(clients[i], servers[i], courses[i].slug) for i in range(2)])
    assert sorted(statuses) == [303, 409]
    assert balance_of(learner) == 0
    verify_ledger()


def test_twenty_spends_of_three_from_thirty_over_two_servers(servers, make_user, make_course, balance_of,
                                                              verify_ledger):
    """The foundation's rule: 20 spends of 3 credits from 30 -> exactly 10 succeed."""
    learner = make_user(credits=30)
    courses = [make_course(price=3) for _ in range(20)]
    clients = [HttpClient().login(servers[i % 2], learner) for i in range(20)]
    statuses = all_at_once([enrol_call(clients[i], servers[i % 2], courses[i].slug) for i in range(20)])
    assert statuses.count(303) == 10 and statuses.count(409) == 10
    assert balance_of(learner) == 0
    verify_ledger()
