"""The queries the queue statistics run: today's calls, answers and pops; presence upserts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Executable, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRecord, PopDelivery
from app.fingerprint import Fingerprint
from app.queues.models import AgentPresence, Queue
from app.users.directory import ACTIVE_AGENTS
from app.users.models import User

ACTIVE_STATES = ("queued", "ringing", "answered", "held")


QUEUE_LIMITS = select(Queue.name, Queue.service_level_s, Queue.wrap_up_s, Queue.ring_timeout_s)
# What the roster is read from: re-read only when this changed (app.fingerprint).
ROSTER_FINGERPRINT = Fingerprint(QUEUE_LIMITS, ACTIVE_AGENTS)


async def queue_limits(
    session: AsyncSession,
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Every queue's service level threshold, wrap-up time and ring timeout, in seconds, by
    name."""
    levels: dict[str, int] = {}
    wrap_ups: dict[str, int] = {}
    ring_timeouts: dict[str, int] = {}
    for name, level, wrap_up, ring_timeout in await session.execute(QUEUE_LIMITS):
        levels[name] = int(level)
        wrap_ups[name] = int(wrap_up)
        ring_timeouts[name] = int(ring_timeout)
    return levels, wrap_ups, ring_timeouts


async def user_queues(session: AsyncSession, username: str) -> list[str]:
    queues = await session.scalar(select(User.queues).where(User.username == username))
    return list(queues or [])


async def presences(session: AsyncSession) -> Sequence[tuple[AgentPresence, str | None]]:
    """Every agent's persisted presence, with the queue of the call it names (a wrap-up is
    bounded by that queue's ``wrap_up_s``, after a restart too)."""
    stmt = select(AgentPresence, Call.queue).outerjoin(Call, Call.id == AgentPresence.call_id)
    return (await session.execute(stmt)).tuples().all()


# Rows fetched from the server per round trip while the rebuild streams a day's calls/journal.
STREAM_BATCH = 2000


class CallRow(NamedTuple):
    """What the statistics read of a call: its columns, and three values of its JSON documents
    extracted by the database (the pop document itself, several KB, never leaves it). Named as
    the calls domain's rows are, so ``app.calls.pop.change_message`` reads it as it reads them."""

    id: str
    version: int
    channel: str
    customer_id: int | None
    queue: str | None
    state: str
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    agent: str | None
    offered_to: list[str] | None
    caller_raw: str
    caller_e164: str | None
    caller_withheld: bool
    # As stored in the JSON (decoded): pop.customer.name, pop.insights.value_tier, match.kind.
    pop_customer_name: Any
    pop_value_tier: Any
    match_kind: Any


class JournalRow(NamedTuple):
    """A journaled event as the rebuild replays it: the three values it reads of ``event``."""

    call_id: str
    kind: str
    occurred_at: datetime
    agent: Any  # event.agent
    transfer_to: Any  # event.attributes.transfer_to
    offer_withdrawn: Any  # event.attributes.offer_withdrawn


async def _stream(session: AsyncSession, stmt: Executable) -> AsyncGenerator[Any, None]:
    """The statement's rows fetched in batches (a server-side cursor), never all at once.

    Plain columns only: run on the session's connection (its transaction), skipping the ORM
    (and its autoflush: the rebuild's session has nothing pending).
    """
    connection = await session.connection()
    result = await connection.stream(stmt.execution_options(yield_per=STREAM_BATCH))
    try:
        # A batch at a time: iterating an async result row by row costs a greenlet switch a row.
        async for rows in result.partitions():
            for row in rows:
                yield row
    finally:
        await result.close()


async def calls_since(session: AsyncSession, start: datetime) -> AsyncGenerator[CallRow, None]:
    """Calls first seen since ``start`` and every call still in progress (both indexed).

    A JSON path (``#>`` on PostgreSQL, ``json_extract`` on SQLite) reads the pop document's
    two fields, decoded as JSON so a value comes back as the whole document would give it.
    """
    stmt = select(
        Call.id,
        Call.version,
        Call.channel,
        Call.customer_id,
        Call.queue,
        Call.state,
        Call.queued_at,
        Call.answered_at,
        Call.ended_at,
        Call.agent,
        Call.offered_to,
        Call.caller_raw,
        Call.caller_e164,
        Call.caller_withheld,
        Call.pop[("customer", "name")],
        Call.pop[("insights", "value_tier")],
        Call.match[("kind",)],
    ).where(or_(Call.first_seen_at >= start, Call.state.in_(ACTIVE_STATES)))
    async for row in _stream(session, stmt):
        yield CallRow._make(row)


async def journal_since(session: AsyncSession, start: datetime) -> AsyncGenerator[JournalRow, None]:
    """Journaled events received since a day before ``start``, in the order they were applied,
    with the values of the normalised event the replay reads (not the event itself)."""
    event = CallEventRecord.event
    stmt = (
        select(
            CallEventRecord.call_id,
            CallEventRecord.kind,
            CallEventRecord.occurred_at,
            event[("agent",)],
            event[("attributes", "transfer_to")],
            event[("attributes", "offer_withdrawn")],
        )
        # received_at is indexed; the day before covers calls that began before midnight.
        .where(CallEventRecord.received_at >= start - timedelta(days=1))
        .order_by(CallEventRecord.id)
    )
    async for row in _stream(session, stmt):
        yield JournalRow._make(row)


async def pops_since(
    session: AsyncSession, start: datetime
) -> AsyncGenerator[tuple[str, str, str | None, float | None], None]:
    """Pop receipts pushed since ``start``: (call id, agent, queue, latency ms)."""
    stmt = (
        select(PopDelivery.call_id, PopDelivery.username, Call.queue, PopDelivery.latency_ms)
        .join(Call, Call.id == PopDelivery.call_id)
        .where(PopDelivery.pushed_at >= start, PopDelivery.latency_ms.is_not(None))
    )
    async for call_id, username, queue, latency_ms in _stream(session, stmt):
        yield call_id, username, queue, latency_ms


async def upsert_presences(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write agents' presence rows, inserting or replacing by username."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    # Both dialects speak ON CONFLICT; generic SQLAlchemy has no portable upsert.
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(AgentPresence)
    stmt = stmt.values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[AgentPresence.username],
        set_={
            "state": stmt.excluded.state,
            "since": stmt.excluded.since,
            "call_id": stmt.excluded.call_id,
        },
    )
    await session.execute(stmt)
