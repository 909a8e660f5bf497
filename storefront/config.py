"""Configuration read from the environment (see README "Configuration").

Only the variables of the public contract are required; everything has an embedded
default so that `make run` works on a fresh machine with nothing set.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("STOREFRONT_INSTANCE", ROOT / "instance"))


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in instance/.

    Every worker and every restart must sign sessions with the same key, so a random
    key per process would log everyone out; a file under instance/ is shared by them.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_text().strip()


def from_environment(instance: Path = INSTANCE, overrides: dict | None = None) -> dict:
    env, overrides = os.environ, overrides or {}
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'storefront.sqlite3'}"
    if database_url.startswith("postgres://"):  # Heroku-style URLs
        database_url = "postgresql+psycopg://" + database_url[len("postgres://"):]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    return {
        "SECRET_KEY": overrides.get("SECRET_KEY") or _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "STOREFRONT_BASE_URL": (env.get("STOREFRONT_BASE_URL") or "").rstrip("/") or None,
        # Several hosts must share one counter store for throttling to mean anything.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "MAIL_BACKEND": env.get("MAIL_BACKEND", "log"),  # log | smtp (| memory in tests)
        "MAIL_SERVER": env.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(env.get("MAIL_PORT", "25") or 25),
        "MAIL_FROM": env.get("MAIL_FROM", "shop@localhost"),
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "").lower() in ("1", "true", "yes"),
    }


DEFAULTS = {
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,  # token lives as long as the session
    "WTF_CSRF_HEADERS": ["X-CSRFToken", "X-CSRF-Token"],
    "BABEL_DEFAULT_LOCALE": "en",
    "LANGUAGES": {"en": "English", "fr": "Français"},
    "RATELIMIT_HEADERS_ENABLED": True,
    # The widget polls this often (milliseconds are in the template); kept here so
    # tests can speed it up.
    "WIDGET_POLL_SECONDS": 20,
    "LOGIN_FAILURES_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_FAILURES_PER_ADDRESS": "50 per 15 minutes",
}
