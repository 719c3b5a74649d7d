"""Who and where: agents by username/extension/worker id, queues by name or dialed number.

Looked up on every event, so answers are cached per process for a few seconds; a user or
queue added meanwhile is seen within ``ttl_s``.

Agents are answered from a table of every user (username, extension and worker id -> the
user), read in one statement when it is older than ``ttl_s``: with 2,000 agents each one is
offered a call every half minute or so, so a cache per identifier missed on almost every
offer and each miss cost the event a session, a transaction and a query (~1.3 ms of the
2,000-agent pop's 4.7 ms p50). An identifier not in the table (a user created since it was
read, or nobody) is looked up on its own and that answer cached for ``ttl_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import repository as repo
from app.queues import service as queues
from app.raw_statements import RawStatement, fetch_rows
from app.users.models import User

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


_USERS = User.__table__
_ALL_AGENTS = RawStatement(
    select(_USERS.c.username, _USERS.c.role, _USERS.c.extension, _USERS.c.worker_id)
)


def agent_table(rows: Iterable[Any]) -> dict[str, AgentRef]:
    """Username, extension and worker id -> the user; a username wins over an extension or
    worker id that happens to equal it (as ``repository.find_agent`` decides)."""
    table: dict[str, AgentRef] = {}
    refs = [(row, AgentRef(row.username, row.role, True)) for row in rows]
    for row, ref in refs:
        for alias in (row.extension, row.worker_id):
            if alias:
                table.setdefault(alias, ref)
    for row, ref in refs:
        table[row.username] = ref
    return table


class Directory:
    """Per-process, short-lived cache of agent and queue lookups."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._table: dict[str, AgentRef] | None = None
        self._table_at = 0.0
        self._table_loading = False
        self._agents: dict[str, tuple[float, AgentRef]] = {}
        self._queues: dict[str, tuple[float, QueueRef]] = {}
        self._numbers: dict[str, tuple[float, QueueRef | None]] = {}

    def _fresh(self, stamp: float) -> bool:
        return time.monotonic() - stamp < self.ttl_s

    async def _agent_table(self, session: AsyncSession) -> dict[str, AgentRef]:
        """Every user by identifier; read again once older than ``ttl_s`` (meanwhile, events
        that arrive while one of them reads it use the previous table)."""
        table = self._table
        if table is not None and (self._table_loading or self._fresh(self._table_at)):
            return table
        self._table_loading = True
        try:
            table = agent_table(await fetch_rows(session, _ALL_AGENTS, {}))
        finally:
            self._table_loading = False
        self._table, self._table_at = table, time.monotonic()
        return table

    async def agent(self, session: AsyncSession, ident: str | None) -> AgentRef | None:
        """The agent an event names; unknown identifiers come back raw with ``known`` False."""
        if not ident:
            return None
        ref = (await self._agent_table(session)).get(ident)
        if ref is not None:
            return ref
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
