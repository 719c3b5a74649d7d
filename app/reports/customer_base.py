"""The customer-base reports: refreshed from the orders and ``customer_insights``, read as tables.

``refresh`` recomputes every (month, segment) row of retention and defection from the purchase
days (one streaming query, ``defection.month_figures``) and writes today's value snapshot
(sums over ``customer_insights`` per value tier), in one transaction: a reader sees the old
rows or the new ones. ``screenpop train`` calls it at the end of every run (full and
``--since``); ``screenpop reports refresh`` runs it alone. Rules: docs/reports.md.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Integer, delete, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.customers.models import Order
from app.db import utcnow
from app.insights.history import STREAM_CHUNK, Ints
from app.insights.models import CustomerInsight
from app.insights.segments import SEGMENTS
from app.reports.customer_tables import UNSCORED
from app.reports.defection import PurchaseDays, first_day_of, month_figures
from app.reports.models import RetentionMonth, ValueDay
from app.settings import Settings

EPOCH = date(1970, 1, 1)


def _setting_default(name: str) -> Any:
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class RefreshOptions:
    """``SCREENPOP_DEFECTION_INTERVALS`` and the timezone whose calendar names the value day."""

    defection_intervals: float = field(default=_setting_default("defection_intervals"))
    timezone: str = field(default=_setting_default("timezone"))

    @classmethod
    def of(cls, settings: Settings) -> RefreshOptions:
        return cls(settings.defection_intervals, settings.timezone)


@dataclass(frozen=True)
class RefreshReport:
    as_of: date
    customers: int  # customers with a purchase
    months: int
    rows: int
    value_day: date
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "months": self.months,
            "retention_rows": self.rows,
            "value_day": self.value_day.isoformat(),
            "seconds": round(self.seconds, 2),
        }


async def refresh(
    engine: AsyncEngine,
    options: RefreshOptions,
    *,
    as_of: datetime | None = None,
    today: date | None = None,
) -> RefreshReport:
    """Recompute retention from purchases before ``as_of`` (default: just after the newest
    order, as ``train``) and write ``today``'s value snapshot (default: the date in the
    options' timezone)."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        if as_of is None:
            as_of = await _newest_order(conn)
        purchases, names = await _purchase_days(conn, as_of)
    last_day = (as_of.astimezone(UTC).date() - EPOCH).days
    figures = await asyncio.to_thread(
        month_figures, purchases, len(names), last_day, options.defection_intervals
    )
    computed_at = utcnow()
    as_of_day = EPOCH + timedelta(days=last_day)
    rows = [
        {
            "month": EPOCH + timedelta(days=int(first_day_of(np.asarray([month]))[0])),
            "segment": names[segment],
            "active_start": active,
            "defected": defected,
            "new": new,
            "won_back": won_back,
            "as_of": as_of_day,
            "defection_intervals": options.defection_intervals,
            "computed_at": computed_at,
        }
        for segment, month, active, defected, new, won_back in figures.rows()
    ]
    day = today or datetime.now(ZoneInfo(options.timezone)).date()
    async with engine.begin() as conn:
        await conn.execute(delete(RetentionMonth))
        if rows:
            await conn.execute(insert(RetentionMonth), rows)
        await _snapshot_value(conn, day, computed_at)
    return RefreshReport(
        as_of=as_of_day,
        customers=len(np.unique(purchases.customer)),
        months=figures.active_start.shape[1],
        rows=len(rows),
        value_day=day,
        seconds=time.perf_counter() - started,
    )


async def _newest_order(conn: AsyncConnection) -> datetime:
    """Just after the newest order (the data's "as of", as ``train``); now without orders."""
    newest: datetime | None = (await conn.execute(select(func.max(Order.ordered_at)))).scalar()
    if newest is None:
        return utcnow()
    return (newest if newest.tzinfo else newest.replace(tzinfo=UTC)) + timedelta(minutes=1)


def _day_number(dialect: str) -> Any:
    """The order's UTC day as days since 1970-01-01, computed by the database."""
    if dialect == "postgresql":
        sql = "((orders.ordered_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"
    else:  # SQLite keeps UTC text: strftime('%s') reads it as UTC
        sql = "(CAST(strftime('%s', orders.ordered_at) AS INTEGER) / 86400)"
    return literal_column(sql, Integer)


async def _purchase_days(conn: AsyncConnection, as_of: datetime) -> tuple[PurchaseDays, list[str]]:
    """Purchase days before ``as_of`` (returns and cancellations are not purchases), each with
    the customer's segment from the last ``train``; and the segment names by code."""
    names = [*SEGMENTS, UNSCORED]
    codes = {name: n for n, name in enumerate(names)}
    scored: list[Ints] = []
    segment_codes: list[int] = []
    query = select(CustomerInsight.customer_id, CustomerInsight.segment)
    async for part in (await conn.stream(query)).partitions(STREAM_CHUNK):
        scored.append(np.fromiter((row[0] for row in part), dtype=np.int64, count=len(part)))
        for _, segment in part:
            if segment not in codes:
                codes[segment] = len(names)
                names.append(segment)
            segment_codes.append(codes[segment])
    ids = np.concatenate(scored) if scored else np.zeros(0, np.int64)
    seg = np.asarray(segment_codes, dtype=np.int64)
    order = np.argsort(ids)
    ids, seg = ids[order], seg[order]

    pairs: list[Ints] = []
    day = _day_number(conn.dialect.name)
    query2 = select(Order.customer_id, day).where(
        Order.is_return.is_(False), Order.ordered_at < as_of
    )
    async for part2 in (await conn.stream(query2)).partitions(STREAM_CHUNK):
        flat = itertools.chain.from_iterable(part2)
        pairs.append(np.fromiter(flat, dtype=np.int64, count=2 * len(part2)))
    both = np.concatenate(pairs).reshape(-1, 2) if pairs else np.zeros((0, 2), np.int64)
    customer, days = both[:, 0].copy(), both[:, 1].copy()
    at = np.minimum(np.searchsorted(ids, customer), max(len(ids) - 1, 0))
    found = (ids[at] == customer) if len(ids) else np.zeros(len(customer), np.bool_)
    customer_seg = np.where(found, seg[at] if len(ids) else 0, codes[UNSCORED])
    return PurchaseDays.of(customer, days, customer_seg.astype(np.int64)), names


async def _snapshot_value(conn: AsyncConnection, day: date, computed_at: datetime) -> None:
    """Replace ``day``'s value rows with the sums over ``customer_insights`` per tier."""
    query = select(
        CustomerInsight.value_tier,
        func.count(),
        func.coalesce(func.sum(CustomerInsight.clv_forecast), 0),
        func.coalesce(func.sum(CustomerInsight.clv_historic), 0),
    ).group_by(CustomerInsight.value_tier)
    sums = (await conn.execute(query)).all()
    await conn.execute(delete(ValueDay).where(ValueDay.day == day))
    if sums:
        rows = [
            {
                "day": day,
                "value_tier": tier,
                "customers": int(count),
                "clv_forecast": Decimal(str(forecast)),
                "clv_historic": Decimal(str(historic)),
                "computed_at": computed_at,
            }
            for tier, count, forecast, historic in sums
        ]
        await conn.execute(insert(ValueDay), rows)
