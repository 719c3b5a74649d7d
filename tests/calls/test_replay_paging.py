"""The agent replay on a real uvicorn (in process, so the test can signal a broker resync):
any number of live calls pages through the 256-frame queue, and a resync also sends the
state of calls that ended while messages were being missed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from app.calls.models import Call
from app.live.subscription import DEFAULT_QUEUE_SIZE
from app.main import create_app
from tests.calls.support import GENERIC, event, new_call_id, signed, token
from tests.conftest import add_user, make_settings
from tests.live.test_pump import eventually
from tests.support.server import free_port

LIVE_CALLS = DEFAULT_QUEUE_SIZE + 44


class Served:
    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port

    @property
    def hub(self) -> Any:
        return self.server.lifespan.state["hub"]  # type: ignore[attr-defined]


@pytest.fixture
async def served(clean_engine: AsyncEngine, database_url: str) -> AsyncIterator[Served]:
    await add_user(clean_engine, "dora", extension="301", queues=["sales"])
    port = free_port()
    app = create_app(make_settings(database_url, pop_budget_ms=5000))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, wait_s=20)
    yield Served(server, port)
    server.should_exit = True
    await asyncio.wait_for(task, 20)


async def frames_until(
    ws: ClientConnection, done: Any, seen: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    try:
        async with asyncio.timeout(60):
            while not done(seen):
                seen.append(json.loads(await ws.recv()))
    except TimeoutError:
        kinds = sorted({m.get("type") for m in seen})
        ids = {(m.get("call") or {}).get("id") for m in seen}
        raise AssertionError(f"{len(seen)} frames ({kinds}, {len(ids)} calls)") from None
    return seen


async def test_an_agent_with_more_live_calls_than_the_queue_gets_them_all_and_resyncs(
    served: Served, clean_engine: AsyncEngine
) -> None:
    call_ids = [new_call_id() for _ in range(LIVE_CALLS)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}", timeout=30) as http:
        for start in range(0, LIVE_CALLS, 25):
            page = call_ids[start : start + 25]
            bodies = [signed(event(c, "offered", agent="dora")) for c in page]
            answers = await asyncio.gather(
                *(http.post(GENERIC, content=raw, headers=h) for raw, h in bodies)
            )
            assert {a.status_code for a in answers} == {202}

    url = f"ws://127.0.0.1:{served.port}/ws/agent?token={token('dora')}"
    async with connect(url, max_queue=1024) as ws:
        frames: list[dict[str, Any]] = []

        def all_popped(seen: list[dict[str, Any]]) -> bool:
            popped = {m["call"]["id"] for m in seen if m.get("type") == "pop"}
            return popped >= {f"generic:{c}" for c in call_ids}

        await frames_until(ws, all_popped, frames)

        # Five calls end while the broker is down (the publish never reached anyone).
        ended = [f"generic:{c}" for c in call_ids[:5]]
        async with AsyncSession(clean_engine) as session:
            await session.execute(update(Call).where(Call.id.in_(ended)).values(state="ended"))
            await session.commit()
        served.hub.request_resync()

        def all_ended(seen: list[dict[str, Any]]) -> bool:
            states = {m["call_id"] for m in seen if m.get("type") == "call.state"}
            return states >= set(ended)

        after = await frames_until(ws, all_ended, [])
    final = {m["call_id"]: m for m in after if m.get("type") == "call.state"}
    assert set(final) == set(ended)
    assert {m["state"] for m in final.values()} == {"ended"}
