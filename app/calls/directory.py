"""Who and where: agents by username/extension/worker id, queues by name or dialed number.

Looked up on every event, so answers are cached per process for a few seconds; a user or
queue added meanwhile is seen within ``ttl_s``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import repository as repo
from app.queues import service as queues

log = logging.getLogger(__name__)
DEFAULT_POP_MODE = "offer"


@dataclass(frozen=True, slots=True)
class AgentRef:
    """An agent as events name them: ``known`` False when no user matches (kept raw)."""

    username: str
    role: str
    known: bool


@dataclass(frozen=True, slots=True)
class QueueRef:
    name: str
    pop_mode: str


class Directory:
    """Per-process, short-lived cache of agent and queue lookups."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._agents: dict[str, tuple[float, AgentRef]] = {}
        self._queues: dict[str, tuple[float, QueueRef]] = {}
        self._numbers: dict[str, tuple[float, QueueRef | None]] = {}

    def clear(self) -> None:
        self._agents.clear()
        self._queues.clear()
        self._numbers.clear()

    def _fresh(self, stamp: float) -> bool:
        return time.monotonic() - stamp < self.ttl_s

    async def agent(self, session: AsyncSession, ident: str | None) -> AgentRef | None:
        """The agent an event names; unknown identifiers come back raw with ``known`` False."""
        if not ident:
            return None
        hit = self._agents.get(ident)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        found = await repo.find_agent(session, ident)
        ref = AgentRef(found[0], found[1], True) if found else AgentRef(ident, "agent", False)
        self._agents[ident] = (time.monotonic(), ref)
        return ref

    async def queue(self, session: AsyncSession, name: str) -> QueueRef:
        """The named queue, created with defaults if nobody created it yet."""
        hit = self._queues.get(name)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        try:
            async with session.begin_nested():
                queue = await queues.ensure_queue(session, name)
        except IntegrityError:
            # Another event created it at the same moment: it exists now.
            queue = await queues.ensure_queue(session, name)
        ref = QueueRef(queue.name, queue.pop_mode or DEFAULT_POP_MODE)
        self._queues[name] = (time.monotonic(), ref)
        return ref

    async def queue_for_number(self, session: AsyncSession, dialed: str) -> QueueRef | None:
        """The queue that owns a dialed number (DID), if any."""
        hit = self._numbers.get(dialed)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        queue = await queues.queue_for_number(session, dialed)
        ref = QueueRef(queue.name, queue.pop_mode or DEFAULT_POP_MODE) if queue else None
        self._numbers[dialed] = (time.monotonic(), ref)
        if ref is not None:
            self._queues[ref.name] = (time.monotonic(), ref)
        return ref
