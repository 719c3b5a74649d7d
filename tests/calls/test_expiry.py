"""Calls and agents end on their own: idle calls expire through the event path, wrap-up is
bounded by the queue's ``wrap_up_s``, agents with no page are logged out (SQLite and
PostgreSQL, the real app)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.expiry import expire_idle
from app.calls.models import Call, CallEventRecord
from app.queues.runtime import runtime_of
from tests.calls.conftest import World
from tests.calls.support import App, bearer, event, new_call_id, running_app

SETTINGS: dict[str, Any] = {
    "call_max_idle_s": 600,
    "agent_offline_s": 120,
    # The background sweeps stay out of the way: the test runs them with its own clock.
    "sweep_interval_s": 3600,
}


async def agents(app: App) -> dict[str, str]:
    response = await app.http.get("/api/queues", headers=bearer("root", "admin"))
    assert response.status_code == 200, response.text
    return {a["username"]: a["state"] for a in response.json()["agents"]}


async def settle(app: App, check: Any) -> dict[str, str]:
    """The agents' states once ``check`` holds (hub messages are folded asynchronously)."""
    for _ in range(200):
        states = await agents(app)
        if check(states):
            return states
        await asyncio.sleep(0.02)
    raise AssertionError(f"agents never reached the expected states: {await agents(app)}")


async def states_of(engine: AsyncEngine, *call_ids: str) -> dict[str, str]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(Call.id, Call.state).where(Call.id.in_([f"generic:{c}" for c in call_ids]))
        )
        return {i.split(":", 1)[1]: s for i, s in rows}


async def test_idle_calls_expire_and_agents_end_wrap_up_and_log_out(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    now = datetime.now(UTC)
    old = (now - timedelta(minutes=20)).isoformat()
    ringing, talking, fresh = new_call_id(), new_call_id(), new_call_id()
    async with running_app(database_url, **SETTINGS) as app:
        for body in (
            event(ringing, "queued", queue="sales", occurred_at=old),
            event(ringing, "offered", agent="201", occurred_at=old),
            event(talking, "queued", queue="support", occurred_at=old),
            event(talking, "answered", agent="202", occurred_at=old),
            event(fresh, "queued", queue="sales", occurred_at=now.isoformat()),
        ):
            assert (await app.post(body)).status_code == 202
        await settle(app, lambda s: s.get("alice") == "ringing" and s.get("bob") == "on_call")

        assert await expire_idle(app.calls, now) == 2
        assert await expire_idle(app.calls, now) == 0  # nothing left, nothing twice
        await app.calls.drain()
        assert await states_of(clean_engine, ringing, talking, fresh) == {
            ringing: "ended",
            talking: "ended",
            fresh: "queued",
        }
        async with AsyncSession(clean_engine) as session:
            journal = (
                await session.execute(
                    select(CallEventRecord.kind, CallEventRecord.raw).where(
                        CallEventRecord.kind == "expired"
                    )
                )
            ).all()
        assert sorted(journal) == [("expired", None), ("expired", None)]
        # Gone from the agents: the offer is over (alice, never signed in, is back to
        # logged_out), the talker wraps up.
        states = await settle(app, lambda s: s.get("bob") == "wrap_up")
        assert states["alice"] == "logged_out"
        sales = next(
            q
            for q in (await app.http.get("/api/queues", headers=bearer("root", "admin"))).json()[
                "queues"
            ]
            if q["name"] == "sales"
        )
        assert [w["call_id"] for w in sales["waiting"]] == [f"generic:{fresh}"]

        runtime = runtime_of(app.state)
        assert await runtime.sweep_agents(now + timedelta(seconds=30)) == 0
        assert await runtime.sweep_agents(now + timedelta(seconds=61)) == 1
        await settle(app, lambda s: s.get("bob") == "available")

        # A late wrap-up is still accepted.
        late = await app.http.post(
            f"/api/calls/generic:{talking}/wrapup",
            json={"disposition": "resolved"},
            headers=bearer("bob"),
        )
        assert late.status_code == 201, late.text

        # bob has no page open: logged out once the offline limit has passed.
        later = now + timedelta(seconds=61 + 121)
        assert await runtime.sweep_agents(later) == 1
        await settle(app, lambda s: s.get("bob") == "logged_out")


async def test_wrap_up_limit_is_the_queues_and_an_open_page_keeps_the_agent(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    from app.queues import service as queues
    from app.queues.timeouts import local_pages

    async with AsyncSession(clean_engine) as session:
        await queues.upsert_queue(session, name="support", wrap_up_s=300)
        await session.commit()
    call = new_call_id()
    async with running_app(database_url, **SETTINGS) as app:
        assert (await app.post(event(call, "queued", queue="support"))).status_code == 202
        assert (await app.post(event(call, "answered", agent="202"))).status_code == 202
        assert (await app.post(event(call, "ended"))).status_code == 202
        await settle(app, lambda s: s.get("bob") == "wrap_up")
        local_pages(app.state)["bob"] += 1  # as WS /ws/agent counts an open page
        runtime = runtime_of(app.state)
        now = datetime.now(UTC)
        # Past the default 60 s and the offline limit, within support's 300 s: nothing moves.
        assert await runtime.sweep_agents(now + timedelta(seconds=200)) == 0
        assert await runtime.sweep_agents(now + timedelta(seconds=301)) == 1
        await settle(app, lambda s: s.get("bob") == "available")


async def test_after_a_restart_pages_have_the_offline_time_to_come_back(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    from app.queues.models import AgentPresence

    # alice chose away an hour ago, before the restart; her page has not reconnected yet.
    async with AsyncSession(clean_engine) as session:
        session.add(
            AgentPresence(
                username="alice", state="away", since=datetime.now(UTC) - timedelta(hours=1)
            )
        )
        await session.commit()
    async with running_app(database_url, **SETTINGS) as again:
        await settle(again, lambda s: s.get("alice") == "away")  # read back from the database
        runtime = runtime_of(again.state)
        now = datetime.now(UTC)
        assert await runtime.sweep_agents(now + timedelta(seconds=60)) == 0
        assert await runtime.sweep_agents(now + timedelta(seconds=130)) == 1
        await settle(again, lambda s: s.get("alice") == "logged_out")


async def test_a_restart_keeps_the_wrap_up_limit_of_the_calls_queue(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    from app.queues import service as queues
    from app.queues.timeouts import local_pages

    async with AsyncSession(clean_engine) as session:
        await queues.upsert_queue(session, name="support", wrap_up_s=300)
        await session.commit()
    call = new_call_id()
    async with running_app(database_url, **SETTINGS) as app:
        assert (await app.post(event(call, "queued", queue="support"))).status_code == 202
        assert (await app.post(event(call, "answered", agent="202"))).status_code == 202
        assert (await app.post(event(call, "ended"))).status_code == 202
        await settle(app, lambda s: s.get("bob") == "wrap_up")
    # The restart reads bob's wrap-up back; its limit is still support's 300 s, not the
    # default 60 s.
    async with running_app(database_url, **SETTINGS) as again:
        await settle(again, lambda s: s.get("bob") == "wrap_up")
        local_pages(again.state)["bob"] += 1  # a page open: the offline limit stays out of it
        runtime = runtime_of(again.state)
        now = datetime.now(UTC)
        assert await runtime.sweep_agents(now + timedelta(seconds=200)) == 0
        assert await runtime.sweep_agents(now + timedelta(seconds=301)) == 1
        await settle(again, lambda s: s.get("bob") == "available")


async def ring_out_journal(engine: AsyncEngine) -> list[tuple[str, str | None, Any]]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(CallEventRecord.call_id, CallEventRecord.event, CallEventRecord.raw).where(
                CallEventRecord.kind == "rang_out"
            )
        )
        return [(call_id, event["agent"], raw) for call_id, event, raw in rows]


async def offered_to(engine: AsyncEngine, call_id: str) -> list[str]:
    async with AsyncSession(engine) as session:
        call = await session.get(Call, f"generic:{call_id}")
        assert call is not None
        return list(call.offered_to or ())


async def test_an_offer_to_an_agent_with_no_page_rings_out_after_the_queues_ring_timeout(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    from app.queues import service as queues
    from app.queues.models import AgentPresence
    from app.queues.timeouts import local_pages

    async with AsyncSession(clean_engine) as session:
        await queues.upsert_queue(session, name="support", ring_timeout_s=90)
        # alice was available before this start (her page is closed now).
        since = datetime.now(UTC) - timedelta(minutes=1)
        session.add(AgentPresence(username="alice", state="available", since=since))
        await session.commit()
    nobody, watched, slow = new_call_id(), new_call_id(), new_call_id()
    async with running_app(database_url, **SETTINGS) as app:
        await settle(app, lambda s: s.get("alice") == "available")
        for body in (
            event(nobody, "queued", queue="sales"),
            event(nobody, "offered", agent="201"),
            event(watched, "queued", queue="sales"),
            event(watched, "offered", agent="202"),
        ):
            assert (await app.post(body)).status_code == 202
        await settle(app, lambda s: s.get("alice") == "ringing" and s.get("bob") == "ringing")
        local_pages(app.state)["bob"] += 1  # bob's page is open: the PBX decides for him
        runtime = runtime_of(app.state)
        now = datetime.now(UTC)
        assert await runtime.sweep_agents(now + timedelta(seconds=20)) == 0
        assert await runtime.sweep_agents(now + timedelta(seconds=31)) == 1
        await app.calls.drain()
        states = await settle(app, lambda s: s.get("alice") == "available")
        assert states["bob"] == "ringing"
        # Withdrawn from alice as a PBX's "unanswered" would: the call waits in the queue.
        assert await states_of(clean_engine, nobody, watched) == {
            nobody: "queued",
            watched: "ringing",
        }
        assert await offered_to(clean_engine, nobody) == []
        assert await offered_to(clean_engine, watched) == ["bob"]
        assert await ring_out_journal(clean_engine) == [(f"generic:{nobody}", "alice", None)]
        assert await runtime.sweep_agents(now + timedelta(seconds=40)) == 0  # nothing twice

        # support rings for 90 s; bob closed his page.
        local_pages(app.state)["bob"] -= 1
        assert (await app.post(event(watched, "ended"))).status_code == 202
        assert (await app.post(event(slow, "queued", queue="support"))).status_code == 202
        assert (await app.post(event(slow, "offered", agent="202"))).status_code == 202
        await settle(app, lambda s: s.get("bob") == "ringing")
    # After a restart the ring is read back; the pages that were open get the ring timeout
    # to come back, then it rings out.
    async with running_app(database_url, **SETTINGS) as again:
        await settle(again, lambda s: s.get("bob") == "ringing")
        runtime = runtime_of(again.state)
        now = datetime.now(UTC)
        assert await runtime.sweep_agents(now + timedelta(seconds=60)) == 0
        assert await runtime.sweep_agents(now + timedelta(seconds=91)) == 1
        await again.calls.drain()
        await settle(again, lambda s: s.get("bob") != "ringing")
        assert await states_of(clean_engine, slow) == {slow: "queued"}
        assert len(await ring_out_journal(clean_engine)) == 2
