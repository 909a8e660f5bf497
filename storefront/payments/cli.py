"""`flask payments reconcile`: catch up with paid checkouts the shop did not hear about.

If the webhook endpoint was down (or misconfigured) when a learner paid, the provider
still knows; this asks it for recent Checkout Sessions and fulfils every paid one
through the same idempotent `fulfil_checkout`, one transaction each.
"""
from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask.cli import AppGroup

from ..db import utcnow, write_transaction
from .providers import ProviderError, get_provider
from .service import fulfil_order, order_for_session

payments = AppGroup("payments", help="Payments: reconcile with the payment provider.")


@payments.command("reconcile")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90),
              help="How far back to look at Checkout Sessions.")
def reconcile(days):
    since = int((utcnow() - timedelta(days=days)).timestamp())
    try:
        sessions = get_provider().list_sessions(created_after=since)
    except ProviderError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    paid = [s for s in sessions if s.get("status") == "complete" and s.get("payment_status") == "paid"]
    fulfilled = failed = 0
    for session in paid:
        try:
            with write_transaction():
                before = order_for_session(session["id"])
                if before is None or before.is_settled:
                    continue
                order = fulfil_order(before)
                if order.is_settled:
                    fulfilled += 1
                    click.echo(f"Fulfilled order {order.id} (session {session['id']})")
        except ProviderError as exc:
            failed += 1
            click.echo(f"Could not fulfil {session['id']}: {exc}", err=True)
    click.echo(f"Checked {len(sessions)} sessions ({len(paid)} paid): fulfilled {fulfilled} missed "
               f"order(s).")
    if failed:
        sys.exit(1)
