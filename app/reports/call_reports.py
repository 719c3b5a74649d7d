"""The call reports, computed by the database from the wrap-ups (``interactions``).

- **Offers made in calls** (``offers_report``): per product or per agent, the offers recorded
  at wrap-up (``offer_outcomes``: accepted, declined or not offered). ``offered`` = accepted +
  declined; ``conversion_rate`` = accepted / offered; ``not_offered`` (a suggestion the agent
  did not make) is counted apart and is in neither. ``calls``: wrap-ups with at least one
  offer made (accepted or declined) in that row.
- **Satisfaction** (``satisfaction_report``): per local month and per queue (the call's,
  ``interactions.call_id`` -> ``calls.queue``; no queue or no call: ``unrouted``) or per agent,
  the graded wrap-ups: ``graded``, ``average`` (1..5), ``satisfied_share`` (4 or 5),
  ``dissatisfied_share`` (1 or 2) and ``change``: the average minus the previous calendar
  month's average for the same queue or agent (null when that month had no grade).

Both count each wrap-up (one per agent leg: a transferred call counts once per leg) on the
local day (``settings.timezone``) it was recorded. Each is one aggregate query whose rows are
the report's (a month, a product, an agent): nothing is read row by row in Python. Local
months are a ``CASE`` over UTC boundaries computed here, so SQLite and PostgreSQL bucket alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from app.calls.models import Call
from app.customers.models import Interaction, Product
from app.queues.names import in_lanes, lane_column

OfferBy = Literal["product", "agent"]
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
MADE = ("accepted", "declined")
DEFAULT_MONTHS = 12


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of ``day`` in ``tz``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``start`` .. ``end`` (inclusive) in ``tz``."""

    start: date
    end: date
    tz: ZoneInfo

    @classmethod
    def of(cls, start: date | None, end: date | None, timezone: str, now: datetime) -> Period:
        """The days asked for; by default up to today (at ``now``), from the first of the
        month eleven months before the end's (the last twelve months). Check the range first."""
        tz = ZoneInfo(timezone)
        today = now.astimezone(tz).date()
        last = end or max(today, start or today)
        first = start or add_months(last, 1 - DEFAULT_MONTHS)
        return cls(first, last, tz)

    def bounds(self) -> tuple[datetime, datetime]:
        """``[start, end]`` as UTC instants, the end exclusive (the next local midnight)."""
        after = date.fromordinal(self.end.toordinal() + 1)
        return local_midnight(self.start, self.tz), local_midnight(after, self.tz)

    def about(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _scoped(stmt: Select[Any], lanes: frozenset[str] | None) -> Select[Any]:
    """Only wrap-ups of calls in ``lanes`` (None: every one); ``stmt`` has joined ``calls``."""
    return stmt if lanes is None else stmt.where(in_lanes(Call.queue, lanes))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class _Offers:
    """``offer_outcomes`` as rows, one per offer: PostgreSQL's ``jsonb_array_elements`` (with
    its ordinality, from 1) or SQLite's ``json_each`` (whose ``key`` is the index, from 0)."""

    rows: TableValuedAlias
    position: ColumnElement[Any]
    first: int
    # The wrap-ups worth expanding: with at least one offer (two thirds of wrap-ups have none,
    # and skipping them is cheap). Only an array is expanded (PostgreSQL refuses anything else).
    listed: ColumnElement[bool]

    @classmethod
    def of(cls, dialect: str, name: str = "offer") -> _Offers:
        column = Interaction.offer_outcomes
        some = column != literal_column("'[]'")
        if dialect == "postgresql":
            # Not a filter on jsonb_typeof: the planner cannot estimate it, takes the year's
            # wrap-ups for a few hundred and picks a plan for those.
            array = case(
                (func.jsonb_typeof(column) == "array", column), else_=literal_column("'[]'")
            )
            rows = (
                func.jsonb_array_elements(array)
                .table_valued("value", with_ordinality="n", name=name)
                .render_derived()
            )
            return cls(rows, rows.c.n, 1, some)
        rows = func.json_each(column).table_valued("value", "key", name=name)
        return cls(rows, rows.c.key, 0, and_(some, func.json_type(column) == "array"))

    def field(self, key: str) -> ColumnElement[Any]:
        """``value ->> 'key'`` of an offer (both databases have the operator)."""
        value: ColumnElement[Any] = self.rows.c.value
        return value.op("->>")(literal_column(f"'{key}'"))


def offers_statement(
    dialect: str, period: Period, by: OfferBy, lanes: frozenset[str] | None
) -> Select[Any]:
    """The offers report's query: one row per product or agent (``key``) with its counts.

    No ``count(DISTINCT ...)`` (a sort of every offer, and no parallel plan): a wrap-up
    records one outcome per product, so a product's made offers are its calls; an agent's
    calls are counted once per wrap-up, on its first offer, when any offer was made.
    """
    offers = _Offers.of(dialect)
    outcome = offers.field("outcome")
    key: ColumnElement[Any]
    call: ColumnElement[bool]
    if by == "product":
        key = offers.field("sku")
        call = outcome.in_(MADE)
    else:
        key = Interaction.agent.expression
        made = _Offers.of(dialect, "made")
        any_made = (
            select(literal_column("1"))
            .select_from(made.rows)
            .where(made.field("outcome").in_(MADE))
        ).exists()
        call = and_(offers.position == offers.first, any_made)
    since, until = period.bounds()
    inner = (
        select(
            key.label("key"),
            outcome.label("outcome"),
            case((call, 1), else_=0).label("call"),
        )
        .select_from(Interaction)
        .join(offers.rows, true())
        .where(Interaction.created_at >= since, Interaction.created_at < until, offers.listed)
    )
    if lanes is not None:
        inner = _scoped(inner.outerjoin(Call, Call.id == Interaction.call_id), lanes)
    if by == "product":
        inner = inner.where(key.is_not(None))
    sub = inner.subquery()
    stmt = select(
        sub.c.key,
        func.sum(sub.c.call).label("calls"),
        func.count(case((sub.c.outcome.in_(MADE), 1))).label("offered"),
        func.count(case((sub.c.outcome == "accepted", 1))).label("accepted"),
        func.count(case((sub.c.outcome == "not_offered", 1))).label("not_offered"),
    ).group_by(sub.c.key)
    if by == "product":  # each product's name, looked up once its offers are counted
        counted = stmt.subquery()
        stmt = select(counted, Product.name.label("product")).outerjoin(
            Product, Product.sku == counted.c.key
        )
    return stmt


async def offers_report(
    session: AsyncSession, period: Period, by: OfferBy, lanes: frozenset[str] | None
) -> list[dict[str, Any]]:
    """One row per product (``sku``, ``product`` name) or per agent, most offered first."""
    stmt = offers_statement(session.get_bind().dialect.name, period, by, lanes)
    rows = [
        {
            **({"sku": r.key, "product": r.product} if by == "product" else {"agent": r.key}),
            "calls": int(r.calls),
            "offered": r.offered,
            "accepted": r.accepted,
            "conversion_rate": _share(r.accepted, r.offered),
            "not_offered": r.not_offered,
        }
        for r in await session.execute(stmt)
    ]
    rows.sort(key=lambda r: (-r["offered"], -r["not_offered"], str(r.get("sku") or r.get(by))))
    return rows


def _month_bucket(period: Period) -> tuple[ColumnElement[Any], list[str], datetime]:
    """A ``CASE`` giving each wrap-up the index of its local month (0: the month before the
    period's first, read only for ``change``; null: between that month and the start), the
    labels (``YYYY-MM``) by index, and the first instant to read."""
    months = [add_months(period.start, -1), add_months(period.start, 0)]
    while months[-1] < add_months(period.end, 0):
        months.append(add_months(months[-1], 1))
    since, until = period.bounds()
    created = Interaction.created_at
    whens: list[tuple[ColumnElement[bool], Any]] = [
        (created < local_midnight(months[1], period.tz), literal_column("0")),
        (created < since, literal_column("NULL")),
    ]
    for index, month in enumerate(months[1:], start=1):
        upper = min(until, local_midnight(add_months(month, 1), period.tz))
        whens.append((created < upper, literal_column(str(index))))
    labels = [f"{m.year:04d}-{m.month:02d}" for m in months]
    return case(*whens), labels, local_midnight(months[0], period.tz)


async def satisfaction_report(
    session: AsyncSession,
    period: Period,
    by: SatisfactionBy,
    lanes: frozenset[str] | None,
    kind: SatisfactionKind | None = None,
) -> list[dict[str, Any]]:
    """One row per local month and queue (or agent) with a grade, by month then name."""
    bucket, labels, first = _month_bucket(period)
    _, until = period.bounds()
    grade = Interaction.satisfaction
    key = lane_column(Call.queue) if by == "queue" else Interaction.agent
    inner = (
        select(bucket.label("month"), key.label("key"), grade.label("grade"))
        .select_from(Interaction)
        .outerjoin(Call, Call.id == Interaction.call_id)
        .where(grade.is_not(None), Interaction.created_at >= first, Interaction.created_at < until)
    )
    if kind is not None:
        inner = inner.where(Interaction.satisfaction_kind == kind)
    sub = _scoped(inner, lanes).subquery()
    stmt = select(
        sub.c.month,
        sub.c.key,
        func.count().label("graded"),
        func.sum(sub.c.grade).label("total"),
        func.count(case((sub.c.grade >= 4, 1))).label("satisfied"),
        func.count(case((sub.c.grade <= 2, 1))).label("dissatisfied"),
    ).group_by(sub.c.month, sub.c.key)
    averages: dict[tuple[int, str | None], float] = {}
    rows: list[tuple[int, dict[str, Any]]] = []
    for r in await session.execute(stmt.where(sub.c.month.is_not(None))):
        name = r.key
        average = int(r.total) / r.graded
        averages[(r.month, name)] = average
        if r.month == 0:
            continue  # the month before the period: only the first month's change
        rows.append(
            (
                r.month,
                {
                    "month": labels[r.month],
                    by: name,
                    "graded": r.graded,
                    "average": round(average, 2),
                    "satisfied_share": _share(r.satisfied, r.graded),
                    "dissatisfied_share": _share(r.dissatisfied, r.graded),
                },
            )
        )
    for month, row in rows:
        before = averages.get((month - 1, row[by]))
        row["change"] = None if before is None else round(averages[(month, row[by])] - before, 2)
    return [row for _, row in sorted(rows, key=lambda mr: (mr[0], str(mr[1][by])))]
