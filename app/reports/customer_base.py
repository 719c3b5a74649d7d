"""The customer-base reports: refreshed from the orders and ``customer_insights``, read as tables.

``refresh`` recomputes every (month, segment) row of retention and defection from the purchase
days and the segments (two reads, ``defection.month_figures``) and writes today's value snapshot
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
from sqlalchemy import (
    Integer,
    Select,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.customers.models import Order
from app.db import utcnow
from app.insights.history import STREAM_CHUNK, Ints
from app.insights.models import CustomerInsight
from app.insights.segments import SEGMENTS
from app.reports.customer_tables import UNSCORED
from app.reports.defection import PurchaseDays, month_date, month_figures
from app.reports.models import RetentionMonth, ValueDay
from app.settings import Settings

EPOCH = date(1970, 1, 1)
LOCKED = f"{RetentionMonth.__tablename__}, {ValueDay.__tablename__}"


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
            "month": month_date(month),
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
        if conn.dialect.name == "postgresql":
            # Two refreshes at once (a scheduled train, the command) take turns: the second
            # then deletes the first's rows instead of colliding with them. Readers go on.
            await conn.execute(text(f"LOCK TABLE {LOCKED} IN SHARE ROW EXCLUSIVE MODE"))
        await conn.execute(delete(RetentionMonth))
        if rows:
            await conn.execute(insert(RetentionMonth), rows)
        await _snapshot_value(conn, day, computed_at)
    return RefreshReport(
        as_of=as_of_day,
        customers=purchases.customers,
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
    the customer's segment from the last ``train`` as a code; and the segment names by code."""
    found = await conn.execute(select(CustomerInsight.segment).distinct())
    names = [*SEGMENTS, *sorted(set(found.scalars()) - set(SEGMENTS) - {UNSCORED}), UNSCORED]
    code = case({name: n for n, name in enumerate(names)}, value=CustomerInsight.segment)
    scored = await _int_rows(
        conn, select(cast(CustomerInsight.customer_id, Integer), cast(code, Integer)), 2
    )
    day = cast(_day_number(conn.dialect.name), Integer)
    bought = await _int_rows(
        conn,
        select(cast(Order.customer_id, Integer), day).where(
            Order.is_return.is_(False), Order.ordered_at < as_of
        ),
        2,
    )
    customer = bought[:, 0].copy()
    segment = np.full(len(customer), len(names) - 1, dtype=np.int64)  # unscored
    if len(scored):
        scored = scored[np.argsort(scored[:, 0])]
        at = np.minimum(np.searchsorted(scored[:, 0], customer), len(scored) - 1)
        known = scored[at, 0] == customer
        segment[known] = scored[at[known], 1]
    return PurchaseDays.of(customer, bought[:, 1].copy(), segment), names


async def _int_rows(conn: AsyncConnection, query: Select[*tuple[int, ...]], width: int) -> Ints:
    """The query's rows (``width`` integer columns, no nulls) as an (n, width) array.

    PostgreSQL sends them with ``COPY ... TO STDOUT (FORMAT binary)``, read straight into
    NumPy (a million customers' orders in about a second, against eight through row objects);
    other databases stream rows.
    """
    if conn.dialect.name != "postgresql":
        parts: list[Ints] = []
        async for part in (await conn.stream(query)).partitions(STREAM_CHUNK):
            flat = itertools.chain.from_iterable(part)
            parts.append(np.fromiter(flat, dtype=np.int64, count=width * len(part)))
        return np.concatenate(parts).reshape(-1, width) if parts else np.zeros((0, width), np.int64)
    compiled = query.compile(dialect=conn.dialect)
    args = [compiled.params[name] for name in compiled.positiontup or ()]
    data = bytearray()

    async def take(chunk: bytes) -> None:
        data.extend(chunk)

    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_from_query(str(compiled), *args, output=take, format="binary")
    return _binary_int4_rows(data, width)


# PostgreSQL's binary COPY: an 11-byte signature, flags and extension length (19 bytes), then
# per row a field count (int16) and per field a length (int32) and the value; -1 (int16) ends.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = 19


def _binary_int4_rows(data: bytes | bytearray, width: int) -> Ints:
    """Rows of ``width`` non-null int4 fields from a binary COPY as an (n, width) array."""
    if not data.startswith(COPY_SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY")
    fields = [("count", ">i2")]
    for n in range(width):
        fields += [(f"len{n}", ">i4"), (f"v{n}", ">i4")]
    row = np.dtype(fields)
    count = (len(data) - COPY_HEADER - 2) // row.itemsize
    rows = np.frombuffer(data, dtype=row, count=count, offset=COPY_HEADER)  # no copy
    lengths = [rows[f"len{n}"] for n in range(width)]
    if len(rows) and not ((rows["count"] == width).all() and all((x == 4).all() for x in lengths)):
        raise ValueError("expected non-null int4 columns only")
    return np.stack([rows[f"v{n}"].astype(np.int64) for n in range(width)], axis=1)


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
