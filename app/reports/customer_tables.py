"""Reading the customer-base reports: sums over the few materialised rows (no NumPy here: the
server imports this module, ``customer_base`` writes the rows)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.reports.models import RetentionMonth, ValueDay

# Customers with purchases that no `train` has scored yet.
UNSCORED = "unscored"
TIERS = ("high", "medium", "low")
RETENTION_COLUMNS = (
    "active_start", "defected", "retained", "retention_rate", "defection_rate", "new", "won_back",
)  # fmt: skip
VALUE_COLUMNS = (
    "day",
    "customers",
    "clv_forecast",
    "clv_historic",
    *(f"{tier}_{figure}" for tier in TIERS for figure in ("customers", "clv_forecast")),
)
By = Literal["month", "segment"]


@dataclass(frozen=True)
class Table:
    """A report's columns, rows and what it covers (``tables.answer`` serves it)."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    about: dict[str, Any]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _retention_row(active: int, defected: int, new: int, won_back: int) -> dict[str, Any]:
    return {
        "active_start": active,
        "defected": defected,
        "retained": active - defected,
        "retention_rate": _share(active - defected, active),
        "defection_rate": _share(defected, active),
        "new": new,
        "won_back": won_back,
    }


async def retention_table(
    session: AsyncSession, by: By, start: date | None, end: date | None
) -> Table:
    """Retention by month (segments summed), or by segment (the range's months summed)."""
    key = RetentionMonth.month if by == "month" else RetentionMonth.segment
    query = select(
        key,
        func.sum(RetentionMonth.active_start),
        func.sum(RetentionMonth.defected),
        func.sum(RetentionMonth.new),
        func.sum(RetentionMonth.won_back),
    ).group_by(key)
    if start is not None:  # every month that holds a day of the range
        query = query.where(RetentionMonth.month >= start.replace(day=1))
    if end is not None:
        query = query.where(RetentionMonth.month <= end)
    found = (await session.execute(query)).all()
    rows = [
        {
            by: value.strftime("%Y-%m") if isinstance(value, date) else value,
            **_retention_row(int(a), int(d), int(n), int(w)),
        }
        for value, a, d, n, w in found
    ]
    rows.sort(key=lambda row: str(row[by]))
    meta = select(func.max(RetentionMonth.as_of), func.max(RetentionMonth.defection_intervals))
    as_of, intervals = (await session.execute(meta)).one()
    return Table(
        (by, *RETENTION_COLUMNS),
        rows,
        {"as_of": as_of.isoformat() if as_of else None, "defection_intervals": intervals},
    )


def _money(value: Decimal | int) -> float:
    return float(round(Decimal(value), 2))


async def value_table(session: AsyncSession, start: date | None, end: date | None) -> Table:
    """One row per snapshot day: customers and CLV sums, in all and per value tier."""
    query = select(ValueDay).order_by(ValueDay.day, ValueDay.value_tier)
    if start is not None:
        query = query.where(ValueDay.day >= start)
    if end is not None:
        query = query.where(ValueDay.day <= end)
    snapshots = (await session.execute(query)).scalars().all()
    rows = []
    for day, group in itertools.groupby(snapshots, key=lambda snap: snap.day):
        tiers = {snap.value_tier: snap for snap in group}
        row: dict[str, Any] = {
            "day": day.isoformat(),
            "customers": sum(snap.customers for snap in tiers.values()),
            "clv_forecast": _money(sum((s.clv_forecast for s in tiers.values()), Decimal(0))),
            "clv_historic": _money(sum((s.clv_historic for s in tiers.values()), Decimal(0))),
        }
        for tier in TIERS:
            snap = tiers.get(tier)
            row[f"{tier}_customers"] = snap.customers if snap else 0
            row[f"{tier}_clv_forecast"] = _money(snap.clv_forecast) if snap else 0.0
        rows.append(row)
    return Table(VALUE_COLUMNS, rows, {})
