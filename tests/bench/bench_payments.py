"""Benchmark: webhook fulfilment throughput on PostgreSQL (prints figures, asserts nothing).

    bash tests/tools/with-postgres.sh .venv/bin/python tests/bench/bench_payments.py

Creates a throw-away database, migrates it, starts the fake Stripe API and the app on
HTTP threads, then delivers signed `checkout.session.completed` events:
- distinct sessions (each one re-read from "Stripe", locked, granted, receipt queued),
- replays of already-fulfilled sessions (should cost a small constant number of queries),
from several client threads, and reports events/s and SQL queries per replay (counted
with a SQLAlchemy before_cursor_execute listener).
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from storefront import create_app  # noqa: E402
from storefront.auth.service import create_user  # noqa: E402
from storefront.catalog.models import Pack  # noqa: E402
from storefront.db import write_transaction  # noqa: E402
from storefront.extensions import db  # noqa: E402
from storefront.payments.service import pack_details, start_checkout  # noqa: E402

from payments.fake_stripe import WEBHOOK_SECRET, FakeStripe  # noqa: E402

SESSIONS = int(os.environ.get("BENCH_SESSIONS", 200))
THREADS = int(os.environ.get("BENCH_THREADS", 8))


def database() -> tuple[str, sa.Engine, str]:
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        sys.exit("TEST_DATABASE_URL is unset: run through tests/tools/with-postgres.sh")
    name = f"storefront_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False), admin, name


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    url, admin, name = database()
    fake = FakeStripe().start()
    instance = tempfile.mkdtemp()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": instance,
                      "STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_API_BASE": fake.base_url,
                      "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "MAIL_BACKEND": "memory",
                      "STOREFRONT_BASE_URL": "http://shop.test",
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": THREADS + 2}})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.webhook_url = f"http://127.0.0.1:{server.server_port}/stripe/webhook"
    try:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            with app.test_request_context(), write_transaction():
                user = create_user("bench@example.com", "bench-password-1", "Bench")
                pack = Pack(name="Bench pack", credits=10, price_cents=9000, currency="eur")
                db.session.add(pack)
                db.session.flush()
                for _ in range(SESSIONS):
                    start_checkout(user, "pack", product_id=pack.id, unit_amount_cents=9000, currency="eur",
                                   description="Bench pack", details=pack_details(pack, 1))
            engine = db.engine
        events = [fake.complete(sid, deliver=False) for sid in list(fake.sessions)]

        def run(batch) -> float:
            start = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                statuses = list(pool.map(fake.deliver, batch))
            elapsed = time.perf_counter() - start
            assert set(statuses) == {200}, statuses
            return elapsed

        first = run(events)
        replay = run(events)
        queries = []

        @event.listens_for(engine, "before_cursor_execute")
        def count(*_args):
            queries.append(1)

        for e in events[:20]:
            fake.deliver(e)
        event.remove(engine, "before_cursor_execute", count)
        with app.app_context():
            balance = db.session.execute(sa.text("SELECT balance FROM accounts")).scalar()
        print(f"PostgreSQL webhook fulfilment, {SESSIONS} sessions, {THREADS} client threads:")
        print(f"  distinct sessions : {SESSIONS / first:8.1f} events/s ({first:.2f} s)")
        print(f"  replays           : {SESSIONS / replay:8.1f} events/s ({replay:.2f} s)")
        print(f"  SQL queries/replay: {len(queries) / 20:8.1f} (statements sent; the transaction's COMMIT is not one)")
        print(f"  credits granted   : {balance} (expected {SESSIONS * 10})")
    finally:
        server.shutdown()
        fake.stop()
        with app.app_context():
            db.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
