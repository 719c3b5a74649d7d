"""The queries the queue statistics run: today's calls, answers and pops; presence upserts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRecord, PopDelivery
from app.queues.models import AgentPresence, Queue
from app.users.models import User

ACTIVE_STATES = ("queued", "ringing", "answered", "held")


async def service_levels(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Queue.name, Queue.service_level_s))
    return {name: int(level) for name, level in rows}


async def users(
    session: AsyncSession,
) -> Sequence[tuple[str, str, list[str], str | None, str | None]]:
    """Every active user's name, role, queues, extension and provider worker id."""
    rows = await session.execute(
        select(User.username, User.role, User.queues, User.extension, User.worker_id).where(
            User.active.is_(True)
        )
    )
    return rows.tuples().all()


async def user_queues(session: AsyncSession, username: str) -> list[str]:
    queues = await session.scalar(select(User.queues).where(User.username == username))
    return list(queues or [])


async def presences(session: AsyncSession) -> Sequence[AgentPresence]:
    return (await session.execute(select(AgentPresence))).scalars().all()


async def calls_since(session: AsyncSession, start: datetime) -> Sequence[Call]:
    """Calls first seen since ``start`` and every call still in progress (both indexed)."""
    rows = await session.execute(
        select(Call).where(or_(Call.first_seen_at >= start, Call.state.in_(ACTIVE_STATES)))
    )
    return rows.scalars().all()


async def journal_since(
    session: AsyncSession, start: datetime
) -> Sequence[tuple[str, str, datetime, dict[str, Any]]]:
    """Journaled events received since a day before ``start``, in the order they were applied:
    (call id, kind, occurred at, normalised event)."""
    rows = await session.execute(
        select(
            CallEventRecord.call_id,
            CallEventRecord.kind,
            CallEventRecord.occurred_at,
            CallEventRecord.event,
        )
        # received_at is indexed; the day before covers calls that began before midnight.
        .where(CallEventRecord.received_at >= start - timedelta(days=1))
        .order_by(CallEventRecord.id)
    )
    return rows.tuples().all()


async def pops_since(
    session: AsyncSession, start: datetime
) -> Sequence[tuple[str, str, str | None, float | None]]:
    """Pop receipts pushed since ``start``: (call id, agent, queue, latency ms)."""
    rows = await session.execute(
        select(PopDelivery.call_id, PopDelivery.username, Call.queue, PopDelivery.latency_ms)
        .join(Call, Call.id == PopDelivery.call_id)
        .where(PopDelivery.pushed_at >= start, PopDelivery.latency_ms.is_not(None))
    )
    return rows.tuples().all()


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
