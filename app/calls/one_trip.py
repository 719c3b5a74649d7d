"""PostgreSQL's event path in two statements: one read, one atomic write (no BEGIN/COMMIT).

Every function takes the asyncpg connection to run on (``app.calls.pg_store``).

``read``: the call's row and whether the event is already journaled, in one statement (with
``lock``, the row is locked until the caller's transaction ends).
``write``: the call inserted or updated (versioned, unless the event is journaled meanwhile),
the journal row, the pop deliveries and the profile-view audit rows, as data-modifying CTEs of
ONE autocommitted statement, so all or none of it lands::

    WITH c AS (UPDATE calls SET ... WHERE id = :id AND version = :read_version
                 AND NOT EXISTS (journal row of this event) RETURNING id),
         j AS (INSERT INTO call_events SELECT ... WHERE EXISTS (SELECT FROM c)
                 ON CONFLICT DO NOTHING RETURNING id),
         d AS (INSERT INTO pop_deliveries SELECT ... WHERE EXISTS (SELECT FROM j) ...),
         v AS (INSERT INTO profile_views SELECT ... WHERE EXISTS (SELECT FROM j) ...)
    SELECT (SELECT id FROM j), ...

The write also returns the call's row as written, in ``read``'s shape: the call's next event
in this process plans on it instead of reading (``app.calls.call_rows``).

No journal id back means nothing was written: another event for the call got in between
(optimistic concurrency: the caller reads again and re-plans), or this event is a duplicate
(the next read says so). A new call is an ``INSERT ... ON CONFLICT DO NOTHING`` in ``c``.
Statements are built once per shape (columns set, pushes, audit rows) and run through
``RawStatement`` (compiled once, SQLAlchemy's bind and result processing, asyncpg's prepared
statement cache).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson
from sqlalchemy import (
    Table,
    Text,
    bindparam,
    exists,
    func,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from app.calls.repository import CALLS, DELIVERIES, EVENTS, UPDATE_POP, upsert_deliveries
from app.customers.models import ProfileView
from app.raw_statements import RawStatement

VIEWS = cast(Table, ProfileView.__table__)

JOURNAL_COLUMNS = tuple(c.name for c in EVENTS.c if c.name != "id")
PUSH_COLUMNS = (
    "call_id",
    "username",
    "version",
    "pushed_at",
    "delivered_at",
    "seen_at",
)
VIEW_COLUMNS = ("username", "customer_id", "call_id", "reason", "viewed_at")


def _journaled() -> Any:
    """EXISTS: this event (source, event_id) is in the journal."""
    return exists().where(
        EVENTS.c.source == bindparam("j_source", type_=EVENTS.c.source.type),
        EVENTS.c.event_id == bindparam("j_event_id", type_=EVENTS.c.event_id.type),
    )


def _row_columns(table: Any) -> list[Any]:
    """The call's columns as ``read`` returns them: the pop document as text (hundreds of
    small objects once decoded; most events only need the two fields the calls channel
    carries, read here in SQL). ``table`` is ``calls`` or a CTE returning from it."""
    pop = table.c.pop
    return [
        *[c for c in table.c if c.name != "pop"],
        sql_cast(pop, Text).label("pop_text"),
        pop["customer"]["name"].as_string().label("pop_customer_name"),
        pop["insights"]["value_tier"].as_string().label("pop_value_tier"),
    ]


def _one_row() -> Any:
    """A one-row subquery to outer-join onto: the answer has a row even with no call row."""
    return select(literal(1).label("one")).subquery("one")


def _read(lock: bool) -> Any:
    call = select(*_row_columns(CALLS)).where(CALLS.c.id == bindparam("call_id"))
    if lock:
        call = call.with_for_update()
    lateral = call.lateral("call")
    return select(_journaled().label("is_duplicate"), lateral).select_from(
        _one_row().outerjoin(lateral, true())
    )


_READ = {False: RawStatement(_read(False)), True: RawStatement(_read(True))}
_JOURNAL = RawStatement(postgresql.insert(EVENTS).returning(EVENTS.c.id))
_UPDATE_POP = RawStatement(UPDATE_POP)


def with_pop(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its ``pop`` document decoded (a row from ``read`` carries it as text)."""
    if "pop" not in row:
        text = row.pop("pop_text", None)
        row["pop"] = orjson.loads(text) if text is not None else None
    return row


async def read(
    conn: Any, dialect: Dialect, call_id: str, source: str, event_id: str, *, lock: bool = False
) -> tuple[bool, dict[str, Any] | None]:
    """(the event is already journaled, the call's row or None) — one statement.

    The row has no ``pop``: ``pop_text`` holds it undecoded (``with_pop`` decodes it), and
    ``pop_customer_name`` / ``pop_value_tier`` the fields ``app.calls.pop`` reads from it."""
    compiled = _READ[lock].prepare(dialect)
    assert compiled is not None
    rows = await compiled.dicts(
        conn, {"call_id": call_id, "j_source": source, "j_event_id": event_id}
    )
    row = rows[0]
    duplicate = bool(row.pop("is_duplicate"))
    return duplicate, (row if row["id"] is not None else None)


def _rows_of(table: Table, columns: tuple[str, ...], prefix: str, count: int, after: Any) -> Any:
    """``count`` rows of bind parameters, each only when ``after`` (a CTE) returned a row."""
    selects = [
        select(
            *[bindparam(f"{prefix}{i}_{name}", type_=table.c[name].type) for name in columns]
        ).where(exists(select(after.c.id)))
        for i in range(count)
    ]
    return selects[0] if count == 1 else union_all(*selects)


def _write(new: bool, keys: tuple[str, ...], pushes: int, views: int) -> Any:
    values = {k: bindparam(f"c_{k}", type_=CALLS.c[k].type) for k in keys}
    if new:
        source = select(*values.values()).where(~_journaled())
        call: Any = (
            postgresql.insert(CALLS)
            .from_select(list(keys), source)
            .on_conflict_do_nothing(index_elements=["id"])
        )
    else:
        call = (
            update(CALLS)
            .where(
                CALLS.c.id == bindparam("where_id"),
                CALLS.c.version == bindparam("where_version"),
                ~_journaled(),
            )
            .values(values)
        )
    c = call.returning(*_row_columns(CALLS)).cte("c")
    journal_source = select(
        *[
            (
                bindparam("j_source", type_=EVENTS.c.source.type)
                if name == "source"
                else bindparam("j_event_id", type_=EVENTS.c.event_id.type)
                if name == "event_id"
                else bindparam(f"j_{name}", type_=EVENTS.c[name].type)
            )
            for name in JOURNAL_COLUMNS
        ]
    ).where(exists(select(c.c.id)))
    j = (
        postgresql.insert(EVENTS)
        .from_select(list(JOURNAL_COLUMNS), journal_source)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(EVENTS.c.id)
        .cte("j")
    )
    out = [select(j.c.id).scalar_subquery().label("journal_id")]
    if pushes:
        insert = postgresql.insert(DELIVERIES).from_select(
            list(PUSH_COLUMNS), _rows_of(DELIVERIES, PUSH_COLUMNS, "p", pushes, j)
        )
        d = upsert_deliveries(insert).returning(DELIVERIES.c.username).cte("d")
        out.append(select(func.count()).select_from(d).scalar_subquery().label("pushed"))
    if views:
        v = (
            postgresql.insert(VIEWS)
            .from_select(list(VIEW_COLUMNS), _rows_of(VIEWS, VIEW_COLUMNS, "v", views, j))
            .returning(VIEWS.c.id)
            .cte("v")
        )
        out.append(select(func.count()).select_from(v).scalar_subquery().label("viewed"))
    # The row as written, in ``read``'s shape: the next event of the call can plan on it
    # without reading it (``CallRows``).
    return select(*out, *[c.c[col.name] for col in _row_columns(CALLS)]).select_from(
        _one_row().outerjoin(c, true())
    )


# Shapes seen in practice are a few dozen (which columns an event sets, 0-n pushes).
MAX_SHAPES = 512
_WRITES: dict[tuple[bool, tuple[str, ...], int, int], RawStatement] = {}


async def write(
    conn: Any,
    dialect: Dialect,
    record: Mapping[str, Any],
    *,
    new: bool,
    version: int,
    values: Mapping[str, Any],
    pushes: list[dict[str, Any]],
    views: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Write one planned event atomically: the call's row as written, in ``read``'s shape; or
    None when nothing was written (the call changed since it was read, or the event was
    journaled meanwhile)."""
    keys = tuple(sorted(values))
    shape = (new, keys, len(pushes), len(views))
    raw = _WRITES.get(shape)
    if raw is None:
        raw = RawStatement(_write(*shape))
        if len(_WRITES) < MAX_SHAPES:
            _WRITES[shape] = raw
    params: dict[str, Any] = {f"c_{k}": values[k] for k in keys}
    params.update({f"j_{k}": record[k] for k in JOURNAL_COLUMNS})
    if not new:
        params["where_id"] = record["call_id"]
        params["where_version"] = version
    for i, push in enumerate(pushes):
        params.update({f"p{i}_{k}": push[k] for k in PUSH_COLUMNS})
    for i, view in enumerate(views):
        params.update({f"v{i}_{k}": view[k] for k in VIEW_COLUMNS})
    compiled = raw.prepare(dialect)
    assert compiled is not None
    row = (await compiled.dicts(conn, params))[0]
    if row.pop("journal_id") is None:
        return None
    row.pop("pushed", None)
    row.pop("viewed", None)
    return row


async def insert_journal(conn: Any, dialect: Dialect, record: Mapping[str, Any]) -> None:
    """One journal row on its own (an event journaled for replay, ``applied`` false)."""
    compiled = _JOURNAL.prepare(dialect, frozenset(record))
    assert compiled is not None
    await compiled.fetch(conn, record)


async def update_pop(
    conn: Any, dialect: Dialect, call_id: str, pop_version: int, doc: Mapping[str, Any]
) -> bool:
    """The call's pop replaced by ``doc`` if still at ``pop_version`` (one statement)."""
    compiled = _UPDATE_POP.prepare(dialect, frozenset({"pop", "pop_version"}))
    assert compiled is not None
    params = {
        "pop": doc,
        "pop_version": pop_version + 1,
        "where_id": call_id,
        "where_pop_version": pop_version,
    }
    return await compiled.execute(conn, params) == "UPDATE 1"
