"""The call reports' aggregate queries over the wrap-ups themselves (``interactions``).

One query per report family, grouped by the caller's keys: the live part of a report (the days
not rolled up yet) groups by product, agent, queue or month; the rollup (``call_rollup``) by
local day, lane and product, agent or grade kind. The queue is the wrap-up's own
(``queue_of_wrap_up``: ``interactions.queue``, the call's when it was wrapped up; null is the
``unrouted`` lane), so the reports do not join ``calls``: a call is looked up only for a
touch point written without a queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    case,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.sql.selectable import TableValuedAlias

from app.calls.models import Call
from app.customers.models import Interaction
from app.queues.names import in_lanes

OfferBy = Literal["product", "agent"]
MADE = ("accepted", "declined")
Keys = Sequence[tuple[str, SQLColumnExpression[Any]]]


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


def queue_of_wrap_up() -> ColumnElement[str | None]:
    """A wrap-up's queue: its own (``POST /api/calls/{id}/wrapup`` records the call's, the
    migration filled it for older ones), else its call's, looked up only for a touch point
    written without one; null is the ``unrouted`` lane."""
    call = select(Call.queue).where(Call.id == Interaction.call_id).scalar_subquery()
    return func.coalesce(Interaction.queue, call)


def recorded(since: datetime, until: datetime) -> ColumnElement[bool]:
    """Wrap-ups recorded in ``[since, until)`` (read by the index on ``created_at``)."""
    return and_(Interaction.created_at >= since, Interaction.created_at < until)


def offer_counts(
    dialect: str,
    by: OfferBy,
    since: datetime,
    until: datetime,
    lanes: frozenset[str] | None,
    keys: Keys = (),
) -> Select[Any]:
    """Offers made in wrap-ups recorded in ``[since, until)`` of ``lanes`` (None: all), per
    ``keys`` and ``key`` (the product's sku or the agent): ``calls``, ``offered``,
    ``accepted``, ``not_offered``.

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
    columns: list[ColumnElement[Any]] = [column.label(name) for name, column in keys]
    columns += [key.label("key"), outcome.label("outcome"), case((call, 1), else_=0).label("call")]
    inner = (
        select(*columns)
        .select_from(Interaction)
        .join(offers.rows, true())
        .where(recorded(since, until), offers.listed)
    )
    if lanes is not None:
        inner = inner.where(in_lanes(queue_of_wrap_up(), lanes))
    if by == "product":
        inner = inner.where(key.is_not(None))
    sub = inner.subquery()
    grouped = [sub.c[name] for name, _ in keys] + [sub.c.key]
    return select(
        *grouped,
        func.sum(sub.c.call).label("calls"),
        func.count(case((sub.c.outcome.in_(MADE), 1))).label("offered"),
        func.count(case((sub.c.outcome == "accepted", 1))).label("accepted"),
        func.count(case((sub.c.outcome == "not_offered", 1))).label("not_offered"),
    ).group_by(*grouped)


def grade_counts(
    since: datetime,
    until: datetime,
    lanes: frozenset[str] | None,
    keys: Keys,
    kind: str | None = None,
) -> Select[Any]:
    """Graded wrap-ups recorded in ``[since, until)`` of ``lanes`` (None: all), of ``kind``
    (None: every kind), per ``keys``: ``graded``, ``total`` (the sum of the grades),
    ``satisfied`` (4 or 5) and ``dissatisfied`` (1 or 2)."""
    grade = Interaction.satisfaction
    columns: list[ColumnElement[Any]] = [column.label(name) for name, column in keys]
    inner = select(*columns, grade.label("grade")).where(grade.is_not(None), recorded(since, until))
    if kind is not None:
        inner = inner.where(Interaction.satisfaction_kind == kind)
    if lanes is not None:
        inner = inner.where(in_lanes(queue_of_wrap_up(), lanes))
    sub = inner.subquery()
    grouped = [sub.c[name] for name, _ in keys]
    return select(
        *grouped,
        func.count().label("graded"),
        func.sum(sub.c.grade).label("total"),
        func.count(case((sub.c.grade >= 4, 1))).label("satisfied"),
        func.count(case((sub.c.grade <= 2, 1))).label("dissatisfied"),
    ).group_by(*grouped)
