"""Pop health is timed up to the agent's socket: from the event's arrival at the webhook to the
pop being written to the agent's websocket, live and after a restart.

A real uvicorn on loopback (in process, so the test can put frames ahead of the pop on the
agent's channel), signed webhooks over HTTP, and a real websockets client that reads nothing
for a while: the pop cannot be written until it does, and the figure supervisors see must
include that wait.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from app.calls.models import PopDelivery
from app.main import create_app
from app.queues.service import upsert_queue
from tests.calls.support import GENERIC, bearer, event, new_call_id, signed, token
from tests.conftest import add_user, make_settings
from tests.live.test_pump import eventually
from tests.support.server import free_port

# Frames queued ahead of the pop: far more than the client's fixed receive buffer, the
# server's send buffer (4 MB at most here) and the client library's queue hold together.
PADDING = "x" * 1_000_000
PADS = 12
HOLD_S = 1.0


@asynccontextmanager
async def served(database_url: str, **settings: Any) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """The app on a real uvicorn (the websocket implementation ``screenpop serve`` uses)."""
    port = free_port()
    app = create_app(make_settings(database_url, **settings))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, wait_s=20)
        yield server, port
    finally:
        # Leaving the lifespan writes the queued receipts (the latencies among them).
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@asynccontextmanager
async def slow_page(port: int, username: str) -> AsyncIterator[ClientConnection]:
    """An agent page with a small fixed receive buffer (no autotuning) that queues at most one
    message: when it stops reading, TCP fills and the server's writes wait."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    url = f"ws://127.0.0.1:{port}/ws/agent?token={token(username)}"
    options: dict[str, Any] = {"max_queue": 1, "max_size": None, "compression": None}
    async with connect(url, sock=sock, **options) as ws:
        yield ws


async def pop_health(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.get("/api/queues", headers=bearer("sam", "supervisor"))
    assert response.status_code == 200, response.text
    return dict(response.json()["pop_health"])


async def test_pop_health_includes_the_wait_for_the_agents_socket(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await add_user(clean_engine, "alice", extension="201", queues=["sales"])
    await add_user(clean_engine, "sam", role="supervisor", queues=["sales"])
    async with AsyncSession(clean_engine) as session:
        await upsert_queue(session, name="sales")
        await session.commit()
    call_id = new_call_id()
    async with served(database_url) as (server, port):
        hub = server.lifespan.state["hub"]  # type: ignore[attr-defined]
        async with slow_page(port, "alice") as alice:
            await eventually(lambda: hub.subscriber_count("agent:alice") == 1)
            for n in range(PADS):
                await hub.publish("agent:alice", {"type": "padding", "n": n, "pad": PADDING})
            raw, headers = signed(event(call_id, "offered", agent="201", queue="sales"))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                response = await http.post(GENERIC, content=raw, headers=headers, timeout=10)
            answered = time.time()  # the event arrived before this
            assert response.status_code == 202, response.text
            await asyncio.sleep(HOLD_S)  # alice reads nothing: the pop waits behind the padding
            reading = time.time()  # the pop is written to her socket after this
            async with asyncio.timeout(30):
                while True:
                    message = json.loads(await alice.recv())
                    if message["type"] == "pop":
                        break
            assert message["call"]["id"] == f"generic:{call_id}"
            held_ms = (reading - answered) * 1000
            deadline = time.monotonic() + 10
            while (live := await pop_health(port))["pops"] != 1:
                assert time.monotonic() < deadline, live
                await asyncio.sleep(0.05)
    # What supervisors see covers the time the pop waited for the socket.
    assert live["pop_p50_ms"] is not None and live["pop_p50_ms"] >= held_ms
    async with AsyncSession(clean_engine) as session:
        delivery = (await session.execute(select(PopDelivery))).scalar_one()
    assert delivery.username == "alice"
    assert delivery.latency_ms is not None and delivery.latency_ms >= held_ms
    # A restarted instance rebuilds the same figure from the delivery row.
    async with served(database_url) as (_, port):
        rebuilt = await pop_health(port)
    assert (rebuilt["pops"], rebuilt["pop_p50_ms"], rebuilt["pop_p95_ms"]) == (
        1,
        live["pop_p50_ms"],
        live["pop_p95_ms"],
    )
