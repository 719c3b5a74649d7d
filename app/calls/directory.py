"""Who and where: agents by username/extension/worker id, queues by name or dialed number.

Looked up on every event, from tables of every active user (the agent directory,
``app.users.directory``), every queue and every dialed number,
checked when they are older than ``ttl_s`` and read again (two statements) when they changed
(``app.fingerprint``): a user, queue or number added or changed meanwhile is seen within
``ttl_s``. With 2,000 agents each one is offered a call every half minute or so, so the cache
per identifier this replaced missed on almost every offer, and each miss cost the event a
session, a transaction and a query (~1.3 ms of the 2,000-agent pop's 4.7 ms p50). A name
not in the tables (a user or queue created since they were read, or nobody) is looked up on
its own and that answer cached for ``ttl_s``; an event naming a queue nobody created creates
it.
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

from app.fingerprint import Fingerprint
from app.queues import service as queues
from app.queues.models import Queue, QueueNumber
from app.raw_statements import RawStatement, fetch_rows
from app.users import directory as users_directory
from app.users.directory import ACTIVE_AGENTS

log = logging.getLogger(__name__)

# At most this many distinct unknown agent names are logged per process (a flood of made-up
# names must not flood the log).
UNKNOWN_AGENTS_LOGGED = 1000
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


@dataclass(frozen=True, slots=True)
class Tables:
    agents: dict[str, AgentRef]
    queues: dict[str, QueueRef]
    numbers: dict[str, QueueRef]


_QUEUES = Queue.__table__
_NUMBERS = QueueNumber.__table__
_AGENTS = ACTIVE_AGENTS
_QUEUES_AND_NUMBERS = select(_QUEUES.c.name, _QUEUES.c.pop_mode, _NUMBERS.c.number).select_from(
    _QUEUES.outerjoin(_NUMBERS, _NUMBERS.c.queue_id == _QUEUES.c.id)
)
_ALL_AGENTS = RawStatement(_AGENTS)
_ALL_QUEUES = RawStatement(_QUEUES_AND_NUMBERS)
_TABLES_FINGERPRINT = Fingerprint(_AGENTS, _QUEUES_AND_NUMBERS)


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


def queue_tables(rows: Iterable[Any]) -> tuple[dict[str, QueueRef], dict[str, QueueRef]]:
    """(queues by name, queues by dialed number) from (name, pop_mode, number) rows."""
    by_name: dict[str, QueueRef] = {}
    by_number: dict[str, QueueRef] = {}
    for row in rows:
        ref = by_name.get(row.name)
        if ref is None:
            ref = by_name[row.name] = QueueRef(row.name, row.pop_mode or DEFAULT_POP_MODE)
        if row.number is not None:
            by_number[row.number] = ref
    return by_name, by_number


class Directory:
    """Per-process, short-lived cache of agent and queue lookups."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._tables: Tables | None = None
        self._tables_at = 0.0
        self._fingerprint: tuple[str, ...] | None = None
        self._loading = False
        self._agents: dict[str, tuple[float, AgentRef]] = {}
        self._queues: dict[str, tuple[float, QueueRef]] = {}
        self._numbers: dict[str, tuple[float, QueueRef | None]] = {}
        self._warned: set[str] = set()  # unknown agent names already logged (bounded)

    def _fresh(self, stamp: float) -> bool:
        return time.monotonic() - stamp < self.ttl_s

    async def _read_tables(self, session: AsyncSession) -> Tables:
        """The tables; checked once older than ``ttl_s`` and read again if they changed
        (events that arrive meanwhile use the previous ones)."""
        tables = self._tables
        if tables is not None and (self._loading or self._fresh(self._tables_at)):
            return tables
        self._loading = True
        try:
            fingerprint = await _TABLES_FINGERPRINT.read(session)
            if tables is None or fingerprint is None or fingerprint != self._fingerprint:
                agents = agent_table(await fetch_rows(session, _ALL_AGENTS, {}))
                by_name, by_number = queue_tables(await fetch_rows(session, _ALL_QUEUES, {}))
                self._tables = tables = Tables(agents, by_name, by_number)
                self._fingerprint = fingerprint
        finally:
            self._loading = False
        self._tables_at = time.monotonic()
        return tables

    async def agent(self, session: AsyncSession, ident: str | None) -> AgentRef | None:
        """The agent an event names; unknown identifiers come back raw with ``known`` False."""
        if not ident:
            return None
        ref = (await self._read_tables(session)).agents.get(ident)
        if ref is not None:
            return ref
        hit = self._agents.get(ident)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        found = await users_directory.find_agent(session, ident)
        ref = (
            AgentRef(found.username, found.role, True) if found else AgentRef(ident, "agent", False)
        )
        if found is None:
            self._warn_unknown(ident)
        self._agents[ident] = (time.monotonic(), ref)
        return ref

    def _warn_unknown(self, ident: str) -> None:
        """Log an event's agent that is no active user, once per name (per process)."""
        if ident in self._warned or len(self._warned) >= UNKNOWN_AGENTS_LOGGED:
            return
        self._warned.add(ident)
        log.warning(
            "an event names agent %r, who is no active user (username, extension or worker id)",
            ident[:80],
        )

    async def queue(self, session: AsyncSession, name: str) -> QueueRef:
        """The named queue, created with defaults if nobody created it yet."""
        ref = (await self._read_tables(session)).queues.get(name)
        if ref is not None:
            return ref
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
        ref = (await self._read_tables(session)).numbers.get(dialed)
        if ref is not None:
            return ref
        hit = self._numbers.get(dialed)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        queue = await queues.queue_for_number(session, dialed)
        found = QueueRef(queue.name, queue.pop_mode or DEFAULT_POP_MODE) if queue else None
        self._numbers[dialed] = (time.monotonic(), found)
        if found is not None:
            self._queues[found.name] = (time.monotonic(), found)
        return found
