"""Manual adjustment of one learner's credits by an admin (the per-row form).

The form carries the balance the admin saw. The comparison happens AFTER the account
row is locked (FOR UPDATE on PostgreSQL; on SQLite the POST already holds the write
lock from BEGIN IMMEDIATE), so a change committed by another admin in between is
seen and the adjustment refused: no lost update. The form's uuid is the ledger
reference ("admin-form:<uuid>"), so a double submit changes the balance once; it is
checked before the balance comparison (a replay is not "stale") and again once the
lock is held (the first submit may have committed while we waited).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..audit import service as audit
from ..ledger import service as ledger
from ..ledger.models import Entry, Kind

DELTA, SET = "delta", "set"
REASON_MAX = 500  # characters of an admin's reason (adjustments, bulk grants, imports, cancellations)


class AdjustError(Exception):
    """Refused; nothing was written. `code` selects the translated message."""

    def __init__(self, code: str, **params):
        self.code, self.params = code, params
        super().__init__(code, params)


@dataclass(frozen=True)
class Adjustment:
    mode: str             # DELTA: add/remove `amount`; SET: make the balance `amount`
    amount: int           # signed for DELTA, the target balance for SET
    reason: str
    expected_balance: int
    form_id: str
    expires_at: datetime | None = None

    @property
    def reference(self) -> str:
        return f"admin-form:{self.form_id}"


@dataclass(frozen=True)
class Outcome:
    entry: Entry
    replayed: bool


def adjust(admin, user, change: Adjustment) -> Outcome:
    existing = ledger.entry_by_reference(change.reference)
    if existing is not None:
        return _replay(existing, user)
    account = ledger.lock_account(user.id)
    existing = ledger.entry_by_reference(change.reference)
    if existing is not None:
        return _replay(existing, user)
    if account.balance != change.expected_balance:
        raise AdjustError("stale", expected=change.expected_balance, actual=account.balance)
    before = account.balance
    delta = change.amount if change.mode == DELTA else change.amount - before
    if delta == 0:
        raise AdjustError("nothing", balance=before)
    if abs(delta) > ledger.MAX_AMOUNT:
        raise AdjustError("too-large", max=ledger.MAX_AMOUNT)
    actor = ledger.Actor.of(admin)
    try:
        if delta > 0:
            entry = ledger.grant(user.id, delta, reference=change.reference, actor=actor,
                                 kind=Kind.ADMIN_GRANT, reason=change.reason,
                                 expires_at=change.expires_at)
        else:
            entry = ledger.debit(user.id, -delta, reference=change.reference, actor=actor,
                                 reason=change.reason)
    except ledger.InsufficientCredits as exc:
        raise AdjustError("insufficient", amount=exc.needed, balance=exc.available) from exc
    except ledger.IdempotencyConflict as exc:
        raise AdjustError("conflict") from exc
    audit.record(admin, "credits-adjusted", target=user, mode=change.mode, delta=delta,
                 balance_before=before, balance_after=entry.balance_after,
                 reason=change.reason, reference=change.reference,
                 expires_at=change.expires_at.isoformat() if change.expires_at else None)
    return Outcome(entry, replayed=False)


def _replay(entry: Entry, user) -> Outcome:
    account = ledger.account_for(user.id)
    if entry.account_id != account.id:  # the same form id sent for another learner
        raise AdjustError("conflict")
    return Outcome(entry, replayed=True)
