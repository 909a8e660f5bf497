"""Dashboard figures: credits sold, granted, spent, expired, outstanding; money received
(from the payments orders: paid minus refunded); the value of outstanding credits (the
shop's liability); counts of orders, refunds, open disputes and live enrolments; credits
sold and spent per week.

Everything is computed with grouped SQL (sums, never row-by-row in Python), and money
stays in integer minor units.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, cast, func, select

from ..db import utcnow
from ..enrolment.models import Enrolment
from ..enrolment.service import today as shop_today
from ..extensions import db
from ..ledger.models import Entry, Kind, Lot
from ..payments.adjustments import CLOSED_DISPUTE_STATUSES
from ..payments.models import Dispute, Order, Refund, RefundStatus, Status as OrderStatus

WEEKS = 12


@dataclass
class Figures:
    sold: int
    granted: int
    spent: int
    expired: int
    removed: int
    clawed_back: int
    outstanding: int
    money_paid: dict[str, int]       # currency -> cents charged by the payment provider
    money_refunded: dict[str, int]   # currency -> cents given back
    money_lost: dict[str, int]       # currency -> cents taken back by lost disputes
    money_received: dict[str, int]   # currency -> cents: paid - refunded - lost
    liability: dict[str, int]        # currency -> cents


def _open_lots(now: datetime):
    return (Lot.remaining > 0) & (Lot.expires_at.is_(None) | (Lot.expires_at > now))


def money_received() -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
    """Per currency, in cents: (paid, refunded, lost in disputes, received).

    Taken from the payments orders, the record of what the provider actually charged:
    every order that was paid (whatever refunds or disputes followed) counts its amount;
    `refunded_cents` (kept by the payments area, never above the amount) and the amount
    of every dispute that was lost (the bank took it back) come off. Money held in an
    open dispute is still counted as received; the dashboard shows it apart. Two grouped
    queries; integer sums only.
    """
    rows = db.session.execute(
        select(Order.currency, func.sum(Order.amount_cents), func.sum(Order.refunded_cents))
        .where(Order.status.in_(OrderStatus.SETTLED)).group_by(Order.currency)).all()
    paid = {currency: int(total or 0) for currency, total, _refunded in rows}
    refunded = {currency: int(back or 0) for currency, _total, back in rows}
    lost = {currency: int(total or 0) for currency, total in db.session.execute(
        select(Order.currency, func.sum(Dispute.amount_cents)).join(Dispute.order)
        .where(Dispute.status == "lost").group_by(Order.currency))}
    received = {currency: paid[currency] - refunded[currency] - lost.get(currency, 0) for currency in paid}
    return paid, refunded, lost, received


def liability(now: datetime) -> dict[str, int]:
    """Per currency, what was paid for the credits still usable: for each open lot
    remaining * paid_cents // original (integer arithmetic, 64-bit)."""
    value = cast(Lot.remaining, BigInteger) * Lot.paid_cents // Lot.original
    rows = db.session.execute(
        select(Lot.currency, func.sum(value))
        .where(_open_lots(now), Lot.paid_cents.is_not(None)).group_by(Lot.currency)).all()
    return {(currency or "?"): int(total or 0) for currency, total in rows}


def figures(now: datetime | None = None) -> Figures:
    now = now or utcnow()
    totals = {kind: int(total or 0) for kind, total in db.session.execute(
        select(Entry.kind, func.sum(Entry.delta)).group_by(Entry.kind))}
    outstanding = db.session.scalar(select(func.coalesce(func.sum(Lot.remaining), 0)).where(_open_lots(now)))
    paid, refunded, lost, received = money_received()
    return Figures(
        sold=totals.get(Kind.PURCHASE, 0),
        granted=totals.get(Kind.ADMIN_GRANT, 0) + totals.get(Kind.IMPORT, 0),
        spent=-(totals.get(Kind.SPEND, 0) + totals.get(Kind.SPEND_REVERSAL, 0)),
        expired=-totals.get(Kind.EXPIRY, 0),
        removed=-totals.get(Kind.ADMIN_DEBIT, 0),
        clawed_back=-(totals.get(Kind.CLAWBACK, 0) + totals.get(Kind.CLAWBACK_REVERSAL, 0)),
        outstanding=int(outstanding or 0),
        money_paid=paid,
        money_refunded=refunded,
        money_lost=lost,
        money_received=received,
        liability=liability(now),
    )


@dataclass
class Activity:
    """What needs an admin's eye: counts over orders, refunds, disputes and enrolments."""
    orders_paid: int
    orders_pending: int
    refunds: int
    disputes_open: int
    disputed: dict[str, int]   # currency -> cents held in open disputes
    enrolments_upcoming: int
    enrolments_active: int


def _count(model, *where):
    return select(func.count()).select_from(model).where(*where).scalar_subquery()


def activity(today: date | None = None) -> Activity:
    """Two queries whatever the volume: the counts as scalar subqueries of one SELECT
    (each served by an index or a single scan), and the open disputes' money per currency."""
    today = today or shop_today()
    live = Enrolment.cancelled_at.is_(None)
    dispute_open = Dispute.status.not_in(CLOSED_DISPUTE_STATUSES)
    counts = db.session.execute(select(
        _count(Order, Order.status.in_(OrderStatus.SETTLED)),
        _count(Order, Order.status == OrderStatus.PENDING),
        _count(Refund, Refund.status.not_in(RefundStatus.VOID)),  # failed refunds gave nothing back
        _count(Dispute, dispute_open),
        _count(Enrolment, live, Enrolment.start_date > today),
        _count(Enrolment, live, Enrolment.start_date <= today, Enrolment.end_date > today),
    )).one()
    disputed = db.session.execute(
        select(Order.currency, func.sum(Dispute.amount_cents)).join(Order, Order.id == Dispute.order_id)
        .where(dispute_open).group_by(Order.currency)).all()
    paid, pending, refunds, disputes, upcoming, active = (int(n or 0) for n in counts)
    return Activity(orders_paid=paid, orders_pending=pending, refunds=refunds, disputes_open=disputes,
                    disputed={currency: int(total or 0) for currency, total in disputed},
                    enrolments_upcoming=upcoming, enrolments_active=active)


@dataclass
class Week:
    start: date
    sold: int = 0
    spent: int = 0


def weekly(now: datetime | None = None, weeks: int = WEEKS) -> list[Week]:
    """Credits sold and spent (net of cancellations) per week, oldest first; weeks start on Monday."""
    today = (now or utcnow()).date()
    first = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    stamp = Entry.created_at
    if db.session.get_bind().dialect.name == "postgresql":
        stamp = func.timezone("UTC", Entry.created_at)  # days in UTC whatever the session zone
    day = func.date(stamp)
    since = datetime.combine(first, datetime.min.time()).replace(tzinfo=utcnow().tzinfo)
    rows = db.session.execute(
        select(day, Entry.kind, func.sum(Entry.delta))
        .where(Entry.created_at >= since,
               Entry.kind.in_([Kind.PURCHASE, Kind.SPEND, Kind.SPEND_REVERSAL]))
        .group_by(day, Entry.kind)).all()
    result = [Week(first + timedelta(weeks=i)) for i in range(weeks)]
    for when, kind, total in rows:
        when = when if isinstance(when, date) else date.fromisoformat(str(when)[:10])
        index = (when - first).days // 7
        if 0 <= index < weeks:
            if kind == Kind.PURCHASE:
                result[index].sold += int(total)
            else:
                result[index].spent -= int(total)
    return result


@dataclass
class Bar:
    x: int
    y: int
    height: int
    value: int
    label: str


def chart(weeks: list[Week], width: int = 640, height: int = 220) -> dict:
    """Geometry of a grouped bar chart, drawn as SVG by the template (no JS, no CDN)."""
    top, bottom, left = 10, 30, 40
    plot_h = height - top - bottom
    peak = max([w.sold for w in weeks] + [w.spent for w in weeks] + [1])
    slot = (width - left) // max(len(weeks), 1)
    bar_w = max(slot // 3, 2)
    sold, spent, labels = [], [], []
    for i, w in enumerate(weeks):
        x = left + i * slot + slot // 6
        for series, value, offset in ((sold, w.sold, 0), (spent, max(w.spent, 0), bar_w)):
            h = value * plot_h // peak
            series.append(Bar(x + offset, top + plot_h - h, h, value, w.start.isoformat()))
        labels.append((x + bar_w, w.start))
    return {"width": width, "height": height, "peak": peak, "base": top + plot_h, "left": left,
            "top": top, "bar_w": bar_w, "sold": sold, "spent": spent, "labels": labels}
