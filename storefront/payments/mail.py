"""Receipt emails, sent only once the fulfilment has committed.

A receipt for a purchase that then rolled back would be a lie, so fulfilment queues the
message on the session and a SQLAlchemy `after_commit` hook hands it to the backend.
Backends (MAIL_BACKEND): "log" (default: written to the log, so the demo needs no mail
server), "memory" (kept in app.extensions["payments_outbox"], for tests), "smtp"
(MAIL_SERVER, MAIL_PORT, MAIL_FROM).
"""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app, url_for
from flask_babel import force_locale, gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db
from ..money import from_cents

log = logging.getLogger("storefront.mail")
QUEUE_KEY = "payments_after_commit"


def after_commit(callback) -> None:
    """Run `callback()` once the current transaction has committed (dropped on rollback)."""
    db.session.info.setdefault(QUEUE_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session):
    for callback in session.info.pop(QUEUE_KEY, []):
        try:
            callback()
        except Exception:  # the payment is done; a lost email must not undo it
            log.exception("after-commit callback failed")


@event.listens_for(Session, "after_transaction_end")
def _drop_on_rollback(session, transaction):
    if transaction.parent is None and not transaction.nested:
        session.info.pop(QUEUE_KEY, None)


def money(cents: int, currency: str) -> str:
    return f"{currency.upper()} {from_cents(cents)}"


def queue_receipt(order) -> None:
    """Compose the receipt now (the order is at hand), send it after the commit."""
    app = current_app._get_current_object()
    with force_locale(order.user.locale or app.config["BABEL_DEFAULT_LOCALE"]):
        subject = _("Your receipt for order %(id)s", id=order.id)
        body = "\n".join([
            _("Hello %(name)s,", name=order.user.display_name), "",
            _("Thank you for your purchase. Payment received for order %(id)s:", id=order.id),
            f"  {order.quantity} × {order.description} — {money(order.amount_cents, order.currency)}",
            _("%(num)d credits were added to your account.", num=order.credits_granted)
            if order.credits_granted else _course_line(order), "",
            _("Printable receipt: %(url)s", url=_receipt_url(order)),
        ])
    message = {"to": order.user.email, "subject": subject, "body": body}
    after_commit(lambda: send(app, message))


def _course_line(order) -> str:
    """What a course order delivered (its fulfiller wrote the outcome in the details)."""
    details = order.details or {}
    if order.product_type != "course":
        return ""
    if details.get("outcome") == "enrolled":
        return _("You are enrolled in %(course)s from %(start)s to %(end)s.", course=order.description,
                 start=details.get("enrolled_start_date"), end=details.get("end_date"))
    return _("You were already enrolled in this course, so no second enrolment was made. "
             "This payment will be refunded.")


def _receipt_url(order) -> str:
    from .service import base_url

    try:
        return base_url() + url_for("orders.receipt", order_id=order.id)
    except RuntimeError:  # no request and no SERVER_NAME (CLI): the path is still useful
        return f"/orders/{order.id}"


def send(app, message: dict) -> None:
    backend = app.config.get("MAIL_BACKEND", "log")
    if backend == "memory":
        app.extensions.setdefault("payments_outbox", []).append(message)
    elif backend == "smtp":
        email = EmailMessage()
        email["From"] = app.config.get("MAIL_FROM", "shop@localhost")
        email["To"], email["Subject"] = message["to"], message["subject"]
        email.set_content(message["body"])
        with smtplib.SMTP(app.config.get("MAIL_SERVER", "localhost"), int(app.config.get("MAIL_PORT", 25))) as smtp:
            smtp.send_message(email)
    else:
        log.info("mail to %s: %s\n%s", message["to"], message["subject"], message["body"])
