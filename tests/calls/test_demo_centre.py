"""The demo's call centre in a real demo-mode server (SQLite, like ``make run``): calls are
offered only to agents with a page open who are available, people are never answered, hung
up or wrapped up for, simulated agents handle the rest, and the demo phone drives the PBX.

The server plays ten times faster (``SCREENPOP_DEMO_SPEED=10``) and rings out after 1 s
(``SCREENPOP_DEMO_RING_TIMEOUT_S=1``); what is asserted is read from the journal, every event
the demo's PBX posted through the generic webhook.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from app import migrate
from app.calls.demo_floor import SIM_AGENTS
from app.calls.models import CallEventRecord
from app.db import create_engine
from app.queues import service as queues
from tests.calls.support import bearer, token
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, add_user
from tests.support.databases import drop_database, new_database
from tests.support.server import ServerProcess, free_port

SALES_DID = "+448081570001"
SUPPORT_DID = "+448081570002"
PEOPLE = ("alice", "bob", "carol", "dave", "erin")
Event = dict[str, Any]


@dataclass
class Demo:
    server: ServerProcess
    engine: AsyncEngine
    http: httpx.AsyncClient

    async def journal(self, after: int = 0) -> list[tuple[int, Event]]:
        """Every journaled event after id ``after``, in the order the service took them."""
        query = select(CallEventRecord.id, CallEventRecord.event).where(CallEventRecord.id > after)
        async with AsyncSession(self.engine) as session:
            rows = (await session.execute(query.order_by(CallEventRecord.id))).all()
        return [(int(i), dict(e if isinstance(e, dict) else json.loads(e))) for i, e in rows]

    async def phone(self, username: str, action: str | None = None, **body: Any) -> httpx.Response:
        path = "/api/demo/phone" + (f"/{action}" if action else "")
        if action is None:
            return await self.http.get(path, headers=bearer(username))
        return await self.http.post(path, json=body, headers=bearer(username))

    @asynccontextmanager
    async def page(self, username: str) -> AsyncIterator[ClientConnection]:
        """An agent page open: its websocket, read and dropped in the background."""
        url = f"{self.server.ws_url}/ws/agent?token={token(username)}"
        async with connect(url, open_timeout=10) as ws:
            reader = asyncio.create_task(_drain(ws))
            try:
                yield ws
            finally:
                reader.cancel()


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


@asynccontextmanager
async def demo_server(directory: Path, ring_timeout_s: float) -> AsyncIterator[Demo]:
    """A demo-mode server ten times faster than life, on a fresh SQLite database with the
    sales and support queues, five people (alice, bob, carol, dave, erin) and sam, a supervisor."""
    url = await new_database("sqlite", directory)
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        await queues.upsert_queue(session, name="sales", numbers=[SALES_DID])
        await queues.upsert_queue(session, name="support", numbers=[SUPPORT_DID])
        await session.commit()
    for n, name in enumerate(PEOPLE):
        await add_user(engine, name, extension=str(201 + n), queues=["sales", "support"])
    await add_user(engine, "sam", role="supervisor", queues=["sales", "support"])
    port = free_port()
    server = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": url,
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "SCREENPOP_LOG_JSON": "false",
            "SCREENPOP_DEMO": "1",
            "SCREENPOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SCREENPOP_DEMO_SPEED": "10",
            "SCREENPOP_DEMO_RING_TIMEOUT_S": str(ring_timeout_s),
        },
        port=port,
    )
    await asyncio.to_thread(server.start)
    http = httpx.AsyncClient(base_url=server.url, timeout=10)
    try:
        yield Demo(server, engine, http)
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)
        await engine.dispose()
        await drop_database(url)


async def until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (generous: a loaded machine)."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                result = await check()
                if result:
                    return result
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not within {within_s:g} s: {what}") from None


async def board(demo: Demo) -> dict[str, str]:
    """The agents' states on sam's wallboard."""
    response = await demo.http.get("/api/queues", headers=bearer("sam", "supervisor"))
    assert response.status_code == 200, response.text
    return {a["username"]: a["state"] for a in response.json()["agents"]}


def withdrawn_from(event: Event) -> str | None:
    attributes = event.get("attributes") or {}
    if event["kind"] == "queued" and attributes.get("offer_withdrawn"):
        return str(event["agent"])
    return None


def assert_one_call_at_a_time(events: list[Event]) -> None:
    """Walk the journal: nobody is offered a call while another one rings them or is theirs."""
    holding: dict[str, str] = {}
    for event in events:
        call, kind, agent = event["call_id"], event["kind"], event.get("agent")
        if kind == "offered":
            assert holding.get(agent) in (None, call), f"{agent} offered {call} while on {holding}"
            holding[agent] = call
        elif withdrawn_from(event):
            holding.pop(str(agent), None)
        elif kind == "transferred":
            target = event["attributes"]["transfer_to"]
            assert holding.get(target) in (None, call), f"{target} handed {call} while busy"
            holding.pop(str(agent), None)
            holding[target] = call
        elif kind in ("ended", "abandoned"):
            for name in [a for a, c in holding.items() if c == call]:
                del holding[name]


async def answer_an_offer(demo: Demo, username: str) -> str:
    """Answer on ``username``'s demo phone; with a 1 s ring an offer may ring out before the
    answer arrives (409), then the next one is answered."""
    while True:
        phone = (await demo.phone(username)).json()
        call = phone["call"]
        if call is not None and call["state"] == "ringing":
            response = await demo.phone(username, "answer", call_id=call["id"])
            if response.status_code == 200:
                assert response.json()["call"] == {
                    **call,
                    "state": "answered",
                    "rings_out_in_s": None,
                }
                return str(call["id"])
            assert response.status_code == 409, response.text
        await asyncio.sleep(0.05)


async def test_calls_go_only_to_agents_who_are_there_and_never_answered_for_a_person(
    tmp_path: Path,
) -> None:
    async with demo_server(tmp_path, ring_timeout_s=1) as demo:
        await calls_go_only_to_agents_who_are_there(demo)


async def calls_go_only_to_agents_who_are_there(demo: Demo) -> None:
    # carol chose Away before opening her page; erin never signs in; bob signs in and closes
    # his page: still "available" (until SCREENPOP_AGENT_OFFLINE_S), but nobody is there.
    response = await demo.http.post(
        "/api/agents/me/status", json={"state": "away"}, headers=bearer("carol")
    )
    assert response.status_code == 200, response.text
    async with demo.page("bob"):
        pass

    async def bob_gone() -> bool:
        return bool((await board(demo)).get("bob") == "available")

    await until(bob_gone, "bob available with his page closed (an offer to him rung out)")
    async with demo.page("alice"), demo.page("carol"), demo.page("dave"):
        # dave takes a call on his demo phone: from then on he is busy.
        dave_call = await asyncio.wait_for(answer_an_offer(demo, "dave"), 60)
        mark = (await demo.journal())[-1][0]

        async def enough() -> list[Event] | None:
            events = [e for _, e in await demo.journal(mark)]
            alice_missed = {e["call_id"] for e in events if withdrawn_from(e) == "alice"}
            passed_on = {
                e["call_id"]
                for e in events
                if e["kind"] == "offered" and e["call_id"] in alice_missed and e["agent"] != "alice"
            }
            sims_answered = [e for e in events if e["kind"] == "answered"]
            return events if len(passed_on) >= 2 and len(sims_answered) >= 3 else None

        window = await until(enough, "alice's missed calls passed on, sims answering")
        hung_up = await demo.phone("dave", "hangup", call_id=dave_call)
        assert hung_up.status_code == 200, hung_up.text
        assert hung_up.json()["call"] is None

        async def board_with_sims() -> dict[str, str] | None:
            agents = await board(demo)
            # The simulated agents show once the roster is read again (every few seconds).
            return agents if set(SIM_AGENTS) <= set(agents) else None

        agents = await until(board_with_sims, "the simulated agents on the wallboard")

    offered = {e["agent"] for e in window if e["kind"] == "offered"}
    assert "alice" in offered
    # Offline (bob, erin), away (carol) and busy (dave, on his call) are never offered a call.
    assert offered.isdisjoint({"bob", "carol", "dave", "erin"}), offered
    assert offered <= {"alice", *SIM_AGENTS}
    everything = [e for _, e in await demo.journal()]
    # Only dave's own answer on his phone answered a call for a person; nobody hung up or was
    # transferred a call for one.
    answered = [(e["agent"], e["call_id"]) for e in everything if e["kind"] == "answered"]
    assert [a for a in answered if a[0] in PEOPLE] == [("dave", dave_call.split(":", 1)[1])]
    assert {a for a, _ in answered} - set(PEOPLE) <= set(SIM_AGENTS)
    transfers = [e for e in everything if e["kind"] == "transferred"]
    assert all(e["attributes"]["transfer_to"] in SIM_AGENTS for e in transfers)
    assert_one_call_at_a_time(everything)
    assert agents["erin"] == "logged_out"
    assert agents["bob"] == "available"
    assert agents["carol"] == "away"
    assert agents["dave"] == "wrap_up"


async def test_decline_passes_the_call_on_and_the_phone_refuses_what_is_not_on_it(
    tmp_path: Path,
) -> None:
    async with demo_server(tmp_path, ring_timeout_s=60) as demo, demo.page("alice"):

        async def ringing() -> dict[str, Any] | None:
            call = (await demo.phone("alice")).json()["call"]
            return call if call is not None and call["state"] == "ringing" else None

        call = await until(ringing, "a call ringing on alice's phone")
        assert 0 < call["rings_out_in_s"] <= 60
        # Ringing, not answered: nothing to hang up; another agent's phone has no such call.
        refused = await demo.phone("alice", "hangup", call_id=call["id"])
        assert refused.status_code == 409, refused.text
        assert "not connected to your phone" in refused.json()["detail"]
        assert (await demo.phone("bob", "answer", call_id=call["id"])).status_code == 409
        declined = await demo.phone("alice", "decline", call_id=call["id"])
        assert declined.status_code == 200, declined.text
        provider_id = call["id"].split(":", 1)[1]
        events = [e for _, e in await demo.journal() if e["call_id"] == provider_id]
        # The offer was withdrawn by the time the phone answered.
        assert [withdrawn_from(e) for e in events].count("alice") == 1

        async def passed_on() -> bool:
            events = [e for _, e in await demo.journal() if e["call_id"] == provider_id]
            return events[-1]["kind"] in ("offered", "answered", "ended", "abandoned")

        await until(passed_on, "the declined call offered to the next agent")
        # Once declined it is not alice's to answer; an unknown call is 404; a bad body 422.
        again = await demo.phone("alice", "answer", call_id=call["id"])
        assert again.status_code in (404, 409), again.text
        assert (await demo.phone("alice", "answer", call_id="generic:nope")).status_code == 404
        bad = await demo.phone("alice", "answer", call="x")
        assert bad.status_code == 422
        assert "call_id" in bad.text
        # bob has no page: his phone never rings.
        assert (await demo.phone("bob")).json()["call"] is None


async def test_the_demo_phone_exists_only_in_demo_mode(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/demo/phone", headers=bearer("alice"))
    assert response.status_code == 404
