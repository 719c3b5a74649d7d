"""The call reports' rollup: the wrap-ups of past local days, summed once and kept.

A wrap-up is dated when it is recorded (``created_at`` = now), so a local day that has ended
(``settings.timezone``) never changes. ``ensure_rolled_up`` sums every ended day not rolled up
yet, a month at a time, into rows per local day (``report_offer_products``,
``report_offer_agents``, ``report_grades``; by lane and product, agent or grade kind), and
each month that has ended into rows for the whole month; ``report_call_rollups`` records the
first day not rolled up and the timezone the days were cut with (another timezone starts the
rollup again). A report then reads rollup rows for the days before that and the wrap-ups
themselves from then on (``call_reports``), so a wrap-up counts as soon as it is recorded.

Wrap-ups deleted later (a customer deleted, ON DELETE CASCADE) stay counted in the rollup:
the reports count wrap-ups as they were recorded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.customers.models import Interaction
from app.db import utcnow
from app.queues.names import in_lanes, lane_column
from app.reports import call_queries as queries
from app.reports.call_period import add_months, local_midnight
from app.reports.models import CallRollup, GradeRollup, OfferAgentRollup, OfferProductRollup

NAME = "calls"
# pg_try_advisory_xact_lock's key: one roller at a time across instances ("SPcallru").
LOCK_KEY = 0x5350_6361_6C6C_7275
OFFER_COUNTS = ("calls", "offered", "accepted", "not_offered")
GRADE_COUNTS = ("graded", "grade_sum", "satisfied", "dissatisfied")
# The lane of whole months' rows summed over every lane: never a queue's name (never empty).
EVERY_LANE = ""
TABLES = (OfferProductRollup, OfferAgentRollup, GradeRollup)
Rollup = type[OfferProductRollup] | type[OfferAgentRollup] | type[GradeRollup]


@dataclass(frozen=True, slots=True)
class RollupReport:
    """What one roll-up did: the days it summed (``first`` .. before ``rolled_to``)."""

    first: date
    rolled_to: date
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "first": self.first.isoformat(),
            "rolled_to": self.rolled_to.isoformat(),
            "seconds": round(self.seconds, 2),
        }


# The rollup's state: the timezone it was cut in, and the first local day not rolled up.
_STATE = select(CallRollup.timezone, CallRollup.rolled_to).where(CallRollup.name == NAME)


async def rolled_to(session: AsyncSession, timezone: str) -> date | None:
    """The first local day not rolled up, when the rollup was cut in ``timezone``."""
    row = (await session.execute(_STATE)).first()
    return row.rolled_to if row is not None and row.timezone == timezone else None


async def ensure_rolled_up(
    engine: AsyncEngine, timezone: str, now: datetime
) -> RollupReport | None:
    """Roll up every local day that has ended before ``now`` and is not rolled up yet.

    Cheap when there is nothing to do (one read). On PostgreSQL one instance at a time rolls
    up (an advisory lock; the others answer from what is rolled up and the wrap-ups); on
    SQLite writers queue. None when it had nothing to do or another instance was at it."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    async with engine.connect() as conn:
        state = (await conn.execute(_STATE)).first()
    if state is not None and state.timezone == timezone and state.rolled_to >= today:
        return None
    started = time.perf_counter()
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
                return None
        else:  # a write first: SQLite's write lock, taken before anything is read
            await conn.execute(
                update(CallRollup).where(CallRollup.name == NAME).values(updated_at=utcnow())
            )
        first = await _first_day(conn, timezone, today)
        day = first
        while day < today:
            stop = min(add_months(day, 1), today)
            await _roll_days(conn, ZoneInfo(timezone), day, stop)
            if stop == add_months(day, 1):
                await _roll_month(conn, add_months(day, 0))
            day = stop
        await conn.execute(delete(CallRollup).where(CallRollup.name == NAME))
        await conn.execute(
            insert(CallRollup).values(
                name=NAME, timezone=timezone, rolled_to=today, updated_at=utcnow()
            )
        )
        if conn.dialect.name == "postgresql" and (today - first).days > 31:
            # Statistics for a first roll-up's rows at once (autovacuum sees to the days').
            for table in TABLES:
                await conn.execute(text(f"ANALYZE {table.__tablename__}"))
    return RollupReport(first, today, time.perf_counter() - started) if first < today else None


async def _first_day(conn: AsyncConnection, timezone: str, today: date) -> date:
    """Where to go on from: the state's day; or, with no rollup in ``timezone`` (none yet, or
    cut in another timezone: its rows are removed), the local day of the first wrap-up."""
    state = (await conn.execute(_STATE)).first()
    if state is not None and state.timezone == timezone:
        rolled: date = state.rolled_to
        return rolled
    for table in TABLES:
        await conn.execute(delete(table))
    oldest: datetime | None = await conn.scalar(select(func.min(Interaction.created_at)))
    if oldest is None:
        return today
    first: date = oldest.astimezone(ZoneInfo(timezone)).date()
    return first


def _days_of(
    tz: ZoneInfo, first: date, stop: date
) -> tuple[ColumnElement[Any], datetime, datetime]:
    """A ``CASE`` giving a wrap-up its local day among ``first`` .. before ``stop``, and the
    range of instants those days cover."""
    days = [first + timedelta(days=n) for n in range((stop - first).days)]
    created = Interaction.created_at
    whens = [(created < local_midnight(d + timedelta(days=1), tz), literal(d, Date)) for d in days]
    return case(*whens), local_midnight(first, tz), local_midnight(stop, tz)


async def _roll_days(conn: AsyncConnection, tz: ZoneInfo, first: date, stop: date) -> None:
    """Rows per local day ``first`` .. before ``stop`` (days of one month) in each table."""
    day, since, until = _days_of(tz, first, stop)
    lane = lane_column(queries.queue_of_wrap_up())
    keys: queries.Keys = [("day", day), ("lane", lane)]
    dialect = conn.dialect.name
    offers: list[tuple[Rollup, queries.OfferBy]] = [
        (OfferProductRollup, "product"),
        (OfferAgentRollup, "agent"),
    ]
    for table, by in offers:
        counts = queries.offer_counts(dialect, by, since, until, None, keys).subquery()
        rows = select(
            counts.c.day, false(), counts.c.lane, counts.c.key, *(counts.c[c] for c in OFFER_COUNTS)
        )
        key = "sku" if by == "product" else "agent"
        columns = ["day", "whole_month", "lane", key, *OFFER_COUNTS]
        await conn.execute(insert(table).from_select(columns, rows))
    grade_keys: queries.Keys = [
        *keys,
        ("agent", Interaction.agent),
        ("kind", Interaction.satisfaction_kind),
    ]
    grades = queries.grade_counts(since, until, None, grade_keys).subquery()
    rows = select(
        grades.c.day,
        false(),
        grades.c.lane,
        grades.c.agent,
        grades.c.kind,
        *(grades.c[c] for c in ("graded", "total", "satisfied", "dissatisfied")),
    )
    columns = ["day", "whole_month", "lane", "agent", "kind", *GRADE_COUNTS]
    await conn.execute(insert(GradeRollup).from_select(columns, rows))


def _keys_of(table: Rollup) -> list[str]:
    """The columns a table's rows are kept per, beside the day and the lane."""
    if table is OfferProductRollup:
        return ["sku"]
    return ["agent"] if table is OfferAgentRollup else ["agent", "kind"]


async def _roll_month(conn: AsyncConnection, month: date) -> None:
    """Rows for the whole ``month`` (ended and rolled up by day) in each table: its days' sums
    per lane, and over every lane (``EVERY_LANE``: what an admin reads)."""
    for table in TABLES:
        keys = [table.__table__.c[k] for k in _keys_of(table)]
        counts = GRADE_COUNTS if table is GradeRollup else OFFER_COUNTS
        sums = [func.sum(table.__table__.c[c]) for c in counts]
        columns = ["day", "whole_month", "lane", *_keys_of(table), *counts]
        days = and_(not_(table.whole_month), table.day >= month, table.day < add_months(month, 1))
        for lane in (table.lane, literal(EVERY_LANE)):
            grouped = [*keys, table.lane] if lane is table.lane else keys
            rows = select(literal(month, Date), true(), lane, *keys, *sums).where(days)
            await conn.execute(insert(table).from_select(columns, rows.group_by(*grouped)))


def _parts(a: date, b: date) -> list[tuple[bool, date, date]]:
    """Local days ``[a, b)`` as runs of days and of whole months: (whole months?, from, to)."""
    whole_from = a if a.day == 1 else add_months(a, 1)
    whole_to = add_months(b, 0)
    if whole_from >= whole_to:
        return [(False, a, b)]
    return [(False, a, whole_from), (True, whole_from, whole_to), (False, whole_to, b)]


def spans(table: Rollup, ranges: Sequence[tuple[date, date]], every: bool) -> ColumnElement[bool]:
    """The rollup rows covering exactly the local days ``[a, b)`` of each range: whole
    months' rows where a month lies inside the range (those over ``EVERY_LANE`` when
    ``every``, else those per lane), days' rows for the rest. Every ``b`` must be rolled up
    (at most ``rolled_to``). Each part is one range of an index."""
    found: list[ColumnElement[bool]] = []
    for a, b in ranges:
        for whole, since, until in _parts(a, b):
            if since >= until:
                continue
            days = and_(table.day >= since, table.day < until)
            if not whole:
                found.append(and_(not_(table.whole_month), days))
            else:
                lane = table.lane == EVERY_LANE if every else table.lane != EVERY_LANE
                found.append(and_(table.whole_month, lane, days))
    return or_(*found) if found else false()


def offer_rows(
    by: queries.OfferBy, ranges: Sequence[tuple[date, date]], lanes: frozenset[str] | None
) -> Select[Any]:
    """Offers per product (sku) or agent (``key``) over the rolled-up days of ``ranges``."""
    table = OfferProductRollup if by == "product" else OfferAgentRollup
    key: ColumnElement[Any] = (
        OfferProductRollup.sku if by == "product" else OfferAgentRollup.agent
    ).expression
    stmt = (
        select(key.label("key"), *(func.sum(table.__table__.c[c]).label(c) for c in OFFER_COUNTS))
        .where(spans(table, ranges, lanes is None))
        .group_by(key)
    )
    return stmt if lanes is None else stmt.where(in_lanes(table.lane, lanes))


def grade_rows(
    month: ColumnElement[Any],
    by: str,
    ranges: Sequence[tuple[date, date]],
    lanes: frozenset[str] | None,
    kind: str | None,
) -> Select[Any]:
    """Grades per ``month`` (an expression of ``report_grades.day``) and lane or agent
    (``key``) over the rolled-up days of ``ranges``, with ``grade_counts``'s columns. (By
    queue the rows per lane are read, whoever asks.)"""
    key = GradeRollup.lane if by == "queue" else GradeRollup.agent
    stmt: Select[Any] = (
        select(
            month.label("month"),
            key.label("key"),
            func.sum(GradeRollup.graded).label("graded"),
            func.sum(GradeRollup.grade_sum).label("total"),
            func.sum(GradeRollup.satisfied).label("satisfied"),
            func.sum(GradeRollup.dissatisfied).label("dissatisfied"),
        )
        .where(spans(GradeRollup, ranges, every=lanes is None and by != "queue"))
        .group_by(month, key)
    )
    if kind is not None:
        stmt = stmt.where(GradeRollup.kind == kind)
    return stmt if lanes is None else stmt.where(in_lanes(GradeRollup.lane, lanes))
