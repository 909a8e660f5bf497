"""The migrations build exactly the schema of the models, on SQLite and PostgreSQL.

`flask db upgrade` on an empty database, then Alembic's autogenerate comparison
(configured like migrations/env.py, with compare_type) must find nothing to do; and
`flask db downgrade base` followed by another upgrade must work too.
"""
from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storefront import create_app
from storefront.extensions import db

# SQLite cannot reflect expression indexes (the admin list's lower(...) indexes), so the
# comparison there skips them with a warning; PostgreSQL compares them.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index"),
]


@pytest.fixture
def empty_database(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    admin_url = os.environ["TEST_DATABASE_URL"]
    name = f"storefront_migrations_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def empty_app(empty_database, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "SECRET_KEY": "x",
                      "INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def pending_changes(app) -> list:
    """What `flask db migrate` would generate now (env.py's configuration)."""
    with app.app_context(), db.engine.connect() as connection:
        options = {"compare_type": True, **app.extensions["migrate"].configure_args}
        context = MigrationContext.configure(connection, opts=options)
        return compare_metadata(context, db.metadata)


def tables(app) -> set[str]:
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def flask_db(app, *args):
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_upgrade_gives_exactly_the_models_schema(empty_app):
    assert tables(empty_app) == set()
    flask_db(empty_app, "upgrade")
    assert tables(empty_app) == set(db.metadata.tables) | {"alembic_version"}
    assert pending_changes(empty_app) == []


def test_downgrade_to_base_and_upgrade_again(empty_app):
    flask_db(empty_app, "upgrade")
    flask_db(empty_app, "downgrade", "base")
    assert tables(empty_app) <= {"alembic_version"}
    flask_db(empty_app, "upgrade")
    assert pending_changes(empty_app) == []


def test_constraints_come_from_the_migrations(empty_app):
    """The ledger's CHECK constraints exist after upgrade (named by the convention)."""
    flask_db(empty_app, "upgrade")
    with empty_app.app_context():
        inspector = sa.inspect(db.engine)
        checks = {c["name"] for t in ("accounts", "ledger_entries", "ledger_lots", "ledger_movements")
                  for c in inspector.get_check_constraints(t)}
        uniques = {c["name"] for c in inspector.get_unique_constraints("ledger_entries")}
    assert {"ck_accounts_balance_not_negative", "ck_ledger_lots_remaining_in_range",
            "ck_ledger_lots_original_positive", "ck_ledger_entries_balance_after_not_negative",
            "ck_ledger_movements_amount_not_zero"} <= checks
    assert "uq_ledger_entries_reference" in uniques


def test_the_comparison_does_see_a_difference(empty_app, backend):
    """Guard against a comparison that finds nothing because it looks at nothing."""
    flask_db(empty_app, "upgrade")
    with empty_app.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_ledger_lots_account_open")
        if backend == "postgresql":
            connection.exec_driver_sql("ALTER TABLE ledger_entries ALTER COLUMN kind TYPE varchar(40)")
    changes = pending_changes(empty_app)
    assert ("add_index", "ix_ledger_lots_account_open") in {(c[0], getattr(c[1], "name", None))
                                                           for c in changes if isinstance(c, tuple)}
    if backend == "postgresql":
        assert any(isinstance(c, list) and c[0][0] == "modify_type" for c in changes)


def test_users_created_before_the_search_terms_are_found_by_their_words(empty_app, backend):
    """0007 fills user_search_terms for the users already there (word-prefix filter)."""
    flask_db(empty_app, "upgrade", "0006_refund_failed")
    with empty_app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO users (id, email, display_name, password_hash, role, created_at) VALUES "
            "(1, 'e.zola@acme.example', 'Émile ZOLA', 'x', 'learner', '2026-01-01 00:00:00'), "
            "(2, 'x@y.example', '', 'x', 'learner', '2026-01-01 00:00:00')"))
    flask_db(empty_app, "upgrade")
    with empty_app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT user_id, term FROM user_search_terms")).all()
        if backend == "postgresql":  # compared bytewise, so a prefix is a primary-key range
            collation = connection.execute(sa.text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'user_search_terms' AND column_name = 'term'")).scalar()
            assert collation == "C"
    assert {term for user_id, term in rows if user_id == 1} == {"émile", "zola", "e", "acme", "example"}
    assert {term for user_id, term in rows if user_id == 2} == {"x", "y", "example"}
