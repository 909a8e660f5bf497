"""Money typed by admins ("90", "90.5", "90,50") and shown back in forms: integer cents
only, parsed without floats. Display in the learner's locale is payments.views.money."""
from __future__ import annotations

import re

AMOUNT = re.compile(r"^(\d{1,7})(?:[.,](\d{1,2}))?$")


def to_cents(text: str | None) -> int | None:
    """'90' -> 9000, '90.5' -> 9050, '90,05' -> 9005; None when empty or not an amount."""
    match = AMOUNT.match((text or "").strip())
    if not match:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def from_cents(cents: int | None) -> str:
    """9050 -> '90.50' (what a form field shows); None -> ''."""
    return "" if cents is None else f"{cents // 100}.{cents % 100:02d}"
