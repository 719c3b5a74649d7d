"""A Redis outage: events are still accepted and journaled, pops still reach this instance's
agents, ``/readyz`` says why, the log says it once each way, and the service recovers.

A Redis server of the test's own (``tests.support.own_redis``) under a real screenpop server
process on PostgreSQL: Redis is down when the server starts and comes up later; then, under
load from several webhook clients, it is killed for a few seconds and started again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect

from app import migrate
from app.db import create_engine
from app.queues import service as queues
from tests.calls.test_durability import _assert_all_kept, _event, _journal, _post
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, add_user
from tests.live.test_two_instances import (
    PASSWORD,
    SALES_DID,
    event,
    frames_for,
    login,
    post_event,
    pumping,
)
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.own_redis import OwnRedis
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """Not started: the test starts it."""
    server = OwnRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A migrated PostgreSQL database with agent alice in queue sales."""
    url = await create_pg_database()
    try:
        await migrate.upgrade_async(url)
        engine = create_engine(url)
        try:
            await add_user(engine, "alice", "agent", PASSWORD, extension="201", queues=["sales"])
            async with AsyncSession(engine) as session:
                await queues.upsert_queue(session, name="sales", numbers=[SALES_DID])
                await session.commit()
        finally:
            await engine.dispose()
        yield url
    finally:
        await drop_pg_database(url)


async def _readiness(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text  # Redis alone never makes it 503
    body: dict[str, str] = response.json()
    return body


async def _until_ready(http: httpx.AsyncClient, wait_s: float = 20.0) -> dict[str, str]:
    deadline = time.monotonic() + wait_s
    while (body := await _readiness(http))["status"] != "ready":
        assert time.monotonic() < deadline, f"not ready again: {body}"
        await asyncio.sleep(0.2)
    return body


async def test_a_redis_outage_keeps_events_and_local_pops_and_recovers(
    own_redis: OwnRedis, database: str
) -> None:
    env = {
        "SCREENPOP_DATABASE_URL": database,
        "SCREENPOP_REDIS_URL": own_redis.url,
        "SCREENPOP_REDIS_PREFIX": f"screenpop-outage-{uuid.uuid4().hex[:8]}",
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
    }
    acked: list[str] = []
    statuses: list[int] = []
    stop = asyncio.Event()

    async def poster(http: httpx.AsyncClient) -> None:
        call_id = uuid.uuid4().hex[:10]
        kinds = itertools.cycle(["queued", "held", "resumed"])
        while not stop.is_set():
            body = _event(call_id, next(kinds))
            status = await _post(http, body)
            statuses.append(status)
            if 200 <= status < 300:
                acked.append(str(body["event_id"]))
            await asyncio.sleep(0.05)

    app = ServerProcess(env)
    log_start = app.log_path.stat().st_size if app.log_path.exists() else 0
    with app:
        async with httpx.AsyncClient(base_url=app.url, timeout=15) as http:
            # Redis down from the start: served, degraded, and says why.
            at_start = await _readiness(http)
            assert await _post(http, _event(uuid.uuid4().hex[:10], "queued")) == 202
            await asyncio.to_thread(own_redis.start)
            ready_first = await _until_ready(http)

            token = await login(http, app.url, "alice")
            async with connect(f"{app.ws_url}/ws/agent?token={token}") as agent:
                await pumping(agent)
                clients = [asyncio.create_task(poster(http)) for _ in range(4)]
                await asyncio.sleep(1.0)
                before = len(acked)
                own_redis.kill()
                await asyncio.sleep(1.0)
                during = await _readiness(http)
                # A call offered to alice meanwhile still pops on her page (this instance).
                call_id = f"out-{uuid.uuid4().hex[:8]}"
                # Event ids as the journal check reads them: "<call id>-<kind>-<n>".
                queued = event(call_id, "queued", event_id=f"{call_id}-queued-1")
                await post_event(http, app.url, queued)
                offered = event(call_id, "offered", agent="alice", event_id=f"{call_id}-offered-2")
                await post_event(http, app.url, offered)
                local = await frames_for(agent, call_id, settle_s=0.2)
                await asyncio.sleep(1.5)
                acked_during = len(acked) - before
                await asyncio.to_thread(own_redis.start)
                ready_after = await _until_ready(http)
                await asyncio.sleep(0.5)
                stop.set()
                await asyncio.gather(*clients)

    bad = sorted({s for s in statuses if not (200 <= s < 300 or s == 503)})
    assert not bad, f"answers other than 2xx/503 around the outage: {bad}"
    assert before > 0 and acked_during > 0, "events are accepted before and during the outage"
    _assert_all_kept(acked, await _journal(database))

    for down in (at_start, during):
        assert down["status"] == "degraded" and down["redis"] == "unreachable", down
        assert "Redis unreachable" in down["detail"] or "reconnecting" in down["detail"], down
    assert ready_first["redis"] == ready_after["redis"] == "ok"
    assert [m["type"] for m in local if m["type"] == "pop"] == ["pop"], local

    log = app.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log
    assert log.count("Redis unreachable; pops reach this instance's websockets only") == 2, log
    assert log.count("Redis reachable again after") == 2, log
