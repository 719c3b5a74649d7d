"""The whole profile in one PostgreSQL statement: one round trip at a call's first sight.

One row of four ``json`` columns: the identity rows (one per phone), the recent order lines,
the next needs and the recent touch points. Each is the repository's own statement for that
part (same SQL, same indexes), aggregated as ``json_agg(json_build_array(…) ORDER BY …)`` in
that statement's order; the connection's JSON codec decodes it (the dialect's deserializer,
as for jsonb columns). Values that JSON would change travel as text and are rebuilt as the
separate queries give them: timestamps as UTC without zone → aware UTC ``datetime``, numeric
→ ``Decimal``, float8 → ``float``. (``array_agg`` of records keeps the types natively but
asyncpg decodes anonymous records about twice as slowly.) SQLite keeps the four queries.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from app.customers import repository as repo
from app.insights.models import NextNeed
from app.raw_statements import RawStatement, raw_rows


class ProfileRows(NamedTuple):
    """What ``service`` builds a profile from; rows are read by column name."""

    identity: Sequence[Any]  # empty: no such customer
    order_lines: Sequence[Any]
    next_needs: Sequence[Any]
    interactions: Sequence[Any]


def _utc(value: str) -> datetime:
    # Parsing the offset gives ``UTC`` itself, and is ~8x cheaper than ``.replace(tzinfo=UTC)``.
    return datetime.fromisoformat(value + "+00:00")


_UTC: Any = literal_column("'UTC'")


def _as_json(column: Any) -> tuple[Any, Callable[[Any], Any] | None]:
    """The column as a JSON value, and what turns that value back into the driver's."""
    affinity = column.type._type_affinity
    if affinity is DateTime:
        return func.timezone(_UTC, column), _utc
    if affinity is Float:
        return cast(column, Text), float
    if affinity is Numeric:
        return cast(column, Text), Decimal if column.type.asdecimal else float
    if affinity in (Integer, String, Boolean, JSON):
        return column, None
    raise TypeError(f"{column.key}: no exact JSON form for {column.type!r}")


class _Part(NamedTuple):
    column: Any  # (SELECT json_agg(…)) over the part's statement
    make: Callable[[Any], Any]  # a row type's _make
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]


def _part(stmt: Any, order: Callable[[Any], list[Any]], *extra: Any) -> _Part:
    """``(SELECT json_agg(json_build_array(<stmt's columns>) ORDER BY <order>) FROM (<stmt>))``.

    ``order`` gets the subquery's columns; ``extra`` columns are selected only to order by
    (they are not in the rows). NULL when ``stmt`` finds nothing.
    """
    keys = list(stmt.selected_columns.keys())
    sub = stmt.add_columns(*extra).subquery()
    values, converters = [], []
    for i, key in enumerate(keys):
        value, convert = _as_json(sub.c[key])
        values.append(value)
        if convert is not None:
            converters.append((i, convert))
    ordered = aggregate_order_by(func.json_build_array(*values), *order(sub.c))
    column = select(func.json_agg(ordered, type_=NullType())).scalar_subquery()
    row_type: Any = namedtuple("Row", keys)  # type: ignore[misc]
    return _Part(column, row_type._make, tuple(converters))


_IDENTITY = _part(repo._IDENTITY, lambda c: [c.phone_id])
_ORDER_LINES = _part(
    repo._RECENT_ORDER_LINES, lambda c: [c.ordered_at.desc(), c.id.desc(), c.line_no]
)
_NEXT_NEEDS = _part(repo._NEXT_NEEDS, lambda c: [c.rank], NextNeed.rank.label("rank"))
_INTERACTIONS = _part(repo._RECENT_INTERACTIONS, lambda c: [c.created_at.desc(), c.id.desc()])
_PROFILE = select(
    _IDENTITY.column.label("identity"),
    _ORDER_LINES.column.label("order_lines"),
    _NEXT_NEEDS.column.label("next_needs"),
    _INTERACTIONS.column.label("interactions"),
)
_RAW_PROFILE = RawStatement(_PROFILE)


def _rows(part: _Part, items: list[list[Any]] | None) -> list[Any]:
    if not items:
        return []
    make, converters = part.make, part.converters
    for values in items:
        for i, convert in converters:
            if values[i] is not None:
                values[i] = convert(values[i])
    return [make(values) for values in items]


async def profile_rows(session: AsyncSession, customer_id: int) -> ProfileRows | None:
    """The four parts of a profile in one round trip, or None (SQLite: run the four queries)."""
    found = await raw_rows(session, _RAW_PROFILE, {"customer_id": customer_id})
    if found is None:
        return None
    row = found[0]
    return ProfileRows(
        _rows(_IDENTITY, row.identity),
        _rows(_ORDER_LINES, row.order_lines),
        _rows(_NEXT_NEEDS, row.next_needs),
        _rows(_INTERACTIONS, row.interactions),
    )
