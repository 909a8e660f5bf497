"""The words a user is found by in the admin filter, kept in `user_search_terms`.

Every flush that creates a user or changes a name or email rewrites that user's words
(register, `flask users create`, the demo, tests: whatever path, through the ORM). A
search word matches the start of any of them: "smi" finds "Emma Smith", "acme" finds
everyone at acme.example, "emma sm" needs both words.
"""
from __future__ import annotations

import re

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from .models import User, UserSearchTerm

WORD = re.compile(r"\w+")
TERM_MAX = 64
WORDS_MAX = 32  # per user; a pathological name cannot blow up the table


def words(text: str | None) -> list[str]:
    """The lowercased words of a text, in order, each cut to TERM_MAX characters."""
    return [w[:TERM_MAX] for w in WORD.findall((text or "").lower())]


def terms_of(display_name: str | None, email: str | None) -> set[str]:
    """The first WORDS_MAX distinct words of the name, then of the email."""
    return set(list(dict.fromkeys(words(display_name) + words(email)))[:WORDS_MAX])


def _sync(user: User) -> None:
    wanted = terms_of(user.display_name, user.email)
    current = {t.term: t for t in user.search_terms}
    for term, row in current.items():
        if term not in wanted:
            user.search_terms.remove(row)  # delete-orphan
    for term in wanted - current.keys():
        user.search_terms.append(UserSearchTerm(term=term))


@event.listens_for(Session, "before_flush")
def _keep_search_terms(session, _context, _instances) -> None:
    for obj in list(session.new):
        if isinstance(obj, User):
            _sync(obj)
    for obj in list(session.dirty):
        if isinstance(obj, User):
            state = inspect(obj)
            if state.attrs.display_name.history.has_changes() or state.attrs.email.history.has_changes():
                _sync(obj)
