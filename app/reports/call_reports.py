"""The call reports, computed by the database from the wrap-ups (``interactions``).

- **Offers made in calls** (``offers_report``): per product or per agent, the offers recorded
  at wrap-up (``offer_outcomes``: accepted, declined or not offered). ``offered`` = accepted +
  declined; ``conversion_rate`` = accepted / offered; ``not_offered`` (a suggestion the agent
  did not make) is counted apart and is in neither. ``calls``: wrap-ups with at least one
  offer made (accepted or declined) in that row.
- **Satisfaction** (``satisfaction_report``): per local month and per queue (the wrap-up's
  ``queue``, the call's when it was wrapped up; none: ``unrouted``) or per agent, the graded
  wrap-ups: ``graded``, ``average`` (1..5), ``satisfied_share`` (4 or 5),
  ``dissatisfied_share`` (1 or 2) and ``change``: the average minus the previous calendar
  month's average for the same queue or agent (null when that month had no grade).

Both count each wrap-up (one per agent leg: a transferred call counts once per leg) on the
local day (``settings.timezone``) it was recorded. Each is one aggregate query whose rows are
the report's (a month, a product, an agent): the rollup's rows for the days rolled up
(``call_rollup``, given as ``rolled_to``) and the wrap-ups themselves from then on, summed
together; nothing is read row by row in Python. Local months are a ``CASE`` over boundaries
computed here, so SQLite and PostgreSQL bucket alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    case,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Interaction, Product
from app.queues.names import lane_column
from app.reports import call_queries as queries
from app.reports import call_rollup as rollup
from app.reports.call_period import Period, add_months, local_midnight
from app.reports.call_queries import OfferBy
from app.reports.models import GradeRollup

__all__ = ["OfferBy", "Period", "offers_report", "satisfaction_report"]

SatisfactionBy = Literal["queue", "agent"]
SatisfactionKind = Literal["caller", "agent"]

OFFER_COLUMNS: dict[OfferBy, tuple[str, ...]] = {
    "product": ("sku", "product", "calls", "offered", "accepted", "conversion_rate", "not_offered"),
    "agent": ("agent", "calls", "offered", "accepted", "conversion_rate", "not_offered"),
}
SATISFACTION_COLUMNS: dict[SatisfactionBy, tuple[str, ...]] = {
    by: ("month", by, "graded", "average", "satisfied_share", "dissatisfied_share", "change")
    for by in ("queue", "agent")
}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def _execute(session: AsyncSession, stmt: Select[Any], rolled_to: date | None) -> Any:
    """Run a report's query; on PostgreSQL with a rollup, without parallel workers: a few
    thousand rolled-up rows and today's wrap-ups take less time than starting them."""
    if rolled_to is not None and session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    return await session.execute(stmt)


def _together(parts: list[Select[Any]]) -> Any:
    """The parts' rows as one subquery (a rolled-up part and a live part, or either)."""
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


def offers_statement(
    dialect: str,
    period: Period,
    by: OfferBy,
    lanes: frozenset[str] | None,
    rolled_to: date | None = None,
) -> Select[Any]:
    """The offers report's query: one row per product or agent (``key``) with its counts,
    from the rollup before ``rolled_to`` (None: nothing rolled up) and the wrap-ups after."""
    cut = min(max(rolled_to or period.start, period.start), period.after)
    since, until = period.bounds()
    parts = []
    if cut < period.after:
        live = max(since, local_midnight(cut, period.tz))
        parts.append(queries.offer_counts(dialect, by, live, until, lanes))
    if cut > period.start:
        parts.append(rollup.offer_rows(by, [(period.start, cut)], lanes))
    sub = _together(parts)
    stmt = select(sub.c.key, *(func.sum(sub.c[c]).label(c) for c in rollup.OFFER_COUNTS)).group_by(
        sub.c.key
    )
    if by == "product":  # each product's name, looked up once its offers are counted
        counted = stmt.subquery()
        stmt = select(counted, Product.name.label("product")).outerjoin(
            Product, Product.sku == counted.c.key
        )
    return stmt


async def offers_report(
    session: AsyncSession,
    period: Period,
    by: OfferBy,
    lanes: frozenset[str] | None,
    rolled_to: date | None = None,
) -> list[dict[str, Any]]:
    """One row per product (``sku``, ``product`` name) or per agent, most offered first."""
    stmt = offers_statement(session.get_bind().dialect.name, period, by, lanes, rolled_to)
    rows = []
    for r in await _execute(session, stmt, rolled_to):
        offered, accepted = int(r.offered), int(r.accepted)
        rows.append(
            {
                **({"sku": r.key, "product": r.product} if by == "product" else {"agent": r.key}),
                "calls": int(r.calls),
                "offered": offered,
                "accepted": accepted,
                "conversion_rate": _share(accepted, offered),
                "not_offered": int(r.not_offered),
            }
        )
    rows.sort(key=lambda r: (-r["offered"], -r["not_offered"], str(r.get("sku") or r.get(by))))
    return rows


def _months(period: Period) -> list[date]:
    """The first days of the month before the period's first and of each of its months."""
    months = [add_months(period.start, -1), add_months(period.start, 0)]
    while months[-1] < add_months(period.end, 0):
        months.append(add_months(months[-1], 1))
    return months


def _month_bucket(
    period: Period, column: SQLColumnExpression[Any], at: Callable[[date], Any]
) -> ColumnElement[Any]:
    """A ``CASE`` giving each ``column`` value (compared with ``at(local day)``) the index of
    its local month (0: the month before the period's first, read only for ``change``; null:
    between that month and the start)."""
    months = _months(period)
    whens: list[tuple[ColumnElement[bool], Any]] = [
        (column < at(months[1]), literal_column("0")),
        (column < at(period.start), literal_column("NULL")),
    ]
    for index, month in enumerate(months[1:], start=1):
        whens.append(
            (column < at(min(period.after, add_months(month, 1))), literal_column(str(index)))
        )
    return case(*whens)


def satisfaction_statement(
    period: Period,
    by: SatisfactionBy,
    lanes: frozenset[str] | None,
    kind: SatisfactionKind | None,
    rolled_to: date | None,
) -> Select[Any]:
    """Per month index and queue or agent (``key``): graded, total, satisfied, dissatisfied."""
    months = _months(period)
    ranges = [(months[0], months[1]), (period.start, period.after)]
    cut = min(max(rolled_to or months[0], months[0]), period.after)
    _, until = period.bounds()
    created = _month_bucket(period, Interaction.created_at, lambda d: local_midnight(d, period.tz))
    key: SQLColumnExpression[Any] = (
        lane_column(queries.queue_of_wrap_up()) if by == "queue" else Interaction.agent
    )
    keys: queries.Keys = [("month", created), ("key", key)]
    parts = []
    if cut < period.after:
        since = local_midnight(cut, period.tz)
        parts.append(queries.grade_counts(since, until, lanes, keys, kind))
    rolled = [(a, min(b, cut)) for a, b in ranges if a < min(b, cut)]
    if rolled:
        day = _month_bucket(period, GradeRollup.day, lambda d: literal(d, GradeRollup.day.type))
        parts.append(rollup.grade_rows(day, by, rolled, lanes, kind))
    sub = _together(parts)
    sums = ("graded", "total", "satisfied", "dissatisfied")
    return (
        select(sub.c.month, sub.c.key, *(func.sum(sub.c[c]).label(c) for c in sums))
        .where(sub.c.month.is_not(None))
        .group_by(sub.c.month, sub.c.key)
    )


async def satisfaction_report(
    session: AsyncSession,
    period: Period,
    by: SatisfactionBy,
    lanes: frozenset[str] | None,
    kind: SatisfactionKind | None = None,
    rolled_to: date | None = None,
) -> list[dict[str, Any]]:
    """One row per local month and queue (or agent) with a grade, by month then name."""
    labels = [f"{m.year:04d}-{m.month:02d}" for m in _months(period)]
    averages: dict[tuple[int, str | None], float] = {}
    rows: list[tuple[int, dict[str, Any]]] = []
    stmt = satisfaction_statement(period, by, lanes, kind, rolled_to)
    for r in await _execute(session, stmt, rolled_to):
        month, graded = int(r.month), int(r.graded)
        average = int(r.total) / graded
        averages[(month, r.key)] = average
        if month == 0:
            continue  # the month before the period: only the first month's change
        row = {
            "month": labels[month],
            by: r.key,
            "graded": graded,
            "average": round(average, 2),
            "satisfied_share": _share(int(r.satisfied), graded),
            "dissatisfied_share": _share(int(r.dissatisfied), graded),
        }
        rows.append((month, row))
    for month, row in rows:
        before = averages.get((month - 1, row[by]))
        row["change"] = None if before is None else round(averages[(month, row[by])] - before, 2)
    return [row for _, row in sorted(rows, key=lambda mr: (mr[0], str(mr[1][by])))]
