"""Storefront: training-credit packs sold through Stripe, spent on courses.

`create_app` is the application factory (the Flask tutorial's pattern): extensions are
module singletons wired here with `init_app`, each domain is a package with its own
blueprint, and the request commits once, at the end, or rolls back on any error.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, g, request

from .config import DEFAULTS, INSTANCE, ROOT, from_environment
from .db import configure_engine, reset_write_intent, set_write_intent
from .extensions import csrf, db, limiter, login_manager, migrate
from .web import IntegerIdConverter

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(test_config: dict | None = None) -> Flask:
    instance = Path((test_config or {}).get("INSTANCE_PATH", INSTANCE))
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True,
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    # Before any blueprint: the routes' <int:...> parameters are bound when registered.
    app.url_map.converters["int"] = IntegerIdConverter
    app.config.update(DEFAULTS)
    app.config.update(from_environment(instance, test_config))
    if test_config:
        app.config.update(test_config)

    from . import errors, i18n, models, security  # noqa: F401  (models: complete metadata)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            configure_engine(engine)

    _register_transactions(app)
    _register_blueprints(app)
    _register_products()
    _register_cli(app)
    return app


def _register_transactions(app: Flask) -> None:
    """One transaction per request: committed after a successful view, else rolled back.

    Requests that may write declare it before their first query, so that on SQLite
    their transaction starts with BEGIN IMMEDIATE (see storefront.db).
    """

    @app.before_request
    def _declare_write_intent():
        view = app.view_functions.get(request.endpoint)
        writes = request.method not in SAFE_METHODS or getattr(view, "writes_on_get", False)
        g._write_intent = set_write_intent(writes)

    @app.after_request
    def _commit(response):
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("_write_intent", None)
        if token is not None:
            reset_write_intent(token)


def _register_blueprints(app: Flask) -> None:
    from .admin import bp as admin_bp
    from .auth.views import bp as auth_bp
    from .courses import admin as admin_courses, views as courses
    from .ledger.views import bp as credits_bp
    from .payments import blueprints as payments_blueprints
    from .shop.views import bp as shop_bp

    for bp in (shop_bp, auth_bp, credits_bp, *payments_blueprints(), courses.bp, admin_courses.bp,
               admin_bp):
        app.register_blueprint(bp)


def _register_products() -> None:
    """Products sold by card plug into the payments pipeline here, so that payments never
    imports the areas that sell through it (packs are payments' own)."""
    from .courses import card as course_card

    course_card.register()


def _register_cli(app: Flask) -> None:
    from .cli import register

    register(app)
