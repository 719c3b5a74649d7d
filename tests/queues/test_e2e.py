"""End to end: signed generic events into a real server, figures out of /ws/supervisor and
GET /api/queues; the same figures after a restart (rebuilt from the database)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.queues.service import upsert_queue
from app.queues.stats import QueueStats
from app.users import security
from app.users.models import User
from telephony.generic import sign_generic
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, make_settings
from tests.support.server import ServerProcess

EXT = {"alice": "201", "bob": "202", "carol": "203", "dave": "204"}


class Floor:
    """A running server plus helpers to post events and read what supervisors see."""

    def __init__(self, server: ServerProcess, database_url: str, t0: datetime) -> None:
        self.server = server
        self.key = make_settings(database_url).jwt_key()
        self.t0 = t0
        self.http = httpx.AsyncClient(base_url=server.url, timeout=10)
        self._n = 0

    def token(self, username: str, role: str) -> str:
        return security.issue_token(self.key, username=username, role=role, ttl_s=600)

    async def post(self, call: str, kind: str, at: float, **fields: Any) -> None:
        self._n += 1
        body = {
            "event_id": f"{call}-{self._n}",
            "call_id": call,
            "kind": kind,
            "caller": fields.pop("caller", "+447700900123"),
            "occurred_at": (self.t0 + timedelta(seconds=at)).isoformat(),
            **fields,
        }
        raw = json.dumps(body).encode()
        response = await self.http.post(
            "/telephony/generic/events",
            content=raw,
            headers={
                "content-type": "application/json",
                "x-screenpop-signature": sign_generic(TEST_WEBHOOK_SECRET, raw, int(time.time())),
            },
        )
        assert response.status_code == 202, response.text

    async def queues(self, username: str, role: str = "supervisor") -> dict[str, Any]:
        response = await self.http.get(
            "/api/queues", headers={"Authorization": f"Bearer {self.token(username, role)}"}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def ws(self, username: str, role: str = "supervisor") -> Any:
        return connect(f"{self.server.ws_url}/ws/supervisor?token={self.token(username, role)}")


async def seed(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        for name, queues in (
            ("alice", ["sales"]),
            ("bob", ["support"]),
            ("carol", ["sales"]),
            ("dave", ["support"]),
        ):
            session.add(
                User(username=name, password_hash="!", role="agent", extension=EXT[name],
                     queues=queues)
            )  # fmt: skip
        session.add(User(username="sam", password_hash="!", role="supervisor", queues=["sales"]))
        session.add(User(username="sue", password_hash="!", role="supervisor", queues=["support"]))
        await upsert_queue(session, name="sales", service_level_s=20)
        await upsert_queue(session, name="support", service_level_s=30)
        await session.commit()


def env(database_url: str) -> dict[str, str]:
    return {
        "SCREENPOP_DATABASE_URL": database_url,
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_TIMEZONE": "Europe/London",
    }


def recent_start(span_s: float) -> datetime:
    """``span_s`` ago, or local midnight if today is younger than that."""
    now = datetime.now(UTC)
    return max(now - timedelta(seconds=span_s), QueueStats("Europe/London", now=now).day_start())


@pytest.fixture
async def floor(clean_engine: AsyncEngine, database_url: str) -> AsyncIterator[Floor]:
    await seed(clean_engine)
    server = ServerProcess(env(database_url)).start()
    floor = Floor(server, database_url, recent_start(270))
    try:
        yield floor
    finally:
        await floor.http.aclose()
        server.stop()


async def next_matching(
    ws: ClientConnection, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Read messages until one satisfies ``check`` (for up to 10 s)."""
    deadline = time.monotonic() + 10
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
        except TimeoutError:
            break
        last = json.loads(raw)
        if check(last):
            return last
    raise AssertionError(f"no matching message; last was {last}")


def q(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in document["queues"] if x["name"] == name)


async def play_hand_day(f: Floor) -> None:
    """tests/queues/days.py ``hand_day`` as signed generic events (agents by extension)."""
    await f.post("c1", "queued", 0, queue="sales")
    await f.post("c4", "queued", 5, queue="support")
    await f.post("c1", "offered", 2, agent=EXT["alice"])
    await f.post("c1", "answered", 8, agent=EXT["alice"])
    await f.post("c2", "queued", 10, queue="sales")
    await f.post("c2", "offered", 12, agent=EXT["bob"])
    await f.post("c3", "queued", 20, queue="sales")
    await f.post("c2", "queued", 27, agent=EXT["bob"], attributes={"offer_withdrawn": True})
    await f.post("c2", "offered", 30, agent=EXT["carol"])
    await f.post("c4", "offered", 35, agent=EXT["bob"])
    await f.post("c2", "answered", 40, agent=EXT["carol"])
    await f.post("c4", "answered", 40, agent=EXT["bob"])
    await f.post("c3", "abandoned", 50)
    await f.post("c4", "transferred", 70, attributes={"transfer_to": EXT["dave"]})
    await f.post("c4", "answered", 75, agent=EXT["dave"])
    await f.post("c2", "ended", 100)
    await f.post("c1", "ended", 128)
    withheld = {"raw": "anonymous", "withheld": True}
    await f.post("c6", "queued", 150, queue="sales", caller=withheld)
    await f.post("c6", "offered", 150, agent=EXT["alice"], caller=withheld)
    await f.post("c6", "answered", 155, agent=EXT["alice"], caller=withheld)
    await f.post("c4", "ended", 175)
    await f.post("c5", "queued", 200, queue="support")


SALES = {"offered": 4, "answered": 3, "abandoned": 1, "abandon_rate": 0.25,
         "service_level": 0.5, "asa_s": 14.3, "aht_s": 90.0}  # fmt: skip
SUPPORT = {"offered": 2, "answered": 1, "abandoned": 0, "abandon_rate": 0.0,
           "service_level": 0.0, "asa_s": 35.0, "aht_s": 135.0}  # fmt: skip


def figures(queue: dict[str, Any]) -> dict[str, Any]:
    return {k: queue[k] for k in SALES}


def timeless(document: dict[str, Any]) -> dict[str, Any]:
    """A document without the figures that move with the clock."""
    out = json.loads(json.dumps(document))
    out.pop("type", None)
    for queue in out["queues"]:
        queue.pop("longest_wait_s")
        for waiting in queue["waiting"]:
            waiting.pop("waiting_s")
    for agent in out["agents"]:
        agent.pop("in_state_s", None)
    return dict(out)


async def test_scripted_day_figures_scoping_and_restart(floor: Floor, database_url: str) -> None:
    async with floor.ws("sam") as sam, floor.ws("sue") as sue:
        first = json.loads(await sam.recv())  # the snapshot on connect
        assert first["type"] == "queues" and [x["name"] for x in first["queues"]] == ["sales"]
        assert q(first, "sales")["offered"] == 0
        await play_hand_day(floor)
        sales_doc = await next_matching(
            sam, lambda m: figures(q(m, "sales")) == SALES and not q(m, "sales")["waiting"]
        )
        support_doc = await next_matching(
            sue,
            lambda m: (
                figures(q(m, "support")) == SUPPORT
                and [w["call_id"] for w in q(m, "support")["waiting"]] == ["generic:c5"]
            ),
        )
    # Scoping: each supervisor sees their queue and its agents only.
    assert [x["name"] for x in sales_doc["queues"]] == ["sales"]
    assert [a["username"] for a in sales_doc["agents"]] == ["alice", "carol"]
    assert [x["name"] for x in support_doc["queues"]] == ["support"]
    assert [a["username"] for a in support_doc["agents"]] == ["bob", "dave"]
    agents = {a["username"]: a for a in sales_doc["agents"] + support_doc["agents"]}
    # Ring-no-answer, transfer and hang-ups move agents; handled counts each connection.
    assert {u: (a["state"], a["call_id"], a["handled"]) for u, a in agents.items()} == {
        "alice": ("on_call", "generic:c6", 2),
        "bob": ("wrap_up", "generic:c4", 1),
        "carol": ("wrap_up", "generic:c2", 1),
        "dave": ("wrap_up", "generic:c4", 1),
    }
    assert q(support_doc, "support")["waiting"][0]["waiting_s"] >= 60
    health = sales_doc["pop_health"]
    assert (health["calls"], health["withheld"], health["unmatched"]) == (4, 1, 3)
    # No agent page is open: no pop was written to a socket, so none is timed (pop health is
    # measured up to the socket write: tests/calls/test_pop_health.py).
    assert health["pops"] == 0 and health["pop_p95_ms"] is None
    live_admin = await floor.queues("root", role="admin")
    assert figures(q(live_admin, "sales")) == SALES
    # Restart: the figures are rebuilt from the database and agree exactly.
    floor.server.stop()
    with ServerProcess(env(database_url)) as again:
        floor.server = again
        floor.http = httpx.AsyncClient(base_url=again.url, timeout=10)
        rebuilt = await floor.queues("root", role="admin")
        assert timeless(rebuilt) == timeless(live_admin)
        assert figures(q(rebuilt, "support")) == SUPPORT


async def test_refuses_bad_tokens_and_agents_and_coalesces_updates(floor: Floor) -> None:
    # One server for both checks: starting one costs seconds.
    async with connect(f"{floor.server.ws_url}/ws/supervisor?token=nonsense") as ws:
        with pytest.raises(ConnectionClosed) as bad:
            await ws.recv()
    assert bad.value.rcvd is not None and bad.value.rcvd.code == 4401
    async with floor.ws("alice", role="agent") as ws:
        with pytest.raises(ConnectionClosed) as agent:
            await ws.recv()
    assert agent.value.rcvd is not None and agent.value.rcvd.code == 4403
    async with floor.ws("sam") as sam:
        await sam.recv()  # snapshot
        arrivals: list[float] = []
        documents: list[dict[str, Any]] = []

        async def read() -> None:
            while True:
                documents.append(json.loads(await sam.recv()))
                arrivals.append(time.monotonic())

        reader = asyncio.create_task(read())
        started = time.monotonic()
        calls = 0
        # Flood: at least 120 events, for at least 1.5 s, as fast as the server takes them
        # (each changes sales), so the limit matters however fast the server is.
        while calls < 40 or time.monotonic() - started < 1.5:
            n = calls
            calls += 1
            await asyncio.gather(
                floor.post(f"f{n}", "queued", 230, queue="sales"),
                floor.post(f"g{n}", "queued", 230, queue="sales"),
                floor.post(f"h{n}", "queued", 230, queue="sales"),
            )
        flood_s = time.monotonic() - started
        await asyncio.sleep(1.0)
        reader.cancel()
    # At most 4 messages a second over the flood (counted over the whole run: arrival times
    # seen by a client on a busy machine bunch, so no one-second window is checked).
    assert len(arrivals) <= 4 * (flood_s + 1.0) + 1
    # Coalesced, not lost: the last message has every call.
    assert q(documents[-1], "sales")["offered"] == 3 * calls
    assert len(q(documents[-1], "sales")["waiting"]) == 3 * calls
