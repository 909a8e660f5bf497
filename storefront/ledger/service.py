"""The ledger service: the only code that changes credits.

Every operation runs inside the caller's transaction and only flushes (the request, or
`write_transaction` in the CLI, commits once). Each one:

1. returns the first result when its `reference` was already used (idempotency), and
   raises `IdempotencyConflict` when that first use asked for something else;
2. locks the account row first (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
   transactions that write hold the database lock from BEGIN IMMEDIATE), so everything
   it then reads about the account's lots is current;
3. changes the cached balance with a conditional UPDATE checked by its row count, and
   the lots with conditional UPDATEs too, so that a bug elsewhere cannot push a
   number out of range (the CHECK constraints would catch it anyway);
4. runs in a SAVEPOINT, so a duplicate-key race or a domain error leaves nothing
   behind in the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.util import identity_key

from ..db import utcnow
from ..extensions import db
from .models import Account, ActorType, Entry, Kind, Lot, Movement
from .signals import credits_changed

MAX_AMOUNT = 1_000_000  # one operation; larger numbers are typing mistakes


class LedgerError(Exception):
    """A request the ledger refuses; nothing was changed."""


class InvalidAmount(LedgerError):
    pass


class InsufficientCredits(LedgerError):
    def __init__(self, needed: int, available: int):
        self.needed, self.available = needed, available
        super().__init__(f"{needed} credits needed, {available} available")

    @property
    def shortfall(self) -> int:
        return self.needed - self.available


class IdempotencyConflict(LedgerError):
    """The reference was already used for a different operation or amount."""


class UnknownReference(LedgerError):
    pass


class AlreadyReversed(LedgerError):
    pass


@dataclass(frozen=True)
class Actor:
    type: str
    id: int | None = None

    @classmethod
    def system(cls) -> "Actor":
        return cls(ActorType.SYSTEM)

    @classmethod
    def provider(cls) -> "Actor":
        return cls(ActorType.PROVIDER)

    @classmethod
    def of(cls, user) -> "Actor":
        return cls(ActorType.ADMIN if user.is_admin else ActorType.LEARNER, user.id)


def check_amount(amount) -> int:
    """Amounts are whole, positive and sane; bool and float are refused outright."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"amount must be a whole number, got {amount!r}")
    if amount <= 0:
        raise InvalidAmount("amount must be positive")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"amount must be at most {MAX_AMOUNT}")
    return amount


# --- reading ---------------------------------------------------------------------------

def account_for(user_id: int) -> Account:
    """The user's account, created on first use (race-safe)."""
    account = db.session.scalar(select(Account).where(Account.user_id == user_id))
    if account is not None:
        return account
    try:
        with db.session.begin_nested():
            account = Account(user_id=user_id, balance=0)
            db.session.add(account)
    except IntegrityError:  # created concurrently, or no such user
        account = db.session.scalar(select(Account).where(Account.user_id == user_id))
        if account is None:
            raise UnknownReference(f"no user {user_id}") from None
    return account


def balance(user_id: int) -> int:
    return db.session.scalar(select(Account.balance).where(Account.user_id == user_id)) or 0


@dataclass(frozen=True)
class Summary:
    balance: int
    available: int  # balance less credits whose expiry is due but not yet posted
    next_expiry_amount: int
    next_expiry_at: datetime | None


def summary(user_id: int, now: datetime | None = None) -> Summary:
    """What the balance widget shows: one indexed query whatever the history size (the
    cached balance, joined to the account's open lots that have an expiry date)."""
    now = now or utcnow()
    rows = db.session.execute(
        select(Account.balance, Lot.expires_at, Lot.remaining)
        .outerjoin(Lot, and_(Lot.account_id == Account.id, Lot.remaining > 0,
                             Lot.expires_at.is_not(None)))
        .where(Account.user_id == user_id)
        .order_by(Lot.expires_at)).all()
    if not rows:
        return Summary(0, 0, 0, None)
    balance = rows[0].balance
    lots = [r for r in rows if r.expires_at is not None]
    due = sum(r.remaining for r in lots if r.expires_at <= now)
    upcoming = [r for r in lots if r.expires_at > now]
    next_at = upcoming[0].expires_at if upcoming else None
    next_amount = sum(r.remaining for r in upcoming if r.expires_at.date() == next_at.date()) if next_at else 0
    return Summary(balance, balance - due, next_amount, next_at)


def lock_account(user_id: int) -> Account:
    """The user's account row, locked until the transaction ends: for a caller that must
    compare what it read (e.g. the balance an admin saw) before asking for a change."""
    return _lock(account_for(user_id).id)


def entry_by_reference(reference: str) -> Entry | None:
    return db.session.scalar(select(Entry).where(Entry.reference == reference))


# --- internals -------------------------------------------------------------------------

def _lock(account_id: int) -> Account:
    account = db.session.scalar(
        select(Account).where(Account.id == account_id).with_for_update()
        .execution_options(populate_existing=True))
    return account


def _change_balance(account: Account, delta: int) -> int:
    """Conditional update of the cached balance; returns the new balance."""
    now = utcnow()
    stmt = (update(Account).where(Account.id == account.id)
            .values(balance=Account.balance + delta, updated_at=now)
            .returning(Account.balance)
            .execution_options(synchronize_session=False))
    if delta < 0:
        stmt = stmt.where(Account.balance >= -delta)
    new_balance = db.session.execute(stmt).scalar()
    if new_balance is None:
        db.session.refresh(account)
        raise InsufficientCredits(-delta, account.balance)
    db.session.expire(account, ["balance", "updated_at"])
    credits_changed.send(account.user_id)
    return new_balance


def _move(lot_id: int, amount: int) -> None:
    stmt = update(Lot).where(Lot.id == lot_id).values(remaining=Lot.remaining + amount)
    stmt = stmt.where(Lot.remaining >= -amount) if amount < 0 else stmt.where(
        Lot.remaining + amount <= Lot.original)
    result = db.session.execute(stmt.execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise LedgerError(f"lot {lot_id} cannot move by {amount}")


def _record(account: Account, *, delta: int, requested: int, kind: str, reference: str,
            actor: Actor, reason: str | None, moves: list[tuple[int, int]],
            reverses_id: int | None = None) -> Entry:
    balance_after = _change_balance(account, delta) if delta else account.balance
    entry = Entry(account_id=account.id, delta=delta, requested=requested, kind=kind,
                  reference=reference, actor_type=actor.type, actor_id=actor.id,
                  reason=reason, balance_after=balance_after, reverses_id=reverses_id,
                  created_at=utcnow())
    db.session.add(entry)
    db.session.flush()
    for lot_id, amount in moves:
        _move(lot_id, amount)
        db.session.add(Movement(entry_id=entry.id, lot_id=lot_id, amount=amount))
    db.session.flush()
    _forget_cached_lots(lot_id for lot_id, _ in moves)
    return entry


def _forget_cached_lots(lot_ids) -> None:
    """Lots were changed by UPDATE statements: drop any stale copy the session holds."""
    for lot_id in lot_ids:
        lot = db.session.identity_map.get(identity_key(Lot, lot_id))
        if lot is not None:
            db.session.expire(lot, ["remaining"])


def _replay(existing: Entry, *, kind: str, account_id: int, requested: int) -> Entry:
    if (existing.kind, existing.account_id, existing.requested) != (kind, account_id, requested):
        raise IdempotencyConflict(
            f"reference {existing.reference!r} was already used for {existing.kind} of "
            f"{existing.requested} credits")
    return existing


def _idempotent(reference: str, kind: str, account_id: int, requested: int, operation) -> Entry:
    if not reference or len(reference) > 200:
        raise LedgerError("a reference of 1 to 200 characters is required")
    existing = entry_by_reference(reference)
    if existing is not None:
        return _replay(existing, kind=kind, account_id=account_id, requested=requested)
    try:
        with db.session.begin_nested():
            return operation()
    except IntegrityError:
        existing = entry_by_reference(reference)
        if existing is None:
            raise
        return _replay(existing, kind=kind, account_id=account_id, requested=requested)


def _open_lots(account_id: int):
    # populate_existing: the caller may hold copies of these lots loaded before another
    # transaction spent from them; plans made from stale `remaining` would fail.
    never_last = case((Lot.expires_at.is_(None), 1), else_=0)
    return db.session.scalars(
        select(Lot).where(Lot.account_id == account_id, Lot.remaining > 0)
        .order_by(never_last, Lot.expires_at, Lot.id)
        .execution_options(populate_existing=True)).all()


def _expiry_reference(lot: Lot) -> str:
    """`expiry:lot:<id>`, suffixed when that lot already had an expiry posted.

    A lot can expire twice: credits returned to it after its expiry was posted (by a
    reversal decided on another host's clock) expire again, and must not collide with
    the first expiry's reference, which would block the account for good.
    """
    reference = f"expiry:lot:{lot.id}"
    if entry_by_reference(reference) is None:
        return reference
    moves = db.session.scalar(select(func.count()).select_from(Movement).where(Movement.lot_id == lot.id))
    return f"{reference}:{moves}"


def _expire_due_locked(account: Account, now: datetime) -> list[Entry]:
    entries = []
    for lot in _open_lots(account.id):
        if lot.expired(now):
            entries.append(_record(
                account, delta=-lot.remaining, requested=lot.remaining, kind=Kind.EXPIRY,
                reference=_expiry_reference(lot), actor=Actor.system(),
                reason="Credits expired", moves=[(lot.id, -lot.remaining)]))
    return entries


# --- operations ------------------------------------------------------------------------

def grant(user_id: int, amount: int, *, reference: str, actor: Actor, kind: str = Kind.ADMIN_GRANT,
          reason: str | None = None, expires_at: datetime | None = None,
          paid_cents: int | None = None, currency: str | None = None) -> Entry:
    """Credit `amount` as a new lot (purchase, admin grant, import).

    `paid_cents`/`currency`: what the buyer paid for the lot, so that the value of
    unspent credits (the shop's liability) can be reported.
    """
    check_amount(amount)
    if kind not in Kind.CREDITING:
        raise LedgerError(f"{kind} does not create credits")
    if actor.type == ActorType.ADMIN and not (reason or "").strip():
        raise LedgerError("a reason is required for an admin change")
    account = account_for(user_id)

    def operation():
        # Checked for a new grant only: a replay (a webhook retried after the expiry
        # moment) returns the first entry like any other replay.
        if expires_at is not None and expires_at <= utcnow():
            raise LedgerError("the expiry date must be in the future")
        locked = _lock(account.id)
        balance_after = _change_balance(locked, amount)
        entry = Entry(account_id=locked.id, delta=amount, requested=amount, kind=kind,
                      reference=reference, actor_type=actor.type, actor_id=actor.id,
                      reason=reason, balance_after=balance_after, created_at=utcnow())
        db.session.add(entry)
        db.session.flush()
        lot = Lot(account_id=locked.id, entry_id=entry.id, original=amount, remaining=amount,
                  expires_at=expires_at, paid_cents=paid_cents, currency=currency,
                  created_at=entry.created_at)
        db.session.add(lot)
        db.session.flush()
        db.session.add(Movement(entry_id=entry.id, lot_id=lot.id, amount=amount))
        db.session.flush()
        return entry

    return _idempotent(reference, kind, account.id, amount, operation)


def spend(user_id: int, amount: int, *, reference: str, actor: Actor, kind: str = Kind.SPEND,
          reason: str | None = None, now: datetime | None = None) -> Entry:
    """Take `amount` from the account's lots, soonest-expiring first."""
    check_amount(amount)
    if kind not in (Kind.SPEND, Kind.ADMIN_DEBIT):
        raise LedgerError(f"{kind} is not a spend")
    if kind == Kind.ADMIN_DEBIT and not (reason or "").strip():
        raise LedgerError("a reason is required for an admin change")
    account = account_for(user_id)

    def operation():
        locked = _lock(account.id)
        # The clock is read once the lock is held: what is due is decided against the
        # state we now see, not against a moment before another writer finished.
        _expire_due_locked(locked, now or utcnow())
        if locked.balance < amount:
            raise InsufficientCredits(amount, locked.balance)
        moves, still = [], amount
        for lot in _open_lots(locked.id):
            take = min(still, lot.remaining)
            moves.append((lot.id, -take))
            still -= take
            if not still:
                break
        return _record(locked, delta=-amount, requested=amount, kind=kind, reference=reference,
                       actor=actor, reason=reason, moves=moves)

    return _idempotent(reference, kind, account.id, amount, operation)


def debit(user_id: int, amount: int, *, reference: str, actor: Actor, reason: str) -> Entry:
    return spend(user_id, amount, reference=reference, actor=actor, kind=Kind.ADMIN_DEBIT,
                 reason=reason)


def reverse(original_reference: str, *, reference: str, actor: Actor, reason: str | None = None,
            now: datetime | None = None) -> list[Entry]:
    """Undo a spend or a clawback: credits go back to the lots they came from.

    Credits whose lot has expired meanwhile are returned and expired at once, so that a
    reversal never extends a validity. Returns the reversal entry, then any expiry.
    """
    original = entry_by_reference(original_reference)
    if original is None:
        raise UnknownReference(f"no ledger entry {original_reference!r}")
    kinds = {Kind.SPEND: Kind.SPEND_REVERSAL, Kind.CLAWBACK: Kind.CLAWBACK_REVERSAL,
             Kind.ADMIN_DEBIT: Kind.SPEND_REVERSAL}
    if original.kind not in kinds:
        raise LedgerError(f"a {original.kind} entry cannot be reversed")
    kind, amount = kinds[original.kind], -original.delta

    def operation():
        locked = _lock(original.account_id)
        moment = now or utcnow()  # under the lock: see spend()
        moves = [(m.lot_id, -m.amount) for m in original.movements]
        first = _record(locked, delta=amount, requested=amount, kind=kind, reference=reference,
                        actor=actor, reason=reason, moves=moves, reverses_id=original.id)
        lapsed = [m for m in moves if db.session.get(Lot, m[0]).expired(moment)]
        if lapsed:
            _record(locked, delta=-sum(a for _, a in lapsed), requested=sum(a for _, a in lapsed),
                    kind=Kind.EXPIRY, reference=f"expiry:{reference}", actor=Actor.system(),
                    reason="Returned credits had already expired", moves=[(l, -a) for l, a in lapsed])
        return first

    try:
        entry = _idempotent(reference, kind, original.account_id, amount, operation)
    except IntegrityError as exc:  # reverses_id is UNIQUE: reversed under another reference
        raise AlreadyReversed(f"{original_reference!r} was already reversed") from exc
    if entry.reverses_id != original.id:
        raise IdempotencyConflict(f"reference {reference!r} reverses another entry")
    expiry = entry_by_reference(f"expiry:{reference}")
    return [entry] + ([expiry] if expiry else [])


def clawback(purchase_reference: str, amount: int, *, reference: str, actor: Actor,
             reason: str | None = None, now: datetime | None = None) -> Entry:
    """Take back up to `amount` credits from the lot of one purchase only.

    What is already spent cannot be recovered: the entry's delta says how much was,
    `requested + delta` how much was not (for the order to record). Never below zero.
    """
    check_amount(amount)
    purchase = entry_by_reference(purchase_reference)
    if purchase is None or purchase.kind not in Kind.CREDITING:
        raise UnknownReference(f"no credited lot for {purchase_reference!r}")

    def operation():
        locked = _lock(purchase.account_id)
        _expire_due_locked(locked, now or utcnow())  # clock read under the lock: see spend()
        lot = db.session.scalar(select(Lot).where(Lot.entry_id == purchase.id)
                                .execution_options(populate_existing=True))
        recover = min(amount, lot.remaining)
        return _record(locked, delta=-recover, requested=amount, kind=Kind.CLAWBACK,
                       reference=reference, actor=actor, reason=reason,
                       moves=[(lot.id, -recover)] if recover else [])

    return _idempotent(reference, Kind.CLAWBACK, purchase.account_id, amount, operation)


def expire_due(now: datetime | None = None) -> list[Entry]:
    """Post every expiry that is due (the `flask credits expire` job)."""
    now = now or utcnow()
    account_ids = db.session.scalars(
        select(Lot.account_id).where(Lot.remaining > 0, Lot.expires_at <= now).distinct()).all()
    entries = []
    for account_id in account_ids:
        with db.session.begin_nested():
            entries += _expire_due_locked(_lock(account_id), now)
    return entries


# --- verification ----------------------------------------------------------------------

def verify() -> list[str]:
    """Every invariant of ledger.md, checked with set-based queries; [] when all hold."""
    problems: list[str] = []
    entry_sums = dict(db.session.execute(
        select(Entry.account_id, func.sum(Entry.delta)).group_by(Entry.account_id)).all())
    lot_sums = dict(db.session.execute(
        select(Lot.account_id, func.sum(Lot.remaining)).group_by(Lot.account_id)).all())
    for account_id, bal in db.session.execute(select(Account.id, Account.balance)):
        by_entries, by_lots = entry_sums.get(account_id) or 0, lot_sums.get(account_id) or 0
        if not bal == by_entries == by_lots:
            problems.append(f"account {account_id}: balance {bal}, entries sum {by_entries}, "
                            f"lots sum {by_lots}")
        if bal < 0:
            problems.append(f"account {account_id}: negative balance {bal}")
    for lot_id, remaining, original in db.session.execute(
            select(Lot.id, Lot.remaining, Lot.original)
            .where((Lot.remaining < 0) | (Lot.remaining > Lot.original))):
        problems.append(f"lot {lot_id}: remaining {remaining} outside 0..{original}")
    moved_lots = (select(Movement.lot_id, func.sum(Movement.amount).label("moved"))
                  .group_by(Movement.lot_id).subquery())
    for lot_id, remaining, moved in db.session.execute(
            select(Lot.id, Lot.remaining, moved_lots.c.moved)
            .join(moved_lots, moved_lots.c.lot_id == Lot.id, isouter=True)
            .where(Lot.remaining != func.coalesce(moved_lots.c.moved, 0))):
        problems.append(f"lot {lot_id}: remaining {remaining} but movements sum {moved or 0}")
    moved_entries = (select(Movement.entry_id, func.sum(Movement.amount).label("moved"))
                     .group_by(Movement.entry_id).subquery())
    for entry_id, delta, moved in db.session.execute(
            select(Entry.id, Entry.delta, moved_entries.c.moved)
            .join(moved_entries, moved_entries.c.entry_id == Entry.id, isouter=True)
            .where(Entry.delta != func.coalesce(moved_entries.c.moved, 0))):
        problems.append(f"entry {entry_id}: delta {delta} but movements sum {moved or 0}")
    running = (select(Entry.id, Entry.balance_after,
                      func.sum(Entry.delta).over(partition_by=Entry.account_id,
                                                 order_by=Entry.id).label("running"))
               .subquery())
    for entry_id, after, run in db.session.execute(
            select(running).where(running.c.balance_after != running.c.running)):
        problems.append(f"entry {entry_id}: balance_after {after} but running sum {run}")
    return problems
