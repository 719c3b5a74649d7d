"""Queues and the dialed numbers that reach them."""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.queues.models import POP_MODES, Queue, QueueNumber
from telephony.callerid import normalise_dialed

log = logging.getLogger(__name__)


async def upsert_queue(
    session: AsyncSession,
    *,
    name: str,
    numbers: list[str] | None = None,
    service_level_s: int = 20,
    pop_mode: str = "offer",
    default_region: str = "GB",
) -> Queue:
    if pop_mode not in POP_MODES:
        raise Invalid(f"pop mode must be one of {', '.join(POP_MODES)}, not {pop_mode!r}")
    if service_level_s <= 0:
        raise Invalid("service level threshold must be a positive number of seconds")
    if not name.strip():
        raise Invalid("queue name must not be empty")
    queue = (await session.execute(select(Queue).where(Queue.name == name))).scalar_one_or_none()
    if queue is None:
        queue = Queue(name=name)
        session.add(queue)
    queue.service_level_s = service_level_s
    queue.pop_mode = pop_mode
    await session.flush()
    if numbers is not None:
        await session.execute(delete(QueueNumber).where(QueueNumber.queue_id == queue.id))
        for raw in numbers:
            number = normalise_dialed(raw, default_region) or raw
            await session.merge(QueueNumber(number=number, queue_id=queue.id))
        await session.flush()
    return queue


async def ensure_queue(session: AsyncSession, name: str) -> Queue:
    """The named queue; an event naming a queue nobody created creates it with defaults."""
    queue = (await session.execute(select(Queue).where(Queue.name == name))).scalar_one_or_none()
    if queue is None:
        queue = Queue(name=name, service_level_s=20, pop_mode="offer")
        session.add(queue)
        await session.flush()
        log.info("queue %r created with defaults (first named by a call event)", name)
    return queue


async def queue_for_number(session: AsyncSession, dialed: str) -> Queue | None:
    row = await session.execute(
        select(Queue)
        .join(QueueNumber, QueueNumber.queue_id == Queue.id)
        .where(QueueNumber.number == dialed)
    )
    return row.scalar_one_or_none()
