"""The shop's front: home page and language switcher."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, session
from flask_login import current_user
from sqlalchemy import select

from ..catalog.models import Course, Pack
from ..extensions import db
from ..web import render, safe_next

bp = Blueprint("shop", __name__)


@bp.app_context_processor
def navigation():
    # Areas link to each other only when they are installed (blueprints are optional).
    return {"url_map_endpoints": lambda: current_app.view_functions.keys()}


@bp.get("/")
def home():
    packs = db.session.scalars(
        select(Pack).where(Pack.active).order_by(Pack.position, Pack.credits).limit(4)).all()
    courses = db.session.scalars(
        select(Course).where(Course.published).order_by(Course.created_at.desc()).limit(6)).all()
    return render("shop/home.html", packs=packs, courses=courses)


@bp.post("/lang")
def set_language():
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.get("/healthz")
def health():
    """A bare constant endpoint: liveness checks, and the benchmarks' baseline."""
    return "ok", 200, {"Content-Type": "text/plain"}
