"""The credits page's user list: filter, sort and paginate with a constant number of
indexed queries, whatever the number of users.

Filter semantics: `q` matches the beginning of the display name or of the email, or
the beginning of words of them: "smi" finds "Emma Smith", "acme" finds everyone at
acme.example, "emma sm" needs a word starting with each (case-insensitive). Each is an
index range scan: the expression indexes of admin.models for the whole name and email,
the primary key of `user_search_terms` for words (see auth.search). A substring search
("mit" in "Smith") could not use a B-tree index and would scan every user. The balance
range uses the accounts' balance index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, literal, select, union

from ..auth.models import User, UserSearchTerm
from ..auth.search import words
from ..db import escape_like, utcnow
from ..extensions import db
from ..ledger.models import Account, Lot
from ..ledger.service import MAX_AMOUNT
from ..web import parse_int

PAGE_SIZE = 25
COUNT_CAP = 10_000      # counting stops here: "10,000+" costs the same for any table size
EXPIRING_SOON = timedelta(days=30)
SORTS = {
    "name": (User.display_name.asc(), User.id.asc()),
    "-name": (User.display_name.desc(), User.id.desc()),
    "balance": (Account.balance.asc(), Account.user_id.asc()),
    "-balance": (Account.balance.desc(), Account.user_id.desc()),
}


@dataclass
class UserFilter:
    q: str = ""
    min_balance: int | None = None
    max_balance: int | None = None
    sort: str = "name"
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params) -> "UserFilter":
        """Parse query-string (or saved) parameters; bad values are dropped with a message."""
        f = cls(q=str(params.get("q") or "").strip()[:100])
        for key, attr in (("min", "min_balance"), ("max", "max_balance")):
            value = params.get(key)
            raw = "" if value is None else str(value).strip()
            if raw:
                value = parse_int(raw, minimum=0, maximum=MAX_AMOUNT)
                if value is None:
                    f.errors.append(_("The balance bounds must be whole numbers from 0 to %(max)d.",
                                      max=MAX_AMOUNT))
                setattr(f, attr, value)
        if (f.min_balance is not None and f.max_balance is not None
                and f.min_balance > f.max_balance):
            f.errors.append(_("The minimum balance is larger than the maximum."))
        sort = params.get("sort") or "name"
        f.sort = sort if sort in SORTS else "name"
        f.page = parse_int(params.get("page"), minimum=1, maximum=100_000) or 1
        return f

    def params(self, **changes) -> dict:
        """Query-string parameters that reproduce this filter (for links and saving)."""
        values = {"q": self.q, "min": self.min_balance, "max": self.max_balance,
                  "sort": self.sort, "page": self.page if self.page > 1 else None}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}

    def saved_params(self) -> dict:
        """The filter without its page (q, min, max, sort): what is saved and carried in forms."""
        return self.params(page=None)

    @property
    def active(self) -> bool:
        return bool(self.q) or self.min_balance is not None or self.max_balance is not None


def _starts_with(column, q: str):
    """lower(column) starts with lower(q), in a form each database can serve from an index."""
    lowered = func.lower(column)
    if db.session.get_bind().dialect.name == "postgresql":
        # text_pattern_ops index + a constant prefix pattern: an index range scan.
        return lowered.like(escape_like(q.lower()) + "%", escape="\\")
    # SQLite cannot use an expression index for LIKE, but does for a range. Its lower()
    # folds ASCII only, so both sides go through the same SQL lower().
    low = func.lower(literal(q))
    return (lowered >= low) & (lowered < low + literal(TOP))


QUERY_WORDS_MAX = 5
TOP = "\U0010ffff"  # above every character, bytewise (SQLite BINARY, PostgreSQL "C")


def _word_prefix(word: str):
    """Users with a word starting with `word`: a range on the terms' primary key."""
    return select(UserSearchTerm.user_id).where(UserSearchTerm.term >= word, UserSearchTerm.term < word + TOP)


def _matching_ids(q: str):
    """Ids of the users `q` finds: whole name or email prefix, or every query word a
    word prefix (one indexed range each; nested IN rather than INTERSECT, which SQLite
    cannot parenthesise inside a UNION)."""
    parts = [select(User.id).where(_starts_with(User.email, q)),
             select(User.id).where(_starts_with(User.display_name, q))]
    query_words = list(dict.fromkeys(words(q)))[:QUERY_WORDS_MAX]
    if query_words:
        first, *rest = query_words
        by_words = _word_prefix(first)
        for word in rest:
            by_words = by_words.where(UserSearchTerm.user_id.in_(_word_prefix(word)))
        parts.append(by_words)
    return union(*parts)


def matching(f: UserFilter):
    """SELECT of the users matching the filter (no order, no limit)."""
    stmt = select(User.id).join(Account, Account.user_id == User.id)
    return _where(stmt, f)


def _where(stmt, f: UserFilter):
    if f.q:
        stmt = stmt.where(User.id.in_(_matching_ids(f.q)))
    if f.min_balance is not None:
        stmt = stmt.where(Account.balance >= f.min_balance)
    if f.max_balance is not None:
        stmt = stmt.where(Account.balance <= f.max_balance)
    return stmt


@dataclass
class UserRow:
    user_id: int
    display_name: str
    email: str
    account_id: int
    balance: int
    updated_at: datetime
    expiring_soon: int = 0


@dataclass
class UserPage:
    rows: list[UserRow]
    total: int
    capped: bool
    page: int
    pages: int


ROW_COLUMNS = (User.id, User.display_name, User.email, Account.id, Account.balance,
               Account.updated_at)


def _with_expiring(rows: list[UserRow]) -> list[UserRow]:
    """One grouped query for the whole page (the lots index), never one per row."""
    if not rows:
        return rows
    now = utcnow()
    soon = dict(db.session.execute(
        select(Lot.account_id, func.sum(Lot.remaining))
        .where(Lot.account_id.in_([r.account_id for r in rows]), Lot.remaining > 0,
               Lot.expires_at > now, Lot.expires_at <= now + EXPIRING_SOON)
        .group_by(Lot.account_id)).all())
    for row in rows:
        row.expiring_soon = soon.get(row.account_id) or 0
    return rows


def page_of_users(f: UserFilter) -> UserPage:
    """Three queries: a capped count, the page, the page's expiring credits."""
    base = _where(select(*ROW_COLUMNS).join(Account, Account.user_id == User.id), f)
    counted = db.session.scalar(select(func.count()).select_from(
        base.with_only_columns(User.id).limit(COUNT_CAP + 1).subquery()))
    capped = counted > COUNT_CAP
    total = min(counted, COUNT_CAP)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(f.page, pages)
    result = db.session.execute(
        base.order_by(*SORTS[f.sort]).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    rows = _with_expiring([UserRow(*r) for r in result])
    return UserPage(rows, total, capped, page, pages)


def user_row(user_id: int) -> UserRow | None:
    """One row of the table (what an adjustment re-renders)."""
    result = db.session.execute(
        select(*ROW_COLUMNS).join(Account, Account.user_id == User.id)
        .where(User.id == user_id)).first()
    return _with_expiring([UserRow(*result)])[0] if result else None
