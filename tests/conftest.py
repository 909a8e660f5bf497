"""Shared fixtures. Tests that use `app` run once on SQLite (a file database, as in
production) and once on PostgreSQL (TEST_DATABASE_URL, set by `make test`).

Factories return callables (`make_user(...)`), clients submit forms with a real CSRF
token, and `live_server` serves the app on a thread for the browser tests.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from storefront import create_app
from storefront.db import write_transaction
from storefront.extensions import db

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
PASSWORD = "correct-horse-42"


def migrate(url: str, tmp) -> None:
    """Bring an empty database to the head revision with the real migrations."""
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp)})
    with app.app_context():
        upgrade()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "storefront.sqlite3"
    migrate(f"sqlite:///{path}", path.parent)
    return path


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A database of our own on the test server, migrated once, dropped at the end."""
    if not PG_ADMIN_URL:
        pytest.skip("no PostgreSQL (TEST_DATABASE_URL unset)")
    name = f"storefront_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrate(url, tmp_path_factory.mktemp("pg"))
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def database_url(request, backend, tmp_path):
    """A clean, migrated database for one test."""
    if backend == "sqlite":
        path = tmp_path / "storefront.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        if tables:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    engine.dispose()
    return url


class Client(FlaskClient):
    def csrf_token(self) -> str:
        page = self.get("/auth/login")
        return CSRF_META.search(page.get_data(as_text=True)).group(1)

    def submit(self, url: str, data: dict | None = None, **kwargs):
        """POST a form the way the browser does: with the page's CSRF token."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.post(url, data=data, **kwargs)

    def htmx(self, method: str, url: str, **kwargs):
        headers = {"HX-Request": "true", **kwargs.pop("headers", {})}
        if method.upper() != "GET":
            headers.setdefault("X-CSRFToken", self.csrf_token())
        return self.open(url, method=method.upper(), headers=headers, **kwargs)


@pytest.fixture
def app_config(tmp_path):
    """Override in a test module to change settings."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, app_config):
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "RATELIMIT_STORAGE_URI": "memory://",
        "WIDGET_POLL_SECONDS": 1,
        **app_config,
    })
    app.test_client_class = Client
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def client(app) -> Client:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass
class UserInfo:
    id: int
    email: str
    password: str
    display_name: str
    is_admin: bool


@pytest.fixture
def make_user(app):
    """make_user(credits=20, admin=True, ...) -> UserInfo, committed."""
    from storefront.auth.service import create_user
    from storefront.ledger import service as ledger

    counter = iter(range(1, 10_000))

    def factory(email=None, *, name=None, password=PASSWORD, admin=False, credits=0, expires_at=None):
        n = next(counter)
        email = email or f"user{n}@example.com"
        with app.app_context(), write_transaction():
            user = create_user(email, password, name or f"User {n}", admin=admin)
            if credits:
                ledger.grant(user.id, credits, reference=f"test-grant:{email}:{n}",
                             actor=ledger.Actor.system(), reason="test credits", expires_at=expires_at)
            return UserInfo(user.id, user.email, password, user.display_name, user.is_admin)

    return factory


@pytest.fixture
def make_pack(app):
    """make_pack(credits=10, price_cents=9000, ...) -> pack id, committed (the courses
    tests keep their own, by name, in tests/courses/conftest.py)."""
    from storefront.catalog.models import Pack

    def factory(credits=10, price_cents=9000, validity_days=None, name=None, currency="eur", active=True):
        with app.app_context(), write_transaction():
            pack = Pack(name=name or f"{credits} credits", credits=credits, price_cents=price_cents,
                        currency=currency, validity_days=validity_days, active=active)
            db.session.add(pack)
            db.session.flush()
            return pack.id

    return factory


@pytest.fixture
def fast_password_hashing(monkeypatch):
    """Many users or failed logins per test: cheap hashes (tests only) keep the suite fast.
    Used by every admin test (tests/admin/conftest.py) and by the bad-input campaign."""
    from werkzeug.security import generate_password_hash

    import storefront.auth.models as models
    import storefront.auth.views as views

    def cheap(password):
        return generate_password_hash(password, method="pbkdf2:sha256:1")

    monkeypatch.setattr(models, "generate_password_hash", cheap)
    # The hash checked for unknown emails (so that timing does not tell them apart).
    monkeypatch.setattr(views, "_dummy_hash", lambda: cheap("no-such-account"))


@pytest.fixture
def login():
    def do_login(client: Client, user: UserInfo):
        response = client.submit("/auth/login", {"email": user.email, "password": user.password})
        assert response.status_code == 303, response.get_data(as_text=True)
        return response

    return do_login


@pytest.fixture
def verify_ledger(app):
    """Call at the end of a scenario: every ledger invariant must hold."""
    from storefront.ledger import service as ledger

    def check():
        with app.app_context():
            problems = ledger.verify()
        assert problems == []

    return check


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a thread (browser tests, multi-client tests)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if p and os.path.exists(p)), None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium (no Playwright browser download)."""
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]}


@pytest.fixture(scope="session")
def screenshot_dir():
    path = os.path.join(os.path.dirname(__file__), "..", "test-output", "screenshots")
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


README_SHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "static", "screenshots")


@pytest.fixture(scope="session")
def shoot(screenshot_dir):
    """shoot(page, name, readme_name=None, full_page=True): a screenshot under
    test-output/screenshots, copied to the README's static/screenshots/readme_name too
    when STOREFRONT_SCREENSHOTS=1 (`make screenshots`)."""
    def take(page, name, readme_name=None, full_page=True):
        path = os.path.join(screenshot_dir, name)
        page.screenshot(path=path, full_page=full_page)
        if readme_name and os.environ.get("STOREFRONT_SCREENSHOTS") == "1":
            os.makedirs(README_SHOTS, exist_ok=True)
            shutil.copy(path, os.path.join(README_SHOTS, readme_name))
    return take
