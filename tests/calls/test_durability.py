"""A 2xx to a PBX means the event is on disk: crash PostgreSQL and find every answered event.

Each test runs a PostgreSQL server of its own (``tests.support.own_postgres``) and a real
screenpop server process on it with group commit on (the default), posts signed events, kills
the whole database server with SIGKILL, starts it again (crash recovery) and reads the
journal: every event that was answered 2xx must be there, applied.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from app import migrate
from telephony.generic import sign_generic
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from tests.support.own_postgres import OwnPostgres
from tests.support.server import ServerProcess

GENERIC = "/telephony/generic/events"
_serial = itertools.count(1)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
async def served(own_postgres: OwnPostgres) -> AsyncIterator[tuple[OwnPostgres, ServerProcess]]:
    url = await own_postgres.create_database("screenpop")
    await migrate.upgrade_async(url)
    env = {
        "SCREENPOP_DATABASE_URL": url,
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
        "SCREENPOP_GROUP_COMMIT": "true",
    }
    with ServerProcess(env) as app:
        yield own_postgres, app


def _event(call_id: str, kind: str) -> dict[str, object]:
    return {
        "event_id": f"{call_id}-{kind}-{next(_serial)}",
        "call_id": call_id,
        "kind": kind,
        "caller": "+447700900123",
    }


async def _post(http: httpx.AsyncClient, body: dict[str, object]) -> int:
    raw = json.dumps(body).encode()
    headers = {
        "content-type": "application/json",
        "x-screenpop-signature": sign_generic(TEST_WEBHOOK_SECRET, raw, int(time.time())),
    }
    try:
        response = await http.post(GENERIC, content=raw, headers=headers)
    except httpx.HTTPError:
        return 0
    return response.status_code


async def _journal(database: OwnPostgres | str) -> dict[str, bool]:
    """event_id -> applied, read from the (restarted) server: an own server's ``screenpop``
    database, or the database at a SQLAlchemy URL."""
    url = database.url("screenpop") if isinstance(database, OwnPostgres) else database
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        rows = await conn.fetch("SELECT event_id, applied FROM call_events")
        calls = {r["id"] for r in await conn.fetch("SELECT id FROM calls")}
    finally:
        await conn.close()
    journal = {r["event_id"]: bool(r["applied"]) for r in rows}
    for event_id in journal:
        call_id = "generic:" + event_id.rsplit("-", 2)[0]
        assert call_id in calls, f"{event_id} journaled but its call {call_id} is missing"
    return journal


def _assert_all_kept(acked: list[str], journal: dict[str, bool]) -> None:
    lost = [e for e in acked if e not in journal]
    unapplied = [e for e in acked if journal.get(e) is False]
    assert not lost, f"{len(lost)} of {len(acked)} events answered 2xx were lost: {lost[:5]}"
    assert not unapplied, f"{len(unapplied)} answered events are not applied: {unapplied[:5]}"


async def test_every_answered_event_survives_a_crash_while_the_wal_writer_is_stalled(
    served: tuple[OwnPostgres, ServerProcess],
) -> None:
    """The WAL writer frozen (a slow disk): an answer may only go out once the event's commit
    is flushed by someone, so a crash right after the answers loses none of them."""
    own_postgres, app = served
    walwriter = await own_postgres.backend_pid("walwriter")
    acked: list[str] = []
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
        assert await _post(http, _event(uuid.uuid4().hex[:10], "queued")) == 202  # warm up
        os.kill(walwriter, signal.SIGSTOP)
        try:
            bodies = [_event(uuid.uuid4().hex[:10], "queued") for _ in range(40)]
            for start in range(0, len(bodies), 8):
                batch = bodies[start : start + 8]
                statuses = await asyncio.gather(*(_post(http, b) for b in batch))
                acked += [str(b["event_id"]) for b, s in zip(batch, statuses, strict=True)
                          if 200 <= s < 300]  # fmt: skip
        finally:
            own_postgres.kill()  # the frozen WAL writer goes with the rest
    assert len(acked) == 40, "every event is answered while the database is up"
    own_postgres.start()
    _assert_all_kept(acked, await _journal(own_postgres))


async def test_every_answered_event_survives_a_kill_under_load(
    served: tuple[OwnPostgres, ServerProcess],
) -> None:
    """Events posted by several clients at once; the database killed in the middle, then
    started again while the clients keep posting."""
    own_postgres, app = served
    acked: list[str] = []
    statuses: list[int] = []
    stop = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        call_id = uuid.uuid4().hex[:10]
        kinds = itertools.cycle(["queued", "held", "resumed"])
        while not stop.is_set():
            body = _event(call_id, next(kinds))
            status = await _post(http, body)
            statuses.append(status)
            if 200 <= status < 300:
                acked.append(str(body["event_id"]))
            else:
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
        clients = [asyncio.create_task(client(http)) for _ in range(6)]
        await asyncio.sleep(1.5)
        before = len(acked)
        own_postgres.kill()
        await asyncio.sleep(1.0)
        own_postgres.start()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*clients)
    assert before > 0 and len(acked) > before, "events were answered before and after"
    assert any(not 200 <= s < 300 for s in statuses), "the outage was seen by the clients"
    _assert_all_kept(acked, await _journal(own_postgres))
