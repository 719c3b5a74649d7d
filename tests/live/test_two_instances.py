"""Two real server processes, one PostgreSQL database, one Redis.

An event posted to instance A pops on an agent websocket connected to B (and on a second tab
connected to A, once each); supervisors on either instance see the same figures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from app import migrate
from app.db import create_engine
from app.queues import service as queues
from telephony.generic import sign_generic
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, add_user
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.server import ServerProcess

PASSWORD = "two-instances-pw"
SALES_DID = "+448081570001"
CALLER = "+447700900123"

pytestmark = pytest.mark.timeout(180)


class Instances:
    def __init__(self, a: ServerProcess, b: ServerProcess) -> None:
        self.a, self.b = a, b


@pytest.fixture(scope="module")
async def instances(redis_url: str) -> AsyncIterator[Instances]:
    """A fresh migrated PostgreSQL database with alice, sam and queue sales; two servers."""
    url = await create_pg_database()
    servers: list[ServerProcess] = []
    try:
        await migrate.upgrade_async(url)
        engine = create_engine(url)
        try:
            await add_user(engine, "alice", "agent", PASSWORD, extension="201", queues=["sales"])
            await add_user(engine, "sam", "supervisor", PASSWORD, queues=["sales"])
            async with AsyncSession(engine) as session:
                await queues.upsert_queue(session, name="sales", numbers=[SALES_DID])
                await session.commit()
        finally:
            await engine.dispose()
        env = {
            "SCREENPOP_DATABASE_URL": url,
            "SCREENPOP_REDIS_URL": redis_url,
            # Our own channels: other runs sharing this Redis never see our pops.
            "SCREENPOP_REDIS_PREFIX": f"screenpop-e2e-{uuid.uuid4().hex[:10]}",
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        }
        servers = [ServerProcess(env), ServerProcess(env)]
        # Generous: the whole team shares two cores while the suite runs.
        await asyncio.gather(*(asyncio.to_thread(s.start, 60.0) for s in servers))
        yield Instances(*servers)
    finally:
        for server in servers:
            server.stop()
        await drop_pg_database(url)


async def login(http: httpx.AsyncClient, base: str, username: str) -> str:
    response = await http.post(
        f"{base}/api/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def post_event(http: httpx.AsyncClient, base: str, event: dict[str, Any]) -> None:
    body = orjson.dumps(event)
    signature = sign_generic(TEST_WEBHOOK_SECRET, body, int(time.time()))
    response = await http.post(
        f"{base}/telephony/generic/events",
        content=body,
        headers={"Content-Type": "application/json", "X-Screenpop-Signature": signature},
    )
    assert response.status_code == 202, response.text


def event(call_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "call_id": call_id,
        "kind": kind,
        "caller": CALLER,
        "dialed": SALES_DID,
        "queue": "sales",
        "occurred_at": datetime.now(UTC).isoformat(),
        **extra,
    }


async def pumping(ws: ClientConnection) -> None:
    """Wait until the server's pump runs: it answers a message that is not JSON."""
    await ws.send("sync")
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("type") == "error":
            return


async def frames_for(ws: ClientConnection, call_id: str, settle_s: float) -> list[dict[str, Any]]:
    """Frames about ``call_id``: wait for its pop, then collect for ``settle_s`` more."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    settled_at: float | None = None
    while True:
        now = time.monotonic()
        end = settled_at if settled_at is not None else deadline
        if now >= end:
            break
        try:
            frame = await asyncio.wait_for(ws.recv(), end - now)
        except TimeoutError:
            break
        message = orjson.loads(frame)
        about = message.get("call_id") or (message.get("call") or {}).get("id")
        if about != f"generic:{call_id}":
            continue
        out.append(message)
        if message.get("type") == "pop" and settled_at is None:
            settled_at = time.monotonic() + settle_s
    return out


async def test_event_posted_to_a_pops_on_agent_connected_to_b_once(
    instances: Instances,
) -> None:
    a, b = instances.a, instances.b
    call_id = f"two-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as http:
        token = await login(http, b.url, "alice")
        async with (
            connect(f"{b.ws_url}/ws/agent?token={token}") as on_b,
            connect(f"{a.ws_url}/ws/agent?token={token}") as on_a,
        ):
            # Both sockets subscribed and replayed before the offer, so B can only get the
            # pop through Redis, not through its replay on connect.
            await asyncio.gather(pumping(on_b), pumping(on_a))
            await post_event(http, a.url, event(call_id, "queued"))
            await post_event(http, a.url, event(call_id, "offered", agent="alice"))
            got_b, got_a = await asyncio.gather(
                frames_for(on_b, call_id, settle_s=0.5), frames_for(on_a, call_id, settle_s=0.5)
            )
    for got in (got_b, got_a):
        pops = [m for m in got if m["type"] == "pop"]
        assert pops, f"no pop for {call_id}: {got}"
        # The same pop once, never as two different versions.
        assert len(pops) == 1, pops
        assert pops[0]["call"]["id"] == f"generic:{call_id}"
        assert pops[0]["call"]["caller"]["e164"] == CALLER
    assert got_a[0]["version"] == got_b[0]["version"]


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The figures that must agree across instances (waiting times tick with the clock)."""
    queues = []
    for row in document["queues"]:
        fixed = {k: v for k, v in row.items() if k not in ("waiting", "longest_wait_s")}
        fixed["waiting"] = sorted(w["call_id"] for w in row.get("waiting", []))
        queues.append(fixed)
    ticking = ("since", "in_state_s")
    agents = [{k: v for k, v in row.items() if k not in ticking} for row in document["agents"]]
    return {"queues": queues, "agents": agents}


async def test_supervisors_on_either_instance_see_the_same_figures(
    instances: Instances,
) -> None:
    a, b = instances.a, instances.b
    async with httpx.AsyncClient(timeout=10) as http:
        token = await login(http, a.url, "sam")
        headers = {"Authorization": f"Bearer {token}"}
        # Events split across both instances; each instance must fold the other's too.
        answered, waiting = f"sup-{uuid.uuid4().hex[:8]}", f"sup-{uuid.uuid4().hex[:8]}"
        await post_event(http, a.url, event(answered, "queued"))
        await post_event(http, b.url, event(answered, "offered", agent="alice"))
        await post_event(http, a.url, event(answered, "answered", agent="alice"))
        await post_event(http, b.url, event(waiting, "queued"))

        deadline = time.monotonic() + 10
        while True:
            docs = []
            for base in (a.url, b.url):
                response = await http.get(f"{base}/api/queues", headers=headers)
                assert response.status_code == 200, response.text
                docs.append(response.json())
            sales = [next(q for q in d["queues"] if q["name"] == "sales") for d in docs]
            ready = all(
                q["answered"] >= 1 and f"generic:{waiting}" in {w["call_id"] for w in q["waiting"]}
                for q in sales
            )
            if ready and comparable(docs[0]) == comparable(docs[1]):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"instances disagree or miss the calls:\nA={docs[0]}\nB={docs[1]}")
            await asyncio.sleep(0.1)
    assert sales[0]["offered"] >= 1
