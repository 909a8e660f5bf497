"""Command line: `flask --app wsgi users|credits|demo ...` (see the contract)."""
from __future__ import annotations

import sys
import uuid
from datetime import date, datetime, time, timezone

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from .auth.service import UserError, create_user, find_by_email
from .db import utcnow, write_transaction
from .extensions import db
from .ledger import service as ledger
from .ledger.models import Account, Entry

# AppGroup, not click.Group: its commands push the app context themselves, so they also
# work through app.test_cli_runner() (the `flask` command pushes one, the runner does not).
users = AppGroup("users", help="Manage user accounts.")
credits = AppGroup("credits", help="Grant, inspect and verify training credits.")
demo = AppGroup("demo", help="Demo catalogue and accounts.")


def fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def end_of_day(day: date) -> datetime:
    """Credits "valid until 31 Jan" can be spent all of that day (UTC)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc)


@users.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default=None, help="Display name (default: the email's local part).")
@click.option("--admin", is_flag=True, help="Give the administrator role.")
def users_create(email, password, display_name, admin):
    try:
        with write_transaction():
            user = create_user(email, password, display_name, admin=admin)
            role, address = user.role, user.email
    except UserError as exc:
        fail(str(exc))
    click.echo(f"Created {role} {address}")


# ignore_unknown_options: "-5" is a (refused) amount, not an unknown option.
@credits.command("grant", context_settings={"ignore_unknown_options": True})
@click.argument("email")
@click.argument("amount")
@click.option("--reason", required=True, help="Why (recorded in the ledger).")
@click.option("--expires", "expires", default=None, metavar="YYYY-MM-DD", help="Last day the credits can be used.")
@click.option("--reference", default=None, help="Idempotency key: a second grant with it does nothing.")
def credits_grant(email, amount, reason, expires, reference):
    try:
        number = int(amount.strip())
        if str(number) != amount.strip().lstrip("+"):
            raise ValueError
    except ValueError:
        fail(f"AMOUNT must be a whole number of credits, got {amount!r}")
    if number <= 0:
        fail("AMOUNT must be positive (use the admin page to remove credits)")
    if number > ledger.MAX_AMOUNT:
        fail(f"AMOUNT must be at most {ledger.MAX_AMOUNT}")
    if not reason.strip():
        fail("--reason must not be empty")
    expires_at = None
    if expires:
        try:
            expires_at = end_of_day(date.fromisoformat(expires))
        except ValueError:
            fail(f"--expires must be a date YYYY-MM-DD, got {expires!r}")
        if expires_at <= utcnow():
            fail(f"--expires {expires} is in the past")
    try:
        with write_transaction():
            user = find_by_email(email)
            if user is None:
                fail(f"no user with email {email}")
            entry = ledger.grant(user.id, number, reference=reference or f"cli-grant:{uuid.uuid4()}",
                                 actor=ledger.Actor.system(), reason=reason.strip(), expires_at=expires_at)
            balance = entry.balance_after
    except ledger.LedgerError as exc:
        fail(str(exc))
    click.echo(f"Granted {number} credits to {email}; balance after: {balance}")


@credits.command("balance")
@click.argument("email")
def credits_balance(email):
    user = find_by_email(email)
    if user is None:
        fail(f"no user with email {email}")
    click.echo(ledger.balance(user.id))


@credits.command("verify")
def credits_verify():
    problems = ledger.verify()
    for problem in problems:
        click.echo(problem)
    if problems:
        sys.exit(1)
    accounts = db.session.scalar(select(func.count()).select_from(Account))
    entries = db.session.scalar(select(func.count()).select_from(Entry))
    click.echo(f"Ledger OK: {accounts} accounts, {entries} entries, every invariant holds.")


@credits.command("expire")
def credits_expire():
    with write_transaction():
        entries = ledger.expire_due()
        total = -sum(e.delta for e in entries)
    click.echo(f"Expired {total} credits in {len(entries)} lots.")


@demo.command("load")
def demo_load():
    from .demo import load_demo

    with write_transaction():
        logins = load_demo()
    if logins is None:
        click.echo("The database already has users: demo data not loaded.")
        return
    click.echo("Demo data loaded. Log in with:")
    for role, email, password in logins:
        click.echo(f"  {role:8} {email:28} password: {password}")


def register(app: Flask) -> None:
    from .payments.cli import payments

    for group in (users, credits, demo, payments):
        app.cli.add_command(group)
