"""The simulated provider: a local "Test payment — no money moves" page.

Used only when STRIPE_SECRET_KEY is unset (the `make run` default), so the whole shop
can be tried without a Stripe account. It keeps its own sessions (SimulatedSession)
and answers with the same dict shapes as Stripe, and paying goes through the very same
`fulfil_checkout` as a Stripe webhook. Every page answers 404 once a key is set.
"""
from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..db import utcnow
from ..extensions import db
from ..web import render
from .models import SimulatedSession
from .service import base_url, close_checkout, fulfil_checkout, order_for_session
from .views import back_from_checkout

bp = Blueprint("simulated", __name__, url_prefix="/checkout/simulated")


def _as_stripe(row: SimulatedSession) -> dict:
    return {"id": row.id, "object": "checkout.session", "status": row.status,
            "payment_status": row.payment_status, "amount_total": row.amount_total,
            "currency": row.currency, "client_reference_id": row.client_reference_id,
            "metadata": dict(row.session_metadata or {}), "payment_intent": row.payment_intent,
            "created": int(row.created_at.timestamp()),
            "url": base_url() + url_for("simulated.page", session_id=row.id)}


class SimulatedProvider:
    name = "simulated"

    def create_session(self, *, order, success_url: str, cancel_url: str) -> dict:
        row = SimulatedSession(
            id=f"cs_sim_{secrets.token_hex(12)}", payment_intent=f"pi_sim_{secrets.token_hex(12)}",
            amount_total=order.amount_cents, currency=order.currency,
            client_reference_id=str(order.user_id), description=order.description,
            session_metadata={"order_id": str(order.id), "product_type": order.product_type},
            success_url=success_url, cancel_url=cancel_url, refunds=[], created_at=utcnow())
        db.session.add(row)
        db.session.flush()
        return _as_stripe(row)

    def retrieve_session(self, session_id: str) -> dict | None:
        row = db.session.get(SimulatedSession, session_id)
        return _as_stripe(row) if row else None

    def expire_session(self, session_id: str) -> None:
        row = db.session.get(SimulatedSession, session_id)
        if row is not None and row.status == "open":
            row.status = "expired"
            db.session.flush()

    def list_sessions(self, *, created_after: int | None = None, payment_intent: str | None = None,
                      limit: int = 1000) -> list[dict]:
        query = select(SimulatedSession).order_by(SimulatedSession.created_at.desc()).limit(limit)
        if payment_intent:
            query = query.where(SimulatedSession.payment_intent == payment_intent)
        rows = db.session.scalars(query).all()
        return [_as_stripe(r) for r in rows
                if created_after is None or r.created_at.timestamp() >= created_after]

    def _by_payment_intent(self, payment_intent: str) -> SimulatedSession | None:
        return db.session.scalar(select(SimulatedSession).where(SimulatedSession.payment_intent == payment_intent))

    def list_refunds(self, payment_intent: str) -> list[dict]:
        row = self._by_payment_intent(payment_intent)
        return list(row.refunds or []) if row else []

    def create_refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str) -> dict:
        row = self._by_payment_intent(payment_intent)
        refunds = list(row.refunds or [])
        for refund in refunds:
            if refund.get("idempotency_key") == idempotency_key:
                return refund
        refund = {"id": f"re_sim_{secrets.token_hex(12)}", "object": "refund", "amount": amount_cents,
                  "status": "succeeded", "payment_intent": payment_intent, "idempotency_key": idempotency_key}
        row.refunds = refunds + [refund]  # a new list, so the JSON column is saved
        db.session.flush()
        return refund


def _own_open_session(session_id: str) -> SimulatedSession:
    if current_app.config.get("STRIPE_SECRET_KEY"):
        abort(404)  # never a way around real payments
    row = db.session.get(SimulatedSession, session_id)
    if row is None or row.client_reference_id != str(current_user.id):
        abort(404)
    return row


@bp.get("/<session_id>")
@login_required
def page(session_id):
    row = _own_open_session(session_id)
    return render("payments/simulated.html", session=row)


@bp.post("/<session_id>/pay")
@login_required
def pay(session_id):
    row = _own_open_session(session_id)
    if row.status == "open":
        row.status, row.payment_status = "complete", "paid"
        db.session.flush()
    fulfil_checkout(row.id)
    return redirect(row.success_url.replace("{CHECKOUT_SESSION_ID}", row.id), code=303)


def _close(session_id, *, expired: bool):
    """The test session ends unpaid: abandoned (expired) or refused by the bank (failed);
    the order follows through the same path as Stripe's events."""
    row = _own_open_session(session_id)
    if row.status == "open":
        SimulatedProvider().expire_session(row.id)
        close_checkout(row.id, expired=expired)
    return row


@bp.post("/<session_id>/cancel")
@login_required
def cancel(session_id):
    row = _close(session_id, expired=True)
    return redirect(row.cancel_url, code=303)


@bp.post("/<session_id>/decline")
@login_required
def decline(session_id):
    row = _close(session_id, expired=False)
    return back_from_checkout(order_for_session(row.id), _("The card was declined: nothing was charged."),
                              _("The card was declined: nothing was charged and no credits were added."), "error")
