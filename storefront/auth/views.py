from __future__ import annotations

import secrets
from functools import lru_cache

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_limiter.util import get_remote_address
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import limiter
from ..web import render, safe_next
from .forms import LoginForm, PasswordForm, RegisterForm
from .service import (EmailTaken, UserError, create_user, end_all_sessions, end_session,
                      find_by_email, start_session)

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _failed(response) -> bool:
    """Only failed logins count towards the throttle (401 is a wrong password)."""
    return response.status_code == 401


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def _spend_hash_time(password: str) -> None:
    """Hash anyway for unknown emails, so response times do not tell which accounts exist."""
    check_password_hash(_dummy_hash(), password)


def _account_key() -> str:
    return "login-account:" + (request.form.get("email") or "").strip().lower()


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data, form.display_name.data)
        except UserError as exc:
            form.email.errors.append(_("An account with this email already exists.")
                                     if isinstance(exc, EmailTaken) else _("This email address is not valid."))
        else:
            start_session(user)
            login_user(user)
            flash(_("Welcome, %(name)s!", name=user.display_name), "success")
            return redirect(safe_next(request.args.get("next")), code=303)
    return render("auth/register.html", form=form, status=422 if form.errors else 200)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_FAILURES_PER_ACCOUNT"], key_func=_account_key,
               methods=["POST"], deduct_when=_failed, scope="login-account")
@limiter.limit(lambda: current_app.config["LOGIN_FAILURES_PER_ADDRESS"], key_func=get_remote_address,
               methods=["POST"], deduct_when=_failed, scope="login-address")
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = find_by_email(form.email.data)
        if user is None:
            _spend_hash_time(form.password.data)
        elif user.check_password(form.password.data):
            start_session(user)
            login_user(user)
            return redirect(safe_next(request.args.get("next")), code=303)
        form.password.errors.append(_("Invalid email or password."))
        status = 401
    elif form.errors:
        status = 422
    return render("auth/login.html", form=form, status=status)


@bp.post("/logout")
@login_required
def logout():
    # This login session is revoked on the server: the old cookie, wherever it was copied,
    # stops working (the user's other browsers stay logged in).
    end_session(current_user.current_session_token)
    logout_user()
    return redirect(url_for("shop.home"), code=303)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data):
            form.current.errors.append(_("The current password is wrong."))
        else:
            user = current_user._get_current_object()
            user.set_password(form.password.data)
            end_all_sessions(user)  # every other browser is logged out...
            start_session(user)
            login_user(user)  # ...and this one stays logged in with a new session
            flash(_("Your password was changed; other sessions were logged out."), "success")
            return redirect(url_for("shop.home"), code=303)
    return render("auth/password.html", form=form, status=422 if form.errors else 200)
