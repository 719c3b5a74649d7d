"""The pop end to end: a real uvicorn, signed webhooks over HTTP, agents on real websockets.

One server per backend for the module (the people, queues and customers of ``build_world``);
every test uses its own call ids and looks only at frames about them, since a (re)connecting
agent is also replayed the live calls of earlier tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.calls.models import PopDelivery
from tests.calls.conftest import ADA_PHONE, SALES_DID, SHARED_PHONE, World, build_world
from tests.calls.support import GENERIC, event, new_call_id, signed, token
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, truncate_all
from tests.support.server import ServerProcess

Message = dict[str, Any]


class Live:
    """The running server, the world in its database, and helpers to drive it."""

    def __init__(self, server: ServerProcess, world: World, engine: AsyncEngine) -> None:
        self.server = server
        self.world = world
        self.engine = engine
        self.http = httpx.AsyncClient(base_url=server.url, timeout=10)

    async def post(self, body: dict[str, Any]) -> httpx.Response:
        raw, headers = signed(body)
        response = await self.http.post(GENERIC, content=raw, headers=headers)
        assert response.status_code == 202, response.text
        return response

    @asynccontextmanager
    async def agent(self, username: str, role: str = "agent") -> AsyncIterator[ClientConnection]:
        url = f"{self.server.ws_url}/ws/agent?token={token(username, role)}"
        async with connect(url, open_timeout=5) as ws:
            yield ws

    async def restart(self) -> None:
        await asyncio.to_thread(self.server.stop)
        await asyncio.to_thread(self.server.start)


@pytest.fixture(scope="module")
async def live(engine: AsyncEngine, database_url: str) -> AsyncIterator[Live]:
    await truncate_all(engine)
    world = await build_world(engine)
    server = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": database_url,
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "SCREENPOP_LOG_JSON": "false",
        }
    )
    await asyncio.to_thread(server.start)
    state = Live(server, world, engine)
    try:
        yield state
    finally:
        await state.http.aclose()
        await asyncio.to_thread(server.stop)
        await truncate_all(engine)


def about(call_id: str) -> Callable[[Message], bool]:
    def match(message: Message) -> bool:
        return message.get("call_id") == call_id or (message.get("call") or {}).get("id") == call_id

    return match


async def expect(
    ws: ClientConnection,
    call_id: str,
    until: Callable[[Message], bool],
) -> list[Message]:
    """Frames about ``call_id`` up to and including the first one ``until`` accepts.

    Generous timeout: a loaded CI machine can be slow; a missing frame still fails.
    """
    seen: list[Message] = []
    async with asyncio.timeout(20.0):
        while True:
            message = json.loads(await ws.recv())
            if not about(call_id)(message):
                continue
            seen.append(message)
            if until(message):
                return seen


async def nothing_about(ws: ClientConnection, call_id: str, wait: float = 0.5) -> None:
    """No frame about ``call_id`` arrives within ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            while True:
                message = json.loads(await ws.recv())
                assert not about(call_id)(message), message
    except TimeoutError:
        return


def is_type(kind: str) -> Callable[[Message], bool]:
    return lambda m: m.get("type") == kind


def full_pop(message: Message) -> bool:
    return message.get("type") in ("pop", "pop.update") and message.get("complete") is True


async def test_single_match_pops_only_on_the_offered_agent_and_ack_is_recorded(
    live: Live,
) -> None:
    cid = new_call_id()
    async with live.agent("alice") as alice, live.agent("bob") as bob:
        await live.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        await live.post(event(cid, "offered", caller=ADA_PHONE, agent="201"))
        frames = await expect(alice, f"generic:{cid}", full_pop)
        assert frames[0]["type"] == "pop"
        pop = frames[-1]
        assert pop["customer"]["name"] == "Ada Lovelace" and pop["match"]["kind"] == "single"
        assert pop["account"]["balance"] == 42.5 and pop["purchases"]
        await alice.send(json.dumps({"type": "ack", "call_id": pop["call"]["id"],
                                     "version": pop["version"], "seen": True}))  # fmt: skip
        await nothing_about(bob, f"generic:{cid}")
    # Receipts are written in batches (within receipt_flush_ms): poll for it.
    async with asyncio.timeout(10.0):
        while True:
            async with AsyncSession(live.engine) as session:
                delivery = (
                    await session.execute(
                        select(PopDelivery).where(PopDelivery.call_id == f"generic:{cid}")
                    )
                ).scalar_one()
            if delivery.seen_at is not None:
                break
            await asyncio.sleep(0.05)
    assert delivery.username == "alice"
    assert delivery.delivered_at is not None and delivery.seen_at is not None
    await live.post(event(cid, "ended"))


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"caller": SHARED_PHONE}, "multiple"),
        ({"caller": "+447700900999"}, "none"),
        ({"caller": "anonymous"}, "withheld"),
        ({"caller": "anonymous", "attributes": {"account_ref": "ACC-777"}}, "single"),
    ],
)
async def test_match_kinds_reach_the_screen(live: Live, fields: dict[str, Any], kind: str) -> None:
    cid = new_call_id()
    async with live.agent("alice") as alice:
        await live.post(event(cid, "offered", agent="alice", dialed=SALES_DID, **fields))
        pop = (await expect(alice, f"generic:{cid}", full_pop))[-1]
    assert pop["match"]["kind"] == kind
    if kind == "multiple":
        assert len(pop["match"]["candidates"]) == 2 and pop["customer"] is None
    if kind == "single":
        assert pop["customer"]["id"] == live.world.ref_customer
    await live.post(event(cid, "abandoned"))


async def test_ring_all_pops_everyone_and_withdraws_from_those_who_did_not_answer(
    live: Live,
) -> None:
    cid = new_call_id()
    async with live.agent("alice") as alice, live.agent("bob") as bob:
        await live.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        await live.post(event(cid, "offered", agent="alice"))
        await live.post(event(cid, "offered", agent="bob"))
        a = (await expect(alice, f"generic:{cid}", full_pop))[-1]
        b = (await expect(bob, f"generic:{cid}", full_pop))[-1]
        assert a["version"] == b["version"]
        await live.post(event(cid, "answered", agent="bob"))
        withdrawn = (await expect(alice, f"generic:{cid}", is_type("call.state")))[-1]
        kept = (await expect(bob, f"generic:{cid}", is_type("call.state")))[-1]
    assert withdrawn["withdrawn"] is True and withdrawn["state"] == "answered"
    assert kept["withdrawn"] is False and kept["state"] == "answered"
    await live.post(event(cid, "ended"))


async def test_transfer_pops_the_new_agent(live: Live) -> None:
    cid = new_call_id()
    async with live.agent("alice") as alice, live.agent("carol") as carol:
        await live.post(event(cid, "offered", caller=ADA_PHONE, agent="alice", dialed=SALES_DID))
        await live.post(event(cid, "answered", agent="alice"))
        await expect(alice, f"generic:{cid}", is_type("call.state"))
        await live.post(event(cid, "transferred", agent="alice",
                              attributes={"transfer_to": "203"}))  # fmt: skip
        pop = (await expect(carol, f"generic:{cid}", full_pop))[-1]
        gone = (await expect(alice, f"generic:{cid}", is_type("call.state")))[-1]
    assert pop["call"]["caller"]["e164"] == ADA_PHONE
    assert pop["customer"]["name"] == "Ada Lovelace"
    assert pop["transfer"] == pop["transfer"] | {"from": "alice", "to": "carol"}
    assert gone["withdrawn"] is True and gone["reason"] == "transferred"
    await live.post(event(cid, "ended"))


async def test_abandon_withdraws_the_pop(live: Live) -> None:
    cid = new_call_id()
    async with live.agent("bob") as bob:
        await live.post(event(cid, "offered", caller=ADA_PHONE, agent="bob", dialed=SALES_DID))
        await expect(bob, f"generic:{cid}", full_pop)
        await live.post(event(cid, "abandoned"))
        note = (await expect(bob, f"generic:{cid}", is_type("call.state")))[-1]
    assert note["state"] == "abandoned" and note["withdrawn"] is True


async def test_reconnect_replays_live_pops_including_those_missed_offline(live: Live) -> None:
    seen_live, missed = new_call_id(), new_call_id()
    async with live.agent("alice") as alice:
        await live.post(event(seen_live, "offered", caller=ADA_PHONE, agent="alice"))
        first = (await expect(alice, f"generic:{seen_live}", full_pop))[-1]
    # Offline now: a call rings meanwhile.
    await live.post(event(missed, "offered", caller=SHARED_PHONE, agent="alice"))
    async with live.agent("alice") as alice, live.agent("alice") as second_tab:
        again = (await expect(alice, f"generic:{seen_live}", is_type("pop")))[-1]
        offline = (await expect(alice, f"generic:{missed}", is_type("pop")))[-1]
        tab = (await expect(second_tab, f"generic:{seen_live}", is_type("pop")))[-1]
    assert again["version"] == first["version"] == tab["version"]
    assert again["customer"]["name"] == "Ada Lovelace"
    assert offline["match"]["kind"] == "multiple"
    for cid in (seen_live, missed):
        await live.post(event(cid, "abandoned"))
    # Ended calls are no longer replayed.
    async with live.agent("alice") as alice:
        await nothing_about(alice, f"generic:{seen_live}")


async def test_server_restart_replays_from_the_database(live: Live) -> None:
    cid = new_call_id()
    await live.post(event(cid, "offered", caller=ADA_PHONE, agent="bob", dialed=SALES_DID))
    await live.post(event(cid, "answered", agent="bob"))
    await live.restart()
    async with live.agent("bob") as bob:
        pop = (await expect(bob, f"generic:{cid}", is_type("pop")))[-1]
    assert pop["call"]["state"] == "answered" and pop["customer"]["name"] == "Ada Lovelace"
    await live.post(event(cid, "ended"))


@pytest.mark.parametrize("kind", ["forged", "expired", "missing"])
async def test_bad_tokens_are_refused_with_4401(live: Live, kind: str) -> None:
    import jwt

    tokens = {
        "forged": jwt.encode({"sub": "alice", "role": "agent", "exp": 9999999999},
                             "not-the-server-secret-but-long-enough-for-hs256", algorithm="HS256"),
        "expired": token("alice", ttl_s=-60),
        "missing": "",
    }  # fmt: skip
    async with connect(f"{live.server.ws_url}/ws/agent?token={tokens[kind]}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_wrapup_twice_is_409(live: Live) -> None:
    cid = new_call_id()
    await live.post(event(cid, "answered", caller=ADA_PHONE, agent="alice", dialed=SALES_DID))
    await live.post(event(cid, "ended"))
    url = f"/api/calls/generic:{cid}/wrapup"
    headers = {"Authorization": f"Bearer {token('alice')}"}
    body = {"disposition": "resolved", "satisfaction": 4,
            "offers": [{"sku": "SKU1", "outcome": "declined"}]}  # fmt: skip
    assert (await live.http.post(url, json=body, headers=headers)).status_code == 201
    second = await live.http.post(url, json=body, headers=headers)
    assert second.status_code == 409 and second.json()["error"] == "conflict"


async def test_a_chat_by_email_pops_on_the_screen_what_a_call_by_phone_pops(live: Live) -> None:
    call, chat = new_call_id(), new_call_id()
    async with live.agent("alice") as alice:
        await live.post(event(call, "offered", caller=ADA_PHONE, agent="alice", dialed=SALES_DID))
        by_phone = (await expect(alice, f"generic:{call}", full_pop))[-1]
        body = event(chat, "offered", agent="alice", queue="sales",
                     contact={"email": "Ada@Example.com"})  # fmt: skip
        del body["caller"]  # a web chat has no number
        raw, headers = signed(body)
        answer = await live.http.post("/contacts/chat/events", content=raw, headers=headers)
        assert answer.status_code == 202, answer.text
        by_chat = (await expect(alice, f"chat:{chat}", full_pop))[-1]
    assert by_chat["customer"]["id"] == by_phone["customer"]["id"] == live.world.ada
    assert by_chat["match"]["matched_by"] == "email" and by_chat["match"]["kind"] == "single"
    assert set(by_chat) == set(by_phone)
    for section in ("customer", "account", "purchases", "insights", "next_needs"):
        assert by_chat[section] == by_phone[section], section
    assert (by_chat["call"]["channel"], by_phone["call"]["channel"]) == ("chat", "phone")
    await live.post(event(call, "ended"))
    raw, headers = signed(event(chat, "ended"))
    assert (await live.http.post("/contacts/chat/events", content=raw, headers=headers)).is_success
