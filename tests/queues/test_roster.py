"""The roster is re-read only when the users or queues it comes from changed (PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.queues.runtime import QueuesRuntime
from app.queues.service import upsert_queue
from app.settings import Settings
from app.users import service as users


def _runtime(database_url: str) -> QueuesRuntime:
    state: Any = {"settings": Settings(database_url=database_url)}
    return QueuesRuntime(state)


async def test_an_unchanged_roster_is_not_read_again(
    session: AsyncSession, backend: str, database_url: str
) -> None:
    runtime = _runtime(database_url)
    await users.upsert_user(
        session, username="ros-ann", role="agent", password="pw-xxxxxxxx", queues=["ros-q"]
    )
    await upsert_queue(session, name="ros-q", service_level_s=30)
    await session.flush()
    assert await runtime._load_roster(session) is True
    assert runtime.roster.queues_of("ros-ann") == frozenset({"ros-q"})
    # SQLite cannot fingerprint: it reads every time.
    assert await runtime._load_roster(session) is (backend != "postgresql")
    await users.upsert_user(
        session, username="ros-ann", role="agent", password=None, queues=["ros-q", "ros-r"]
    )
    await session.flush()
    assert await runtime._load_roster(session) is True
    assert runtime.roster.queues_of("ros-ann") == frozenset({"ros-q", "ros-r"})
    await upsert_queue(session, name="ros-q", service_level_s=45)
    await session.flush()
    assert await runtime._load_roster(session) is True
    assert runtime.roster.service_levels["ros-q"] == 45
