"""Every query of the calls domain, in one place.

The hot path (one event) is: journal insert, call row lock (or insert), versioned update, and,
when a pop is pushed, one delivery upsert (plus the profile-view audit row). Rows travel as
plain mappings, not ORM objects: the ingest path never builds an object graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Boolean,
    Integer,
    Row,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRecord, PopDelivery
from app.customers.models import Interaction
from app.db import UTCDateTime
from app.raw_statements import RawStatement, fetch_rows

CALLS = cast(Table, Call.__table__)
EVENTS = cast(Table, CallEventRecord.__table__)
DELIVERIES = cast(Table, PopDelivery.__table__)
INTERACTIONS = cast(Table, Interaction.__table__)
CallRow = dict[str, Any]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT on both backends."""
    if _dialect(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# --- the journal -----------------------------------------------------------------------------


# Hot-path statements, built once per dialect: rows go in as parameters, so SQLAlchemy's
# compiled cache (keyed by the statement and the parameter names) hits on every event.
_JOURNAL = {
    "postgresql": postgresql.insert(EVENTS)
    .on_conflict_do_nothing(index_elements=["source", "event_id"])
    .returning(EVENTS.c.id),
    "sqlite": sqlite.insert(EVENTS)
    .on_conflict_do_nothing(index_elements=["source", "event_id"])
    .returning(EVENTS.c.id),
}
_NEW_CALL = {
    "postgresql": postgresql.insert(CALLS)
    .on_conflict_do_nothing(index_elements=["id"])
    .returning(CALLS.c.id),
    "sqlite": sqlite.insert(CALLS)
    .on_conflict_do_nothing(index_elements=["id"])
    .returning(CALLS.c.id),
}
_LOCK_CALL = select(CALLS).where(CALLS.c.id == bindparam("call_id")).with_for_update()
_GET_CALL = select(CALLS).where(CALLS.c.id == bindparam("call_id"))
# The SET clause comes from the parameters' names; the WHERE binds are named apart from them.
_UPDATE_CALL = update(CALLS).where(
    CALLS.c.id == bindparam("where_id"), CALLS.c.version == bindparam("where_version")
)


def upsert_deliveries(stmt: Any) -> Any:
    """An INSERT into ``pop_deliveries`` made an upsert: a new push resets the receipts.

    ``latency_ms`` stays: it is the last pop of the call written to the agent's socket, and a
    push that never reaches a socket leaves it (as the live queue statistics do)."""
    return stmt.on_conflict_do_update(
        index_elements=["call_id", "username"],
        set_={
            "version": stmt.excluded.version,
            "pushed_at": stmt.excluded.pushed_at,
            "delivered_at": None,
            "seen_at": None,
        },
    )


_PUSHES = {
    "postgresql": upsert_deliveries(postgresql.insert(DELIVERIES)),
    "sqlite": upsert_deliveries(sqlite.insert(DELIVERIES)),
}


async def insert_journal(session: AsyncSession, values: Mapping[str, Any]) -> int | None:
    """Journal one event; None when (source, event_id) is already there (a duplicate)."""
    found = (await session.execute(_JOURNAL[_dialect(session)], dict(values))).scalar_one_or_none()
    return int(found) if found is not None else None


def _journal_and_lock() -> Any:
    journal = (
        postgresql.insert(EVENTS)
        .values({c.name: bindparam(c.name, type_=c.type) for c in EVENTS.c if c.name != "id"})
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(EVENTS.c.id)
        .cte("journal")
    )
    # Evaluated once per inserted journal row: a duplicate locks nothing.
    locked = (
        select(CALLS)
        .where(CALLS.c.id == bindparam("lock_call_id"))
        .with_for_update()
        .lateral("locked")
    )
    return select(journal.c.id.label("journal_id"), locked).select_from(
        journal.outerjoin(locked, true())
    )


_JOURNAL_AND_LOCK = _journal_and_lock()
# Reads run straight on asyncpg on PostgreSQL (see ``RawStatement``); writes and locking
# reads go through the session, inside its transaction.
_RAW_GET_CALL = RawStatement(_GET_CALL)
# The pop replaced if still at the version read; SET columns come from the parameters.
UPDATE_POP = (
    update(CALLS)
    .where(
        CALLS.c.id == bindparam("where_id"),
        CALLS.c.pop_version == bindparam("where_pop_version"),
    )
    .values(version=CALLS.c.version + 1)
)
_RAW_POP_HOLDERS = RawStatement(
    select(DELIVERIES.c.username).where(DELIVERIES.c.call_id == bindparam("call_id"))
)


async def journal_and_lock(
    session: AsyncSession, values: Mapping[str, Any], call_id: str
) -> tuple[int | None, CallRow | None]:
    """``insert_journal`` then ``lock_call``: (journal id or None for a duplicate, call row).

    On PostgreSQL one round trip (the insert in a CTE, the lock in a lateral subquery that runs
    only when the insert did); ``values`` carries every journal column but ``id``. The call row
    is None for a new call, and for a duplicate (which locks nothing).
    """
    if _dialect(session) != "postgresql":
        journal_id = await insert_journal(session, values)
        if journal_id is None:
            return None, None
        return journal_id, await lock_call(session, call_id)
    params = {**values, "lock_call_id": call_id}
    found = (await session.execute(_JOURNAL_AND_LOCK, params)).mappings().first()
    if found is None:
        return None, None
    row = dict(found)
    journal_id = int(row.pop("journal_id"))
    return journal_id, (row if row["id"] is not None else None)


async def mark_applied(session: AsyncSession, call_id: str) -> None:
    await session.execute(
        update(EVENTS)
        .where(EVENTS.c.call_id == call_id, EVENTS.c.applied.is_(False))
        .values(applied=True)
    )


async def unapplied_call_ids(session: AsyncSession, limit: int = 1000) -> list[str]:
    rows = await session.execute(
        select(EVENTS.c.call_id).where(EVENTS.c.applied.is_(False)).distinct().limit(limit)
    )
    return [r[0] for r in rows]


async def journal_call_ids(session: AsyncSession) -> list[str]:
    rows = await session.execute(select(EVENTS.c.call_id).distinct())
    return [r[0] for r in rows]


async def journal_for_calls(session: AsyncSession, call_ids: Sequence[str]) -> Sequence[Row[Any]]:
    """Journal rows of these calls, oldest first (arrival order)."""
    if not call_ids:
        return []
    rows = await session.execute(
        select(EVENTS)
        .where(EVENTS.c.call_id.in_(list(call_ids)))
        .order_by(EVENTS.c.call_id, EVENTS.c.id)
    )
    return rows.all()


# --- calls -----------------------------------------------------------------------------------


async def lock_call(session: AsyncSession, call_id: str) -> CallRow | None:
    """The call's row, locked until the transaction ends (PostgreSQL ``FOR UPDATE``).

    SQLite has no row locks: its single writer (the journal insert took the write lock)
    serialises events instead, and the versioned update double-checks.
    """
    row = await session.execute(_LOCK_CALL, {"call_id": call_id})
    found = row.mappings().first()
    return dict(found) if found is not None else None


async def get_call(session: AsyncSession, call_id: str) -> CallRow | None:
    rows = await fetch_rows(session, _RAW_GET_CALL, {"call_id": call_id})
    return dict(rows[0]._asdict()) if rows else None


async def insert_call(session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Insert a new call; False when another transaction inserted it first."""
    result = await session.execute(_NEW_CALL[_dialect(session)], dict(values))
    return result.scalar_one_or_none() is not None


async def update_call(
    session: AsyncSession, call_id: str, version: int, values: Mapping[str, Any]
) -> bool:
    """Versioned update: applies only if nobody changed the row since it was read."""
    params = {**values, "version": version + 1, "where_id": call_id, "where_version": version}
    result = await session.execute(_UPDATE_CALL, params)
    return bool(getattr(result, "rowcount", 0) == 1)


async def update_pop(
    session: AsyncSession, call_id: str, pop_version: int, values: Mapping[str, Any]
) -> bool:
    """Replace the pop (and what goes with it) if it is still at ``pop_version``."""
    params = {**values, "where_id": call_id, "where_pop_version": pop_version}
    params["pop_version"] = pop_version + 1
    result = await session.execute(UPDATE_POP, params)
    return bool(getattr(result, "rowcount", 0) == 1)


async def active_calls(session: AsyncSession, limit: int = 500) -> list[CallRow]:
    rows = await session.execute(
        select(CALLS)
        .where(CALLS.c.state.in_(("queued", "ringing", "answered", "held")))
        .order_by(CALLS.c.first_seen_at)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def recent_calls(session: AsyncSession, limit: int = 100) -> list[CallRow]:
    rows = await session.execute(select(CALLS).order_by(CALLS.c.first_seen_at.desc()).limit(limit))
    return [dict(r) for r in rows.mappings()]


async def calls_for_agent_since(
    session: AsyncSession, username: str, since: datetime
) -> list[tuple[CallRow, bool]]:
    """The agent's calls first seen since ``since``, newest first, with 'wrapped up' (their
    own leg)."""
    interactions = INTERACTIONS
    rows = await session.execute(
        select(CALLS, interactions.c.id.label("interaction_id"))
        .outerjoin(
            interactions,
            (interactions.c.call_id == CALLS.c.id) & (interactions.c.agent == username),
        )
        .where(CALLS.c.agent == username, CALLS.c.first_seen_at >= since)
        .order_by(CALLS.c.first_seen_at.desc())
        .limit(500)
    )
    out = []
    for r in rows.mappings():
        data = dict(r)
        wrapped = data.pop("interaction_id") is not None
        out.append((data, wrapped))
    return out


async def live_calls_for_agent(session: AsyncSession, username: str) -> list[CallRow]:
    """Calls whose pop this agent holds and that are still live for them (for replay)."""
    rows = await session.execute(
        select(CALLS)
        .join(
            DELIVERIES,
            and_(DELIVERIES.c.call_id == CALLS.c.id, DELIVERIES.c.username == username),
        )
        .where(CALLS.c.state.in_(("ringing", "answered", "held")))
        .order_by(CALLS.c.first_seen_at)
    )
    out = []
    for r in rows.mappings():
        call = dict(r)
        if call["agent"] == username or username in (call["offered_to"] or []):
            out.append(call)
    return out


async def call_states(
    session: AsyncSession, call_ids: Iterable[str]
) -> list[tuple[str, str, str | None]]:
    """(id, state, agent) of each of ``call_ids`` that exists (a resync's final states)."""
    ids = sorted(set(call_ids))
    out: list[tuple[str, str, str | None]] = []
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(CALLS.c.id, CALLS.c.state, CALLS.c.agent).where(
                CALLS.c.id.in_(ids[start : start + 500])
            )
        )
        out.extend((r.id, r.state, r.agent) for r in rows)
    return out


# --- pop deliveries ----------------------------------------------------------------------------


async def record_pushes(session: AsyncSession, rows: Iterable[Mapping[str, Any]]) -> None:
    """Upsert one delivery row per (call, agent): a new push resets its receipts."""
    values = [dict(r) for r in rows]
    if not values:
        return
    stmt = _PUSHES[_dialect(session)]
    # One row: a plain execute; several: one executemany (still one round trip on asyncpg).
    await session.execute(stmt, values[0] if len(values) == 1 else values)


async def pop_holders(session: AsyncSession, call_id: str) -> list[str]:
    return [r[0] for r in await fetch_rows(session, _RAW_POP_HOLDERS, {"call_id": call_id})]


async def pop_sent(session: AsyncSession, call_id: str, username: str) -> bool:
    """Whether a pop of the call was pushed to this agent (a delivery row: the primary key)."""
    found = await session.scalar(
        select(DELIVERIES.c.version).where(
            DELIVERIES.c.call_id == call_id, DELIVERIES.c.username == username
        )
    )
    return found is not None


class Receipt(NamedTuple):
    """An agent's screen confirmed (``seen``: and showed) ``version`` of a call's pop at ``at``."""

    call_id: str
    username: str
    version: int | None
    at: datetime
    seen: bool


class Written(NamedTuple):
    """A pop was written to the agent's socket ``latency_ms`` after its event arrived."""

    call_id: str
    username: str
    latency_ms: float


# Receipts in order, each as if applied alone: the first delivered / seen time wins, and an
# ack of an older version than the last push does not confirm the newer one. PostgreSQL: one
# statement for the batch; several receipts for one row are grouped (an UPDATE … FROM takes
# only one source row per target), then the first eligible one in arrival order is taken,
# with the row's version read by the UPDATE itself (re-checked if a push changes it
# meanwhile). Rows with nothing to change are not written.
_RECEIPTS_PG = text(
    """
WITH r AS (
    SELECT * FROM unnest(
        CAST(:call_ids AS text[]), CAST(:usernames AS text[]), CAST(:versions AS integer[]),
        CAST(:ats AS timestamptz[]), CAST(:seens AS boolean[])
    ) WITH ORDINALITY AS r(call_id, username, version, at, seen, ord)
), k AS (
    SELECT call_id, username,
        array_agg(version ORDER BY ord) AS versions,
        array_agg(at ORDER BY ord) AS ats,
        array_agg(seen ORDER BY ord) AS seens,
        max(version) AS newest, bool_or(version IS NULL) AS unversioned, bool_or(seen) AS any_seen
    FROM r GROUP BY call_id, username
)
UPDATE pop_deliveries AS d
SET (delivered_at, seen_at) = (
    SELECT coalesce(d.delivered_at, (array_agg(u.at ORDER BY u.ord))[1]),
        coalesce(d.seen_at, (array_agg(u.at ORDER BY u.ord) FILTER (WHERE u.seen))[1])
    FROM unnest(k.versions, k.ats, k.seens) WITH ORDINALITY AS u(version, at, seen, ord)
    WHERE u.version IS NULL OR d.version <= u.version
)
FROM k
WHERE d.call_id = k.call_id AND d.username = k.username
    AND (k.unversioned OR d.version <= k.newest)
    AND (d.delivered_at IS NULL OR (d.seen_at IS NULL AND k.any_seen))
"""
)
# SQLite: the same update per receipt, in order, as one executemany.
_R_VERSION = bindparam("r_version", type_=Integer())
_R_AT = bindparam("r_at", type_=UTCDateTime())
_RECEIPT_EACH = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.call_id == bindparam("r_call_id"),
        DELIVERIES.c.username == bindparam("r_username"),
        or_(_R_VERSION.is_(None), DELIVERIES.c.version <= _R_VERSION),
    )
    .values(
        delivered_at=func.coalesce(DELIVERIES.c.delivered_at, _R_AT),
        seen_at=case(
            (bindparam("r_seen", type_=Boolean()), func.coalesce(DELIVERIES.c.seen_at, _R_AT)),
            else_=DELIVERIES.c.seen_at,
        ),
    )
)


async def record_receipts(session: AsyncSession, receipts: Sequence[Receipt]) -> None:
    """Delivered (and, with ``seen``, seen) times for agents' pops: one statement."""
    if not receipts:
        return
    if _dialect(session) == "postgresql":
        call_ids, usernames, versions, ats, seens = (list(c) for c in zip(*receipts, strict=True))
        await session.execute(
            _RECEIPTS_PG,
            {
                "call_ids": call_ids,
                "usernames": usernames,
                "versions": versions,
                "ats": ats,
                "seens": seens,
            },
        )
        return
    await session.execute(
        _RECEIPT_EACH,
        [
            {"r_call_id": c, "r_username": u, "r_version": v, "r_at": at, "r_seen": s}
            for c, u, v, at, s in receipts
        ],
    )


_WRITTEN = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.call_id == bindparam("w_call_id"),
        DELIVERIES.c.username == bindparam("w_username"),
    )
    .values(latency_ms=bindparam("w_latency_ms"))
)


async def record_written(session: AsyncSession, written: Sequence[Written]) -> None:
    """Pop latencies measured at the socket write; the last one per call and agent wins, as
    in the live queue statistics (``QueueStats.record_pop``)."""
    last = {(w.call_id, w.username): w.latency_ms for w in written}
    if last:
        await session.execute(
            _WRITTEN,
            [{"w_call_id": c, "w_username": u, "w_latency_ms": ms} for (c, u), ms in last.items()],
        )


# --- wrap-up -------------------------------------------------------------------------------------


async def insert_interaction(session: AsyncSession, values: Mapping[str, Any]) -> int:
    row = await session.execute(INTERACTIONS.insert().values(**values).returning(INTERACTIONS.c.id))
    return int(row.scalar_one())
