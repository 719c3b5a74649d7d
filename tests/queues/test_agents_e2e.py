"""Who is an agent on the wallboard, and Away across reconnects: real agent screens (the
``websockets`` client on ``/ws/agent`` of a real uvicorn), figures from ``GET /api/queues``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import connect

from app.queues import runtime as queues_runtime
from app.queues.service import upsert_queue
from tests.calls.support import bearer, token
from tests.calls.test_pop_health import served
from tests.conftest import add_user
from tests.live.test_pump import eventually


async def agents(port: int, who: str, role: str = "supervisor") -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.get("/api/queues", headers=bearer(who, role))
    assert response.status_code == 200, response.text
    return {a["username"]: a["state"] for a in response.json()["agents"]}


async def settled(port: int, who: str, check: Any, role: str = "supervisor") -> dict[str, str]:
    """The wallboard's agents once ``check`` accepts them (presence crosses the hub)."""
    deadline = time.monotonic() + 10
    while not check(seen := await agents(port, who, role)):
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.05)
    return seen


def page(port: int, username: str, role: str) -> Any:
    return connect(f"ws://127.0.0.1:{port}/ws/agent?token={token(username, role)}")


async def test_a_supervisor_is_an_agent_only_with_an_extension(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await add_user(clean_engine, "alice", extension="201", queues=["sales"])
    await add_user(clean_engine, "sam", role="supervisor", queues=["sales"])
    await add_user(clean_engine, "stan", role="supervisor", extension="299", queues=["sales"])
    await add_user(clean_engine, "root", role="admin")
    async with AsyncSession(clean_engine) as session:
        await upsert_queue(session, name="sales")
        await session.commit()
    async with (
        served(database_url) as (_, port),
        page(port, "alice", "agent"),
        page(port, "sam", "supervisor"),  # opens the agent screen: present, no extension
        page(port, "stan", "supervisor"),  # takes calls on 299
    ):
        for who, role in (("sam", "supervisor"), ("root", "admin")):
            listed = await settled(port, who, lambda a: "stan" in a, role)
            assert "sam" not in listed, (who, listed)
            assert listed["alice"] == listed["stan"] == "available"


async def test_away_survives_a_reconnect(clean_engine: AsyncEngine, database_url: str) -> None:
    await add_user(clean_engine, "alice", extension="201", queues=["sales"])
    await add_user(clean_engine, "sam", role="supervisor", queues=["sales"])
    async with AsyncSession(clean_engine) as session:
        await upsert_queue(session, name="sales")
        await session.commit()
    async with served(database_url) as (server, port):
        stats = queues_runtime.runtime_of(server.lifespan.state).stats  # type: ignore[attr-defined]

        async def pages_open(n: int) -> None:
            await eventually(lambda: stats.agents["alice"].connections == n)

        async with page(port, "alice", "agent"):
            await settled(port, "sam", lambda a: a.get("alice") == "available")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                away = await http.post(
                    "/api/agents/me/status", json={"state": "away"}, headers=bearer("alice")
                )
            assert away.status_code == 200
            await settled(port, "sam", lambda a: a.get("alice") == "away")
        await pages_open(0)
        # The page dropped and connects again (a reload, a network blip): still away.
        async with page(port, "alice", "agent"):
            await pages_open(1)
            assert (await agents(port, "sam"))["alice"] == "away"
