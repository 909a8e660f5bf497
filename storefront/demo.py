"""Demo catalogue and accounts (`flask demo load`, run by `make run`)."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from .auth.models import User
from .auth.service import create_user
from .catalog.models import Course, Pack
from .db import utcnow
from .extensions import db
from .ledger import service as ledger

DEMO_USERS = [
    ("admin", "admin@example.com", "admin-demo-1", "Ada Admin"),
    ("learner", "lea@example.com", "learner-demo-1", "Léa Learner"),
    ("learner", "noah@example.com", "learner-demo-2", "Noah Newcomer"),
]

PACKS = [
    ("Starter pack", 10, 9000, None),
    ("Programme pack", 25, 20000, 365),
    ("Team pack", 60, 42000, 365),
]

COURSES = [
    ("first-aid", "First aid at work", "Respond to emergencies with confidence.", 5, 12000, 20, 14),
    ("project-management", "Project management essentials", "Plan, run and close projects.", 8, None, None, 30),
    ("excel-advanced", "Advanced spreadsheets", "Pivot tables, lookups and charts.", 3, 4500, None, 21),
    ("public-speaking", "Public speaking", "Speak clearly to any audience.", 4, None, 12, 10),
    ("gdpr-basics", "Data protection basics", "What the GDPR asks of every team.", 2, None, None, 7),
]


def load_demo():
    """Fill an empty database; returns the logins, or None when users already exist."""
    if db.session.scalar(select(func.count()).select_from(User)):
        return None
    users = {}
    for role, email, password, name in DEMO_USERS:
        users[email] = create_user(email, password, name, admin=role == "admin")
    for position, (name, credits, cents, validity) in enumerate(PACKS):
        db.session.add(Pack(name=name, credits=credits, price_cents=cents, currency="eur",
                            validity_days=validity, position=position))
    for slug, title, summary, credits, cents, capacity, days in COURSES:
        db.session.add(Course(slug=slug, title=title, summary=summary, description=summary,
                              price_credits=credits, price_cents=cents, capacity=capacity,
                              duration_days=days, published=True, refundable=True,
                              last_start_date=date.today() + timedelta(days=180)))
    lea = users["lea@example.com"]
    ledger.grant(lea.id, 15, reference="demo:lea:welcome", actor=ledger.Actor.system(),
                 reason="Welcome credits (demo)")
    ledger.grant(lea.id, 5, reference="demo:lea:promo", actor=ledger.Actor.system(),
                 reason="Promotion (demo)", expires_at=utcnow() + timedelta(days=60))
    db.session.flush()
    return [(role, email, password) for role, email, password, _ in DEMO_USERS]
