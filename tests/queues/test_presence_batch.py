"""The batched presence write: a row the database refuses is dropped, the rest are written."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import utcnow
from app.queues import runtime as queues_runtime
from app.queues.models import AgentPresence
from app.queues.presence import AgentView
from tests.calls.support import running_app


async def test_a_row_the_database_refuses_does_not_hold_back_the_others(
    clean_engine: AsyncEngine, database_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite does not enforce column sizes")
    async with running_app(database_url) as app:
        runtime = queues_runtime.runtime_of(app.state)
        # A name no event can bring in any more (the edge refuses it), put in directly.
        for name in ("alice", "x" * 65, "bob"):
            view = AgentView(name, "away", utcnow())
            runtime.stats.agents[name] = view
            runtime.stats.dirty_agents[name] = view
        await runtime.flush_presence()
        assert not runtime.stats.dirty_agents
    async with AsyncSession(clean_engine) as session:
        names = set((await session.execute(select(AgentPresence.username))).scalars())
    assert names == {"alice", "bob"}
