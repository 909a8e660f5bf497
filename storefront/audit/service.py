from __future__ import annotations

from ..extensions import db
from .models import AuditEvent


def record(actor, action: str, target=None, **details) -> AuditEvent:
    """Add one audit event to the current transaction (it commits with the change)."""
    event = AuditEvent(
        actor_id=getattr(actor, "id", None), action=action,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=str(target.id) if target is not None else None, details=details)
    db.session.add(event)
    return event
