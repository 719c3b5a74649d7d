"""GET /api/queues and POST /api/agents/me/status over the ASGI app with its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.main import create_app
from app.queues import runtime as queues_runtime
from app.queues.models import AgentPresence
from app.queues.stats import QueueStats
from app.settings import Settings
from app.state import State
from app.users import security
from app.users.models import User
from tests.queues.days import T0, hand_day
from tests.queues.switchboard import Switchboard


class App:
    def __init__(self, http: httpx.AsyncClient, state: State) -> None:
        self.http = http
        self.state = state

    def headers(self, username: str, role: str) -> dict[str, str]:
        token = security.issue_token(
            self.state["settings"].jwt_key(), username=username, role=role, ttl_s=600
        )
        return {"Authorization": f"Bearer {token}"}

    async def get(self, username: str, role: str = "supervisor") -> httpx.Response:
        return await self.http.get("/api/queues", headers=self.headers(username, role))


async def running(settings: Settings) -> AsyncIterator[App]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield App(http, manager._state)  # type: ignore[arg-type]


async def add_users(engine: AsyncEngine, *rows: tuple[str, str, list[str]]) -> None:
    """Users without a usable password (tests mint tokens; hashing would only cost time)."""
    async with AsyncSession(engine) as session:
        for username, role, queues in rows:
            session.add(User(username=username, password_hash="!", role=role, queues=queues))
        await session.commit()


@pytest.fixture
async def floor(clean_engine: AsyncEngine, settings: Settings) -> AsyncIterator[App]:
    await add_users(
        clean_engine,
        ("alice", "agent", ["sales", "support"]),
        ("bob", "agent", ["support"]),
        ("carol", "agent", ["sales"]),
        ("sam", "supervisor", ["sales"]),
        ("sue", "supervisor", ["support"]),
        ("root", "admin", []),
    )
    async for app in running(settings):
        yield app


def recent_start() -> datetime:
    """Four and a half minutes ago, or local midnight if today is younger than that."""
    now = datetime.now(UTC)
    midnight = QueueStats("Europe/London", now=now).day_start()
    return max(now - timedelta(seconds=270), midnight)


async def publish_day(app: App) -> None:
    sb = Switchboard()
    hand_day(sb, recent_start())
    for channel, message in sb.messages:
        await app.state["hub"].publish(channel, message)


async def test_tokens_and_roles(floor: App) -> None:
    assert (await floor.http.get("/api/queues")).status_code == 401
    denied = await floor.get("alice", role="agent")
    assert denied.status_code == 403
    assert denied.json()["error"] == "forbidden"


async def test_a_supervisor_sees_only_their_queues_and_agents(floor: App) -> None:
    await publish_day(floor)
    sam = (await floor.get("sam")).json()
    assert [q["name"] for q in sam["queues"]] == ["sales"]
    assert [a["username"] for a in sam["agents"]] == ["alice", "carol"]
    sales = sam["queues"][0]
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (4, 3, 1)
    assert sam["pop_health"]["calls"] == 4
    sue = (await floor.get("sue")).json()
    assert [q["name"] for q in sue["queues"]] == ["support"]
    assert [a["username"] for a in sue["agents"]] == ["alice", "bob"]
    root = (await floor.get("root", role="admin")).json()
    assert {"sales", "support"} <= {q["name"] for q in root["queues"]}
    # Admin sees everyone whose presence is known, known users or not (dave is in no table).
    assert {a["username"] for a in root["agents"]} >= {"alice", "bob", "carol", "dave"}
    assert root["pop_health"]["calls"] == 6


def shape_of(document: dict[str, Any]) -> None:
    assert set(document) >= {"queues", "agents", "pop_health"}
    for q in document["queues"]:
        assert set(q) >= {
            "name", "waiting", "longest_wait_s", "offered", "answered", "abandoned",
            "service_level", "asa_s", "aht_s",
        }  # fmt: skip
    for a in document["agents"]:
        assert set(a) >= {"username", "state", "since", "call_id", "handled"}
    assert set(document["pop_health"]) >= {
        "match_rate", "multi_match_rate", "unmatched", "pop_p50_ms", "pop_p95_ms",
    }  # fmt: skip


async def test_design_shape(floor: App) -> None:
    await publish_day(floor)
    shape_of((await floor.get("root", role="admin")).json())


async def test_status_changes_persist_and_survive_a_restart(
    floor: App, clean_engine: AsyncEngine, settings: Settings
) -> None:
    headers = floor.headers("alice", "agent")
    answer = await floor.http.post("/api/agents/me/status", json={"state": "away"}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["state"] == "away"
    sam = (await floor.get("sam")).json()
    assert next(a for a in sam["agents"] if a["username"] == "alice")["state"] == "away"
    await queues_runtime.runtime_of(floor.state).flush_presence()
    async with AsyncSession(clean_engine) as session:
        row = (
            await session.execute(select(AgentPresence).where(AgentPresence.username == "alice"))
        ).scalar_one()
    assert row.state == "away"
    async for again in running(settings):
        sam = (await again.get("sam")).json()
        alice = next(a for a in sam["agents"] if a["username"] == "alice")
        assert (alice["state"], alice["since"]) == ("away", row.since.isoformat())


async def test_bad_status_is_422_and_a_ringing_agent_gets_409(floor: App) -> None:
    headers = floor.headers("bob", "agent")
    bad = await floor.http.post("/api/agents/me/status", json={"state": "ringing"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid" and "state" in bad.json()["detail"]
    sb = Switchboard()
    sb.queued("generic:x", T0, "support")
    sb.offered("generic:x", T0, "bob")
    for channel, message in sb.messages:
        await floor.state["hub"].publish(channel, message)
    busy = await floor.http.post("/api/agents/me/status", json={"state": "away"}, headers=headers)
    assert busy.status_code == 409
    assert "ringing" in busy.json()["detail"]
    assert (await floor.http.post("/api/agents/me/status", json={})).status_code == 401


async def test_statistics_are_rebuilt_at_start(floor: App, settings: Settings) -> None:
    await add_user_and_day(floor)
    async for again in running(settings):
        stats = again.state["services"]["queue_stats"]
        assert stats is queues_runtime.runtime_of(again.state).stats
        support = (await again.get("sue")).json()["queues"][0]
        assert (support["offered"], support["answered"]) == (1, 0)
        assert [w["call_id"] for w in support["waiting"]] == ["generic:w"]


async def add_user_and_day(app: App) -> None:
    """Commit one waiting call the way the calls domain would."""
    sb = Switchboard()
    sb.queued("generic:w", datetime.now(UTC), "support")
    async with app.state["sessionmaker"]() as session:
        await sb.store(session)
        await session.commit()


async def test_a_supervisor_without_an_extension_has_no_status_and_is_not_an_agent(
    floor: App,
) -> None:
    sam = floor.headers("sam", "supervisor")
    refused = await floor.http.post("/api/agents/me/status", json={"state": "away"}, headers=sam)
    assert refused.status_code == 403 and "extension" in refused.json()["detail"]
    assert "sam" not in [a["username"] for a in (await floor.get("root", "admin")).json()["agents"]]
    alice = floor.headers("alice", "agent")
    ok = await floor.http.post("/api/agents/me/status", json={"state": "away"}, headers=alice)
    assert ok.status_code == 200


async def test_an_agent_no_user_is_shows_as_unknown_while_on_a_call_of_the_queue(
    floor: App,
) -> None:
    """An event's agent nobody has (kept under the name the PBX gave) is listed with
    ``known`` false: for an admin, and for the supervisor of the queue whose call rings."""
    start = recent_start()
    sb = Switchboard()
    sb.queued("generic:g1", start, "sales")
    sb.offered("generic:g1", start + timedelta(seconds=1), "ghost-7", latency_ms=5)
    sb.queued("generic:g2", start, "support")
    sb.offered("generic:g2", start + timedelta(seconds=1), "ghost-8", latency_ms=5)
    for channel, message in sb.messages:
        await floor.state["hub"].publish(channel, message)
    root = {a["username"]: a for a in (await floor.get("root", role="admin")).json()["agents"]}
    assert root["ghost-7"]["known"] is False and root["ghost-7"]["state"] == "ringing"
    assert root["alice"]["known"] is True
    sam = {a["username"]: a for a in (await floor.get("sam")).json()["agents"]}
    # sam supervises sales: the ghost ringing on a sales call, not the one on support.
    assert set(sam) == {"alice", "carol", "ghost-7"}
    assert sam["ghost-7"]["known"] is False and sam["carol"]["known"] is True
