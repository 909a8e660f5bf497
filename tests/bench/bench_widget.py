"""Benchmark of the balance widget (GET /credits/widget): prints figures, asserts nothing.

    .venv/bin/python tests/bench/bench_widget.py            # SQLite (+ PostgreSQL when
    bash tests/tools/with-postgres.sh .venv/bin/python tests/bench/bench_widget.py
                                                            # TEST_DATABASE_URL is set)

For each database: two learners, one with 10 ledger entries and one with 1,000,000
(bulk-inserted with SQL as consistent grant/spend pairs with their lots and movements,
so that `verify()` still holds), logged in; then, interleaved and many times over,
GET /credits/widget for each and GET /healthz (the bare constant endpoint). Reported:
SQL queries per widget request, median latencies, the 1M/10 ratio (goal < 1.1) and the
widget/healthz ratio (goal < 1.5), in-process (Flask test client) and over HTTP (a
werkzeug server thread on the same app, a new connection per request as a browser poll).

Options (environment): BENCH_ENTRIES (default 1000000), BENCH_ITERATIONS (default 1500).
"""
from __future__ import annotations

import http.client
import logging
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from storefront import create_app  # noqa: E402
from storefront.auth.service import create_user  # noqa: E402
from storefront.db import write_transaction  # noqa: E402
from storefront.extensions import db  # noqa: E402
from storefront.ledger import service as ledger  # noqa: E402

ENTRIES = int(os.environ.get("BENCH_ENTRIES", "1000000"))
ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "1500"))
PASSWORD = "bench-password-1"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
SYSTEM = ledger.Actor.system()


# --- databases -------------------------------------------------------------------------

def sqlite_database(tmp: Path):
    yield f"sqlite:///{tmp / 'bench.sqlite3'}"


def postgres_database(admin_url: str):
    name = f"storefront_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# --- data ------------------------------------------------------------------------------

def history_via_service(user_id: int, pairs: int) -> None:
    """`pairs` grant+spend pairs, then one expiring and one lasting grant (2 + 2*pairs entries)."""
    with write_transaction():
        for i in range(pairs):
            ledger.grant(user_id, 2, reference=f"bench:{user_id}:g{i}", actor=SYSTEM)
            ledger.spend(user_id, 2, reference=f"bench:{user_id}:s{i}", actor=SYSTEM)
    final_grants(user_id)


def final_grants(user_id: int) -> None:
    with write_transaction():
        ledger.grant(user_id, 5, reference=f"bench:{user_id}:expiring", actor=SYSTEM,
                     expires_at=datetime.now(timezone.utc) + timedelta(days=30))
        ledger.grant(user_id, 20, reference=f"bench:{user_id}:lasting", actor=SYSTEM)


def bulk_history(user_id: int, entries: int) -> None:
    """`entries` entries as grant(+2, own lot)/spend(-2 from that lot) pairs, in SQL.

    generate_series on PostgreSQL, a recursive CTE on SQLite; ids continue the tables'
    sequences so the running balance stays in id order (verify() checks it).
    """
    conn = db.session.connection()
    dialect = conn.dialect.name
    account = ledger.account_for(user_id).id
    start = {t: conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar()
             for t in ("ledger_entries", "ledger_lots", "ledger_movements")}
    created = datetime(2025, 1, 1, tzinfo=timezone.utc)
    params = {"n": entries, "lots": entries // 2, "acc": account, "e0": start["ledger_entries"],
              "l0": start["ledger_lots"], "m0": start["ledger_movements"],
              "created": created.replace(tzinfo=None).isoformat(" ") if dialect == "sqlite" else created}
    if dialect == "sqlite":
        series = "WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < {}) "
        source = lambda limit: series.format(limit) + "SELECT k FROM seq"  # noqa: E731
        ref = "'bench:' || :acc || ':' || k"
    else:
        source = lambda limit: f"SELECT k FROM generate_series(1, {limit}) AS k"  # noqa: E731
        ref = "'bench:' || :acc || ':' || k"
    conn.execute(sa.text(
        "INSERT INTO ledger_entries (id, account_id, delta, requested, kind, reference, actor_type,"
        " balance_after, created_at)"
        f" SELECT :e0 + k, :acc, CASE WHEN k % 2 = 1 THEN 2 ELSE -2 END, 2,"
        f" CASE WHEN k % 2 = 1 THEN 'admin-grant' ELSE 'spend' END, {ref}, 'system',"
        f" CASE WHEN k % 2 = 1 THEN 2 ELSE 0 END, :created FROM ({source(':n')}) AS s"),
        params)
    conn.execute(sa.text(
        "INSERT INTO ledger_lots (id, account_id, entry_id, original, remaining, created_at)"
        f" SELECT :l0 + k, :acc, :e0 + 2 * k - 1, 2, 0, :created FROM ({source(':lots')}) AS s"),
        params)
    conn.execute(sa.text(
        "INSERT INTO ledger_movements (id, entry_id, lot_id, amount)"
        " SELECT :m0 + k, :e0 + k, :l0 + (k + 1) / 2, CASE WHEN k % 2 = 1 THEN 2 ELSE -2 END"
        f" FROM ({source(':n')}) AS s"), params)
    if dialect == "postgresql":
        for table in start:
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                 f" (SELECT max(id) FROM {table}))"))


def analyze() -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")


# --- measuring -------------------------------------------------------------------------

def login(client, email: str) -> None:
    token = CSRF.search(client.get("/auth/login").get_data(as_text=True)).group(1)
    response = client.post("/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.status_code


def median_ms(samples) -> float:
    return statistics.median(samples) * 1000


def in_process(app, small, big) -> dict:
    """Flask test client: the app's own cost, without any HTTP server."""
    clients = {}
    for name, email in (("small", small), ("big", big)):
        clients[name] = app.test_client()
        login(clients[name], email)
    clients["healthz"] = clients["small"]
    paths = {"small": "/credits/widget", "big": "/credits/widget", "healthz": "/healthz"}
    samples = {name: [] for name in paths}
    for i in range(ITERATIONS + 100):
        for name, path in paths.items():
            began = time.perf_counter()
            response = clients[name].get(path)
            elapsed = time.perf_counter() - began
            assert response.status_code == 200
            if i >= 100:  # warm-up
                samples[name].append(elapsed)
    return {name: median_ms(s) for name, s in samples.items()}


def over_http(app, small, big) -> dict:
    """A werkzeug server thread; one new connection per request, as a polling browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_port
    cookies = {}
    for name, email in (("small", small), ("big", big)):
        client = app.test_client()
        login(client, email)
        cookie = client.get_cookie("session")
        cookies[name] = f"session={cookie.value}"
    requests = {"small": ("/credits/widget", cookies["small"]), "big": ("/credits/widget", cookies["big"]),
                "healthz": ("/healthz", cookies["small"])}
    samples = {name: [] for name in requests}
    try:
        for i in range(ITERATIONS // 2 + 50):
            for name, (path, cookie) in requests.items():
                began = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("GET", path, headers={"Cookie": cookie, "HX-Request": "true"})
                response = conn.getresponse()
                response.read()
                conn.close()
                elapsed = time.perf_counter() - began
                assert response.status == 200
                if i >= 50:
                    samples[name].append(elapsed)
    finally:
        server.shutdown()
        thread.join(5)
    return {name: median_ms(s) for name, s in samples.items()}


def queries_per_request(app, email: str) -> list[str]:
    client = app.test_client()
    login(client, email)
    client.get("/credits/widget")  # first request may load things once
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(db_engine(app), "before_cursor_execute", count)
    try:
        response = client.get("/credits/widget")
    finally:
        sa.event.remove(db_engine(app), "before_cursor_execute", count)
    assert response.status_code == 200
    return [" ".join(statement.split())[:70] for statement in statements]


def db_engine(app):
    with app.app_context():
        return db.engine


# --- one backend -----------------------------------------------------------------------

def run(label: str, url: str, tmp: Path) -> None:
    from flask_migrate import upgrade

    print(f"\n== {label} ==", flush=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True,
                      "INSTANCE_PATH": str(tmp / label), "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # alembic's fileConfig turned it on
        with write_transaction():
            small = create_user("small@example.com", PASSWORD).id
            big = create_user("big@example.com", PASSWORD).id
        began = time.perf_counter()
        with write_transaction():
            bulk_history(big, ENTRIES - 2)
        print(f"bulk insert of {ENTRIES - 2:,} entries: {time.perf_counter() - began:.1f} s", flush=True)
        final_grants(big)
        history_via_service(small, 4)
        analyze()
        counts = {u: db.session.execute(sa.text(
            "SELECT count(*) FROM ledger_entries e JOIN accounts a ON a.id = e.account_id"
            " WHERE a.user_id = :u"), {"u": u}).scalar() for u in (small, big)}
        began = time.perf_counter()
        problems = ledger.verify()
        print(f"entries: small account {counts[small]:,}, big account {counts[big]:,}; "
              f"verify() -> {problems or 'OK'} ({time.perf_counter() - began:.1f} s); "
              f"balances {ledger.balance(small)} / {ledger.balance(big)}", flush=True)
        db.session.remove()

    q_small = queries_per_request(app, "small@example.com")
    q_big = queries_per_request(app, "big@example.com")
    print(f"SQL statements per widget request: {len(q_small)} (10 entries), {len(q_big)} (1M entries):")
    for statement in q_big:
        print(f"    {statement}")
    for how, measure in (("in-process (test client)", in_process), ("HTTP (werkzeug thread)", over_http)):
        m = measure(app, "small@example.com", "big@example.com")
        print(f"{how}: median widget 10 entries {m['small']:.3f} ms, 1M entries {m['big']:.3f} ms "
              f"-> ratio {m['big'] / m['small']:.3f} (goal < 1.1); healthz {m['healthz']:.3f} ms "
              f"-> widget/healthz {m['small'] / m['healthz']:.2f} (goal < 1.5)", flush=True)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    print(f"Widget benchmark: {ITERATIONS} iterations in-process, {ITERATIONS // 2} over HTTP; medians.")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for url in sqlite_database(tmp):
            run("sqlite", url, tmp)
        admin_url = os.environ.get("TEST_DATABASE_URL")
        if admin_url:
            for url in postgres_database(admin_url):
                run("postgresql", url, tmp)
        else:
            print("\n(PostgreSQL skipped: TEST_DATABASE_URL unset; run through tests/tools/with-postgres.sh)")


if __name__ == "__main__":
    main()
