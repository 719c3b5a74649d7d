"""Queues and the dialed numbers that reach them; who sees which queue's statistics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid
from app.queues import repository
from app.queues.models import (
    DEFAULT_SERVICE_LEVEL_S,
    NUMBER_MAX,
    POP_MODES,
    Queue,
    QueueNumber,
)
from app.queues.names import UNROUTED, check_queue_name
from app.queues.stats import QueueStats
from app.users.directory import Agent, AgentDirectory, load_agents
from app.users.models import User
from app.users.service import Principal
from telephony.callerid import normalise_dialed
from telephony.events import NUL

log = logging.getLogger(__name__)


async def upsert_queue(
    session: AsyncSession,
    *,
    name: str,
    numbers: list[str] | None = None,
    service_level_s: int = DEFAULT_SERVICE_LEVEL_S,
    pop_mode: str = "offer",
    default_region: str = "GB",
    wrap_up_s: int = 60,
    ring_timeout_s: int = 30,
) -> Queue:
    """Create or update a queue; ``numbers`` (when given) replace the DIDs that reach it."""
    if pop_mode not in POP_MODES:
        raise Invalid(f"pop mode must be one of {', '.join(POP_MODES)}, not {pop_mode!r}")
    if service_level_s <= 0:
        raise Invalid("service level threshold must be a positive number of seconds")
    if wrap_up_s < 0:
        raise Invalid("wrap-up time must be zero or a positive number of seconds")
    if ring_timeout_s <= 0:
        raise Invalid("ring timeout must be a positive number of seconds")
    check_queue_name(name)
    stored = [_stored_number(raw, default_region) for raw in numbers or ()]
    queue = (await session.execute(select(Queue).where(Queue.name == name))).scalar_one_or_none()
    if queue is None:
        queue = Queue(name=name)
        session.add(queue)
    queue.service_level_s = service_level_s
    queue.pop_mode = pop_mode
    queue.wrap_up_s = wrap_up_s
    queue.ring_timeout_s = ring_timeout_s
    await session.flush()
    if numbers is not None:
        await session.execute(delete(QueueNumber).where(QueueNumber.queue_id == queue.id))
        for number in stored:
            await session.merge(QueueNumber(number=number, queue_id=queue.id))
        await session.flush()
    return queue


def _stored_number(raw: str, default_region: str) -> str:
    """A dialed number as ``queue_numbers`` keeps it (E.164 when it parses), or ``Invalid``."""
    number = normalise_dialed(raw, default_region) or raw
    if len(number) > NUMBER_MAX or NUL in number:
        raise Invalid(
            f"numbers: {raw[:16]!r} is not a dialed number we can store"
            f" (at most {NUMBER_MAX} characters, no NUL)"
        )
    return number


async def ensure_queue(session: AsyncSession, name: str) -> Queue:
    """The named queue; an event naming a queue nobody created creates it with defaults."""
    queue = (await session.execute(select(Queue).where(Queue.name == name))).scalar_one_or_none()
    if queue is None:
        queue = Queue(
            name=name, service_level_s=20, pop_mode="offer", wrap_up_s=60, ring_timeout_s=30
        )
        session.add(queue)
        await session.flush()
        log.info("queue created with defaults (first named by a call event)", extra={"queue": name})
    return queue


async def queue_for_number(session: AsyncSession, dialed: str) -> Queue | None:
    """The queue a dialed number (DID, normalised) reaches, if any."""
    row = await session.execute(
        select(Queue)
        .join(QueueNumber, QueueNumber.queue_id == Queue.id)
        .where(QueueNumber.number == dialed)
    )
    return row.scalar_one_or_none()


@dataclass
class Roster:
    """Queues' thresholds and who is in which queue, cached and refreshed every few seconds."""

    service_levels: dict[str, int] = field(default_factory=dict)
    wrap_ups: dict[str, int] = field(default_factory=dict)
    ring_timeouts: dict[str, int] = field(default_factory=dict)
    users: dict[str, Agent] = field(default_factory=dict)
    # Extension or provider worker id -> username, to read agents named in the raw journal.
    aliases: dict[str, str] = field(default_factory=dict)

    def username_for(self, agent: str) -> str:
        """The username an event's agent field (username, extension or worker id) names."""
        return AgentDirectory(self.users, self.aliases).username_for(agent)

    def queues_of(self, username: str) -> frozenset[str]:
        user = self.users.get(username)
        return user.queues if user else frozenset()


async def load_roster(session: AsyncSession) -> Roster:
    """Every queue's service level threshold, wrap-up time and ring timeout, and every active
    user's queues (the agent directory, ``app.users.directory``)."""
    agents = await load_agents(session)
    levels, wrap_ups, ring_timeouts = await repository.queue_limits(session)
    return Roster(
        service_levels=levels,
        wrap_ups=wrap_ups,
        ring_timeouts=ring_timeouts,
        users=agents.users,
        aliases=agents.aliases,
    )


# A supervisor's queue list holding this watches every queue (`user add --queues '*'`).
ALL_QUEUES = "*"


@dataclass(frozen=True)
class Scope:
    """What one supervisor sees: ``queues`` None means every queue (admin). A supervisor's
    scope always holds the ``unrouted`` lane: calls that name no queue belong to no one else."""

    queues: frozenset[str] | None

    def sees_queue(self, name: str) -> bool:
        return self.queues is None or name in self.queues


async def has_extension(session: AsyncSession, username: str) -> bool:
    """True when the user has a phone extension (so takes calls)."""
    extension = await session.scalar(select(User.extension).where(User.username == username))
    return bool(extension)


async def scope_for(session: AsyncSession, principal: Principal) -> Scope:
    """Admins see every queue; a supervisor sees the queues on their user record and the
    ``unrouted`` lane, or every queue (including one an event created) when that record
    lists ``*``."""
    if principal.role == "admin":
        return Scope(None)
    if not principal.is_supervisor:
        raise Forbidden("supervisor role required")
    queues = frozenset(await repository.user_queues(session, principal.username))
    return Scope(None if ALL_QUEUES in queues else queues | {UNROUTED})


# An agent nobody has shows on a supervisor's board while engaged on a call of their queues.
_ENGAGED = ("ringing", "on_call")


def scope_members(stats: QueueStats, roster: Roster, scope: Scope) -> tuple[set[str], set[str]]:
    """The queues and agents a scope shows.

    Queues: the scope's (the ``unrouted`` lane once a call counted there). Agents listed:
    users with role agent in the scope's queues (or, for admins, anywhere), supervisors and
    admins with an extension there whose presence is known (they take calls), anyone who
    handled a call today, plus agents no user is (named by events, ``known`` false in the
    snapshot) ringing or talking on a call of those queues (for admins: whose presence is
    known). A supervisor without an extension who opens the agent screen is not an agent.
    """
    if scope.queues is None:
        queues: set[str] = set(roster.service_levels) | set(stats.queues)
        agents = {u.username for u in roster.users.values() if u.role == "agent"}
        agents |= {
            u for u, v in stats.agents.items() if v.since is not None and _takes_calls(roster, u)
        }
        agents |= set(stats.handled)
        return queues, agents
    queues = {q for q in scope.queues if q != UNROUTED or q in stats.queues}
    agents = {
        u.username
        for u in roster.users.values()
        if u.queues & scope.queues
        and (
            u.role == "agent"
            or (u.takes_calls and u.username in stats.agents)
            or u.username in stats.handled
        )
    }
    for username, view in stats.agents.items():
        if username in roster.users or view.state not in _ENGAGED or view.call_id is None:
            continue
        call = stats.calls.get(view.call_id)
        if call is not None and call.queue in queues:
            agents.add(username)
    return queues, agents


def members_snapshot(
    stats: QueueStats,
    roster: Roster,
    queues: set[str],
    agents: set[str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``GET /api/queues`` document for these queues and agents; each agent says whether
    a user is that agent (``known``: false for a name only events gave)."""
    document = stats.snapshot(queues, agents, now)
    for row in document["agents"]:
        row["known"] = row["username"] in roster.users
    return document


def _takes_calls(roster: Roster, username: str) -> bool:
    user = roster.users.get(username)
    return user is None or user.takes_calls


def scoped_snapshot(
    stats: QueueStats, roster: Roster, scope: Scope, now: datetime | None = None
) -> dict[str, Any]:
    """The ``GET /api/queues`` document for one supervisor's scope."""
    queues, agents = scope_members(stats, roster, scope)
    return members_snapshot(stats, roster, queues, agents, now)
