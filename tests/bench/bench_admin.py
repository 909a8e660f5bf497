"""Benchmark of the admin credits page and the ledger export (prints figures, asserts nothing).

    .venv/bin/python tests/bench/bench_admin.py [--users 100000] [--per-user 10] [--backend sqlite|postgresql|both]

Builds a database with N users and N*per_user ledger entries (bulk INSERT ... SELECT,
every ledger invariant kept: each entry is a 1-credit grant with its lot and movement),
then measures with the in-process test client:
- median latency of /admin/credits (first page, filtered, sorted by balance) as a
  ratio to GET /healthz, and the number of SQL statements per page;
- the streamed CSV export of the whole ledger: time and peak Python memory.
PostgreSQL runs when TEST_DATABASE_URL is set (see tests/tools/with-postgres.sh).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storefront import create_app  # noqa: E402
from storefront.extensions import db  # noqa: E402

STAMP = "2026-01-05 10:00:00"


def numbers(dialect: str, n: int) -> tuple[str, str]:
    """(prefix, from-clause) producing i = 1..n."""
    if dialect == "postgresql":
        return "", f"generate_series(1, {n}) AS n(i)"
    return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) ", "n"


def populate(conn, dialect: str, users: int, per_user: int) -> None:
    ts = f"'{STAMP}+00'" if dialect == "postgresql" else f"'{STAMP}.000000'"
    mod = "%%" if dialect == "postgresql" else "%"  # psycopg reads % as a placeholder
    pre, src = numbers(dialect, users)
    first = (f"(CASE i {mod} 10 WHEN 0 THEN 'Alice' WHEN 1 THEN 'Bruno' WHEN 2 THEN 'Chloé' "
             f"WHEN 3 THEN 'David' WHEN 4 THEN 'Emma' WHEN 5 THEN 'Farid' WHEN 6 THEN 'Gaëlle' "
             f"WHEN 7 THEN 'Hugo' WHEN 8 THEN 'Inès' ELSE 'Jules' END)")
    conn.exec_driver_sql(
        f"INSERT INTO users (id, email, display_name, password_hash, role, created_at) "
        f"{pre}SELECT i, 'user' || i || '@bench.example.com', {first} || ' Bench' || i, 'x', 'learner', "
        f"{ts} FROM {src}")
    # The words each user is found by (what auth.search writes for every ORM-created user):
    # first name, "bench<i>", "user<i>", "bench", "example", "com".
    words = [f"lower({first})", "'bench' || i", "'user' || i", "'bench'", "'example'", "'com'"]
    conn.exec_driver_sql(
        f"INSERT INTO user_search_terms (term, user_id) {pre}"
        + " UNION ALL ".join(f"SELECT {w}, i FROM {src}" for w in words))
    conn.exec_driver_sql(
        f"INSERT INTO accounts (id, user_id, balance, updated_at) {pre}SELECT i, i, {per_user}, {ts} FROM {src}")
    pre, src = numbers(dialect, users * per_user)
    u, k = f"((i - 1) / {per_user} + 1)", f"((i - 1) {mod} {per_user} + 1)"
    conn.exec_driver_sql(
        f"INSERT INTO ledger_entries (id, account_id, delta, requested, kind, reference, actor_type, "
        f"balance_after, created_at) {pre}SELECT i, {u}, 1, 1, 'admin-grant', 'bench:' || i, 'system', "
        f"{k}, {ts} FROM {src}")
    conn.exec_driver_sql(
        f"INSERT INTO ledger_lots (id, account_id, entry_id, original, remaining, created_at) "
        f"{pre}SELECT i, {u}, i, 1, 1, {ts} FROM {src}")
    conn.exec_driver_sql(
        f"INSERT INTO ledger_movements (id, entry_id, lot_id, amount) {pre}SELECT i, i, i, 1 FROM {src}")
    if dialect == "postgresql":
        for table in ("users", "accounts", "ledger_entries", "ledger_lots", "ledger_movements"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))")


def median_ms(client, url: str, runs: int) -> float:
    client.get(url)  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times) * 1000


def count_statements(app, client, url: str) -> int:
    seen = []

    def before(conn, cursor, statement, *args):
        if not re.match(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA)", statement, re.I):
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    client.get(url)
    sa.event.remove(engine, "before_cursor_execute", before)
    return len(seen)


def run(backend: str, url: str, users: int, per_user: int, runs: int, tmp: Path) -> None:
    from flask_migrate import upgrade

    from storefront.auth.service import create_user
    from storefront.db import write_transaction

    print(f"\n== {backend}: {users:,} users, {users * per_user:,} ledger entries")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": str(tmp),
                      "RATELIMIT_STORAGE_URI": "memory://", "TESTING": True})
    with app.app_context():
        upgrade()
        start = time.perf_counter()
        with db.engine.begin() as conn:
            populate(conn, db.engine.dialect.name, users, per_user)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if backend == "postgresql" else "ANALYZE")
        print(f"populated in {time.perf_counter() - start:.1f} s")
        with write_transaction():
            create_user("bench-admin@example.com", "bench-password", "Bench Admin", admin=True)
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert client.post("/auth/login", data={"email": "bench-admin@example.com", "password": "bench-password",
                                            "csrf_token": token}).status_code == 303

    base = median_ms(client, "/healthz", runs)
    print(f"GET /healthz                              median {base:7.2f} ms   (ratio 1.0)")
    for label, page_url in (("first page", "/admin/credits"),
                            ("filtered q=user123", "/admin/credits?q=user123"),
                            ("filtered q=emma", "/admin/credits?q=emma"),
                            ("word prefix q=bench4242", "/admin/credits?q=bench4242"),
                            ("two words q=emma+bench44", "/admin/credits?q=emma+bench44"),
                            ("balance range + sort", "/admin/credits?min=5&max=20&sort=-balance"),
                            ("page 40", "/admin/credits?page=40")):
        ms = median_ms(client, page_url, runs)
        queries = count_statements(app, client, page_url)
        print(f"GET {page_url:38} median {ms:7.2f} ms   ratio {ms / base:6.1f}   {queries} SQL statements  ({label})")

    for name in ("ledger", "balances"):
        start = time.perf_counter()
        response = client.get(f"/admin/export/{name}.csv", buffered=False)
        size = lines = 0
        for chunk in response.response:
            size += len(chunk)
            lines += chunk.count(b"\n")
        response.close()
        elapsed = time.perf_counter() - start
        tracemalloc.start()
        response = client.get(f"/admin/export/{name}.csv", buffered=False)
        for chunk in response.response:
            pass
        response.close()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"export {name:9} {lines - 1:>9,} rows  {size / 2**20:6.1f} MiB  in {elapsed:6.2f} s   "
              f"peak Python memory {peak / 2**20:5.1f} MiB (tracemalloc)")
    with app.app_context():
        from storefront.ledger import service as ledger
        start = time.perf_counter()
        problems = ledger.verify()
        print(f"ledger verify: {len(problems)} problems ({time.perf_counter() - start:.1f} s)")
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgresql", "both"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            run("sqlite", f"sqlite:///{tmp}/bench.sqlite3", args.users, args.per_user, args.runs, Path(tmp))
        pg = os.environ.get("TEST_DATABASE_URL")
        if args.backend in ("postgresql", "both") and pg:
            name = f"storefront_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                url = sa.engine.make_url(pg).set(database=name).render_as_string(hide_password=False)
                run("postgresql", url, args.users, args.per_user, args.runs, Path(tmp))
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
        elif args.backend != "sqlite":
            print("\n(PostgreSQL skipped: TEST_DATABASE_URL is not set)")


if __name__ == "__main__":
    main()
