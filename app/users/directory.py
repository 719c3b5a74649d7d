"""The one agent directory every domain reads: active users by username, extension or
provider worker id.

Calls resolve the agent an event names through it, queue statistics place agents in queues
and credit answers through it. A user set inactive is in none of it: an event naming them
names nobody known. A username wins over an extension or worker id that happens to equal it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.raw_statements import RawStatement, fetch_rows
from app.users.models import User

ACTIVE_AGENTS = select(User.username, User.role, User.queues, User.extension, User.worker_id).where(
    User.active.is_(True)
)
_ACTIVE_AGENTS = RawStatement(ACTIVE_AGENTS)


@dataclass(frozen=True, slots=True)
class Agent:
    """An active user as the floor knows them."""

    username: str
    role: str
    queues: frozenset[str] = frozenset()
    # Agents, and supervisors or admins with an extension: they take calls and have a status.
    takes_calls: bool = True


@dataclass(frozen=True)
class AgentDirectory:
    """Active users by username, and their extensions and worker ids as aliases."""

    users: dict[str, Agent] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def find(self, ident: str) -> Agent | None:
        """The user an event's agent field names (username, extension or worker id)."""
        username = ident if ident in self.users else self.aliases.get(ident)
        return self.users.get(username) if username is not None else None

    def username_for(self, ident: str) -> str:
        """The username ``ident`` names, or ``ident`` itself for nobody known."""
        return ident if ident in self.users else self.aliases.get(ident, ident)


def directory_of(rows: Iterable[Any]) -> AgentDirectory:
    """From (username, role, queues, extension, worker_id) rows."""
    directory = AgentDirectory()
    for row in rows:
        directory.users[row.username] = Agent(
            row.username,
            row.role,
            frozenset(row.queues or ()),
            takes_calls=row.role == "agent" or bool(row.extension),
        )
        for alias in (row.extension, row.worker_id):
            if alias:
                directory.aliases.setdefault(alias, row.username)
    return directory


async def load_agents(session: AsyncSession) -> AgentDirectory:
    """Every active user, read once."""
    return directory_of(await fetch_rows(session, _ACTIVE_AGENTS, {}))


async def find_agent(session: AsyncSession, ident: str) -> Agent | None:
    """One active user by username, extension or worker id (a name not in a loaded
    directory: created since it was read, or nobody)."""
    rows = await session.execute(
        ACTIVE_AGENTS.where(
            or_(User.username == ident, User.extension == ident, User.worker_id == ident)
        ).limit(3)
    )
    return directory_of(rows.all()).find(ident)


@dataclass(frozen=True, slots=True)
class AgentContact:
    """An active user and how a PBX reaches them: extension, provider worker id."""

    username: str
    extension: str | None = None
    worker_id: str | None = None


async def agent_contact(session: AsyncSession, ident: str) -> AgentContact | None:
    """The active user ``ident`` names (username, extension or worker id; a username wins),
    with their extension and worker id, or None for nobody active."""
    query = select(User.username, User.extension, User.worker_id).where(
        User.active.is_(True),
        or_(User.username == ident, User.extension == ident, User.worker_id == ident),
    )
    rows = sorted((await session.execute(query.limit(3))).all(), key=lambda r: r.username != ident)
    return AgentContact(rows[0].username, rows[0].extension, rows[0].worker_id) if rows else None
