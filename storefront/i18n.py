"""Languages: English and French through Flask-Babel catalogues.

Each area of the shop keeps its own catalogue under storefront/translations/<area>/
(so that areas can be translated independently); Flask-Babel merges them all.
The language comes from the switcher (kept in the session and on the user), else from
the browser's Accept-Language.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request, session
from flask_login import current_user

from .extensions import babel

TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return request.accept_languages.best_match(list(languages)) or current_app.config["BABEL_DEFAULT_LOCALE"]


def compile_catalogues() -> None:
    """Compile every .po that has no up-to-date .mo (the .mo files are build output)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)


def init_app(app: Flask) -> None:
    try:
        compile_catalogues()
    except OSError:  # read-only install: the .mo files were built beforehand
        pass
    # A fresh checkout has no translations/ directory until an area adds a catalogue.
    areas = TRANSLATIONS.iterdir() if TRANSLATIONS.is_dir() else ()
    directories = sorted(str(d) for d in areas if d.is_dir())
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join(directories))
    babel.init_app(app, locale_selector=select_locale)
    from flask_babel import get_locale

    app.jinja_env.globals["get_locale"] = get_locale
