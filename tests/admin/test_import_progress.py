"""CSV import progress seen from another worker (another app instance, same database),
interrupted imports, and retries that still apply every line exactly once."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from storefront import create_app
from storefront.admin import import_progress
from storefront.admin.models import CreditImport
from storefront.db import utcnow, write_transaction
from storefront.extensions import db

from .test_bulk import token_of, upload


@pytest.fixture
def app_config():
    return {"ADMIN_IMPORT_PROGRESS_SECONDS": 0}  # report after every line: deterministic


@pytest.fixture
def second_worker(database_url, tmp_path):
    """Another worker of the same site: its own app, engine and instance folder."""
    from tests.conftest import Client

    other = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "SQLALCHEMY_DATABASE_URI": database_url,
                        "INSTANCE_PATH": str(tmp_path / "instance-2"), "RATELIMIT_STORAGE_URI": "memory://"})
    other.test_client_class = Client
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def worker2_client(second_worker, admin, login):
    client = second_worker.test_client()
    login(client, admin)
    return client


@pytest.fixture
def pause_first_attempt(monkeypatch):
    """Holds attempt 1 of any import right after it reported line 2 (its transaction open)."""
    reached, release = threading.Event(), threading.Event()
    original = import_progress.Reporter.__call__

    def hooked(self, processed, force=False):
        original(self, processed, force)
        if self.attempt == 1 and processed == 2 and not force:
            reached.set()
            assert release.wait(60)

    monkeypatch.setattr(import_progress.Reporter, "__call__", hooked)
    yield reached, release
    release.set()


@pytest.fixture
def learners(make_user):
    return [make_user(f"l{i}@example.com", name=f"Learner {i}") for i in range(5)]


def csv_for(users, amount=3) -> str:
    return "".join(f"{u.email},{amount},Campaign\n" for u in users)


def poll(client, token) -> str:
    return client.htmx("GET", f"/admin/import/{token}/progress").get_data(as_text=True)


def wait_for_end(client, token) -> str:
    deadline = time.monotonic() + 60
    while True:
        fragment = poll(client, token)
        if 'data-status="running"' not in fragment:
            return fragment
        assert time.monotonic() < deadline, fragment
        time.sleep(0.1)


def set_job(app, token, **values):
    with app.app_context(), write_transaction():
        db.session.execute(sa.update(CreditImport).where(CreditImport.token == token).values(**values))


def test_another_worker_sees_the_progress_then_the_outcome(app, admin_client, worker2_client, learners,
                                                           pause_first_attempt, balance_of, audit_actions,
                                                           verify_ledger):
    reached, release = pause_first_attempt
    token = token_of(upload(admin_client, csv_for(learners)))
    assert admin_client.submit(f"/admin/import/{token}/apply").status_code == 303  # worker 1 applies
    assert reached.wait(60)
    # Worker 2 never ran the import: it reads the progress from the database (or the file
    # beside SQLite's), while worker 1's transaction is still open.
    fragment = poll(worker2_client, token)
    assert 'data-status="running"' in fragment and 'hx-trigger="every 1s"' in fragment
    assert "2 of 5 lines" in fragment
    assert "applying…" in worker2_client.get("/admin/import").get_data(as_text=True)
    assert [balance_of(u.id) for u in learners] == [0] * 5  # all or nothing: nothing yet
    release.set()
    fragment = wait_for_end(worker2_client, token)
    assert 'data-status="applied"' in fragment and "Import applied: 5 new grants" in fragment
    assert "hx-trigger" not in fragment
    assert [balance_of(u.id) for u in learners] == [3] * 5
    assert audit_actions() == ["credits-imported"]
    verify_ledger()


def test_a_stale_running_import_is_shown_interrupted_and_retried_once(app, admin_client, worker2_client,
                                                                      learners, balance_of, audit_actions,
                                                                      verify_ledger):
    app.config["ADMIN_IMPORT_BACKGROUND"] = False
    token = token_of(upload(admin_client, csv_for(learners)))
    # A worker claimed it and is alive (fresh heartbeat): nobody else may apply it.
    set_job(app, token, status="running", attempt=1, rows_processed=2, heartbeat_at=utcnow())
    admin_client.submit(f"/admin/import/{token}/apply")
    assert "2 of 5 lines" in poll(worker2_client, token)
    # Then that worker died mid-import: its transaction was rolled back, its heartbeat stops.
    set_job(app, token, heartbeat_at=utcnow() - timedelta(hours=1))
    with app.app_context():
        leftover = import_progress._sqlite_file(token)
    if leftover is not None:  # SQLite: the dead worker's progress file stays behind
        leftover.write_text('{"attempt": 1, "processed": 2, "heartbeat": "%s"}'
                            % (utcnow() - timedelta(hours=1)).isoformat())
    fragment = poll(worker2_client, token)
    assert 'data-status="interrupted"' in fragment and "hx-trigger" not in fragment
    assert "stopped before the end" in fragment and "Try again" in fragment
    assert "interrupted: nothing applied" in worker2_client.get("/admin/import").get_data(as_text=True)
    assert [balance_of(u.id) for u in learners] == [0] * 5
    # Retrying (twice, from either worker) applies every line exactly once.
    assert admin_client.submit(f"/admin/import/{token}/apply").status_code == 303
    worker2_client.submit(f"/admin/import/{token}/apply")
    assert "Import applied: 5 new grants" in poll(worker2_client, token)
    assert [balance_of(u.id) for u in learners] == [3] * 5
    assert audit_actions() == ["credits-imported"]
    if leftover is not None:
        assert not leftover.exists()
    verify_ledger()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_superseded_attempt_still_alive_rolls_back(app, admin_client, worker2_client, second_worker, learners,
                                                     pause_first_attempt, balance_of, audit_actions,
                                                     verify_ledger):
    """Worker 1 stalls so long that its import looks interrupted; worker 2 retries it.
    When worker 1 wakes up it may no longer record anything: the file is applied once.
    (PostgreSQL only: on SQLite the stalled import holds the write lock, so no retry
    can start before it ends.)"""
    reached, release = pause_first_attempt
    token = token_of(upload(admin_client, csv_for(learners)))
    admin_client.submit(f"/admin/import/{token}/apply")
    assert reached.wait(60)
    set_job(app, token, heartbeat_at=utcnow() - timedelta(hours=1))  # no sign of life
    assert 'data-status="interrupted"' in poll(worker2_client, token)
    assert worker2_client.submit(f"/admin/import/{token}/apply").status_code == 303  # attempt 2
    # Attempt 2 waits on the ledger references attempt 1 holds (uncommitted); wake attempt 1.
    release.set()
    fragment = wait_for_end(worker2_client, token)
    assert "Import applied: 5 new grants, 0 lines already imported" in fragment
    with app.app_context():
        assert db.session.scalar(sa.select(CreditImport.attempt).where(CreditImport.token == token)) == 2
    assert [balance_of(u.id) for u in learners] == [3] * 5
    assert audit_actions() == ["credits-imported"]
    verify_ledger()
