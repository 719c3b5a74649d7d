"""Every channel pops the same profile: contacts over ``POST /contacts/{name}/events``, through
the real app over HTTP (ASGI), on both backends."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.calls.replay import replay_journal
from app.customers.models import Customer
from app.customers.records import RecordReport, store_customers
from app.db import create_sessionmaker
from app.users.models import User
from tests.calls.conftest import ADA_PHONE, World
from tests.calls.support import App, bearer, event, new_call_id, running_app, signed
from tests.telephony.telephony_helpers import fixture_json

ADMIN = bearer("root", "admin")
CHATWOOT_TOKEN = "cw-" + "k" * 24


async def post_contact(app: App, channel: str, body: dict[str, Any] | bytes) -> httpx.Response:
    raw, headers = signed(body)
    response = await app.http.post(f"/contacts/{channel}/events", content=raw, headers=headers)
    await app.calls.drain()
    return response


async def post_chatwoot(app: App, name: str, **query: str) -> httpx.Response:
    body = json.dumps(fixture_json(f"chatwoot_{name}.json")).encode()
    response = await app.http.post(
        "/contacts/chatwoot/events",
        params={"token": CHATWOOT_TOKEN, **query},
        content=body,
        headers={"content-type": "application/json"},
    )
    await app.calls.drain()
    return response


async def call_row(engine: AsyncEngine, call_id: str) -> Call:
    async with AsyncSession(engine) as session:
        call = await session.scalar(select(Call).where(Call.id == call_id))
    assert call is not None, call_id
    return call


async def test_a_chat_from_the_email_pops_the_profile_a_call_from_the_phone_pops(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    phone_call, chat = new_call_id(), new_call_id()
    async with running_app(database_url) as app:
        for kind in ("queued", "offered"):
            body = event(phone_call, kind, caller=ADA_PHONE, queue="sales", agent="alice")
            assert (await app.post(body)).status_code == 202
        contact = {"contact": {"email": "ADA@example.com", "name": "Ada"}}
        for kind in ("queued", "offered"):
            body = event(chat, kind, queue="sales", agent="alice", **contact)
            del body["caller"]  # a web chat has no number
            answer = await post_contact(app, "chat", body)
            assert answer.status_code == 202, answer.text
            assert answer.json()["call_id"] == f"chat:{chat}"
        by_phone = await call_row(clean_engine, f"generic:{phone_call}")
        by_email = await call_row(clean_engine, f"chat:{chat}")
        api = await app.http.get(f"/api/calls/chat:{chat}", headers=ADMIN)
    assert by_phone.channel == "phone" and by_email.channel == "chat"
    assert by_email.customer_id == by_phone.customer_id == world.ada
    assert by_email.match["kind"] == "single" and by_email.match["matched_by"] == "email"
    assert by_phone.pop is not None and by_email.pop is not None
    # The same profile: the same sections, the same customer, purchases and account.
    assert set(by_email.pop) == set(by_phone.pop)
    for section in ("customer", "account", "purchases", "insights", "next_needs"):
        assert by_email.pop[section] == by_phone.pop[section], section
    assert api.status_code == 200 and api.json()["channel"] == "chat"
    assert api.json()["state"] == "ringing" and api.json()["offered_to"] == ["alice"]


async def test_a_contact_matches_by_external_id_and_a_chat_never_meets_a_call(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    same = new_call_id()
    async with running_app(database_url) as app:
        assert (await app.post(event(same, "queued", queue="sales"))).status_code == 202
        body = event(same, "queued", queue="sales", contact={"external_id": "ACC-777"})
        del body["caller"]
        assert (await post_contact(app, "email", body)).status_code == 202
        metrics = (await app.http.get("/metrics")).text
    assert 'screenpop_webhook_requests_total{outcome="accepted",provider="email"} 1.0' in metrics
    call = await call_row(clean_engine, f"generic:{same}")
    mail = await call_row(clean_engine, f"email:{same}")
    assert call.channel == "phone" and mail.channel == "email"
    assert mail.customer_id == world.ref_customer and call.customer_id != world.ref_customer


async def test_queue_figures_count_each_channel_and_wrap_up_keeps_the_channel(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    calls, chats = [new_call_id(), new_call_id()], [new_call_id()]
    async with running_app(database_url) as app:
        for cid in calls:
            assert (await app.post(event(cid, "queued", queue="sales"))).status_code == 202
        assert (await app.post(event(calls[0], "answered", agent="alice"))).status_code == 202
        for cid in chats:
            body = event(cid, "queued", queue="sales", contact={"email": "ada@example.com"})
            assert (await post_contact(app, "chat", body)).status_code == 202
            body = event(cid, "answered", agent="bob")
            assert (await post_contact(app, "chat", body)).status_code == 202
            assert (await post_contact(app, "chat", event(cid, "ended"))).status_code == 202
        assert (await app.post(event(calls[1], "abandoned"))).status_code == 202
        figures = (await app.http.get("/api/queues", headers=ADMIN)).json()
        wrapup = await app.http.post(
            f"/api/calls/chat:{chats[0]}/wrapup",
            json={"disposition": "resolved", "satisfaction": 5},
            headers=bearer("bob"),
        )
        profile = await app.http.get(f"/api/customers/{world.ada}/profile", headers=ADMIN)
        history = {
            channel: (
                await app.http.get(f"/api/queues/history?interval_min=1440{channel}", headers=ADMIN)
            ).json()["intervals"]
            for channel in ("", "&channel=chat", "&channel=phone")
        }
        refused = await app.http.get("/api/queues/history?channel=fax", headers=ADMIN)
    sales = {q["name"]: q for q in figures["queues"]}["sales"]
    offered = {k: [(i["queue"], i["offered"]) for i in rows] for k, rows in history.items()}
    assert offered == {
        "": [("sales", 3)],
        "&channel=chat": [("sales", 1)],
        "&channel=phone": [("sales", 2)],
    }
    assert refused.status_code == 422 and "channel" in refused.text
    assert sales["offered"] == 3
    assert sales["channels"] == {
        "chat": {"offered": 1, "answered": 1, "abandoned": 0},
        "phone": {"offered": 2, "answered": 1, "abandoned": 1},
    }
    assert figures["channels"]["chat"] == {"offered": 1, "answered": 1, "abandoned": 0}
    assert wrapup.status_code == 201, wrapup.text
    assert wrapup.json()["channel"] == "chat"
    touch = profile.json()["interactions"][0]
    assert touch["call_id"] == f"chat:{chats[0]}" and touch["channel"] == "chat"


async def test_chatwoot_conversation_pops_the_contact_and_follows_it(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with AsyncSession(clean_engine) as session, session.begin():
        alice = await session.scalar(select(User).where(User.username == "alice"))
        assert alice is not None
        alice.worker_id = "alice@acme.example"  # her Chatwoot agent's email
    async with running_app(database_url, chatwoot_token=CHATWOOT_TOKEN) as app:
        for name in ("conversation_created", "message_created_incoming", "conversation_updated"):
            answer = await post_chatwoot(app, name, queue="sales")
            assert answer.status_code == 202, answer.text
            # message_created_incoming repeats the first sight: a duplicate of the first.
            assert answer.json()["duplicate"] is (name == "message_created_incoming")
        ringing = await call_row(clean_engine, "chatwoot:10")
        for name in ("message_created_outgoing", "conversation_status_changed"):
            assert (await post_chatwoot(app, name)).status_code == 202
        ended = await call_row(clean_engine, "chatwoot:10")
        refused = await app.http.post(
            "/contacts/chatwoot/events",
            params={"token": "wrong"},
            json=fixture_json("chatwoot_conversation_created.json"),
        )
    assert ringing.channel == "chat" and ringing.queue == "sales"
    assert ringing.customer_id == world.ada and ringing.match["matched_by"] == "email"
    assert ringing.state == "ringing" and ringing.offered_to == ["alice"]
    assert ended.state == "ended" and ended.agent == "alice" and ended.answered_at is not None
    assert refused.status_code == 401, refused.text


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/contacts/fax/events", b"{}", 404, "unknown_channel"),
        ("/contacts/phone/events", b"{}", 404, "unknown_channel"),
        ("/contacts/chat/events", b"[1]", 422, "malformed_event"),
        (
            "/contacts/chat/events",
            json.dumps(event("x", "queued", contact={"email": "nobody"})).encode(),
            422,
            "malformed_event",
        ),
        (
            "/contacts/email/events",
            json.dumps(event("x", "queued", contact={"phone": {"n": 1}})).encode(),
            422,
            "malformed_event",
        ),
        ("/contacts/chat/events", b"{" + b" " * 70_000 + b"}", 413, "payload_too_large"),
    ],
)
async def test_bad_contacts_are_refused_and_change_nothing(
    clean_engine: AsyncEngine, database_url: str, path: str, body: bytes, status: int, error: str
) -> None:
    async with running_app(database_url) as app:
        raw, headers = signed(body)
        answer = await app.http.post(path, content=raw, headers=headers)
        unsigned = await app.http.post(
            "/contacts/chat/events",
            content=json.dumps(event("y", "queued")).encode(),
            headers={
                "content-type": "application/json",
                "x-screenpop-signature": f"t={int(time.time())},v1=00",
            },
        )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["detail"]
    assert unsigned.status_code == 401
    async with AsyncSession(clean_engine) as session:
        assert (await session.scalars(select(Call.id))).all() == []


async def test_an_unknown_address_is_matched_once_not_on_every_event(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    chat = new_call_id()
    async with running_app(database_url) as app:
        for kind in ("queued", "offered"):
            body = event(chat, kind, queue="sales", agent="alice",
                         contact={"email": "stranger@example.org"})  # fmt: skip
            del body["caller"]
            assert (await post_contact(app, "chat", body)).status_code == 202
    row = await call_row(clean_engine, f"chat:{chat}")
    assert row.match["kind"] == "none" and row.match["email"] == "stranger@example.org"
    assert row.pop_version == 1  # the offer pushed the pop built at first sight


async def test_a_contact_rebuilt_from_the_journal_keeps_its_channel_and_match(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    chat = new_call_id()
    async with running_app(database_url) as app:
        body = event(chat, "queued", queue="sales", contact={"email": "ada@example.com"})
        del body["caller"]
        assert (await post_contact(app, "chat", body)).status_code == 202
    async with AsyncSession(clean_engine) as session, session.begin():
        await session.execute(delete(Call).where(Call.id == f"chat:{chat}"))
    sessions = create_sessionmaker(clean_engine)
    assert await replay_journal(sessions, call_id=f"chat:{chat}") == 1
    rebuilt = await call_row(clean_engine, f"chat:{chat}")
    assert rebuilt.channel == "chat" and rebuilt.customer_id == world.ada
    assert rebuilt.match["matched_by"] == "email"


async def test_a_contact_matches_a_customer_by_any_of_their_addresses(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    record = {"ref": "CRM-9", "name": "Bo Second", "emails": "bo@first.example, Bo@Work.Example"}
    async with clean_engine.begin() as conn:
        await store_customers(conn, "crm", [record], report := RecordReport())
    assert report.added == 1
    async with AsyncSession(clean_engine) as session:
        bo = await session.scalar(select(Customer.id).where(Customer.name == "Bo Second"))
    chats = [new_call_id() for _ in range(3)]
    async with running_app(database_url) as app:
        for chat, address in zip(chats[:2], ("bo@first.example", "BO@work.example"), strict=True):
            body = event(chat, "queued", queue="sales", contact={"email": address})
            del body["caller"]
            assert (await post_contact(app, "chat", body)).status_code == 202
        # The source now gives one address only: the other no longer finds Bo.
        async with clean_engine.begin() as conn:
            await store_customers(
                conn, "crm", [{**record, "emails": "bo@first.example"}], report := RecordReport()
            )
        assert report.updated == 1
        body = event(chats[2], "queued", queue="sales", contact={"email": "bo@work.example"})
        del body["caller"]
        assert (await post_contact(app, "chat", body)).status_code == 202
    first, further, dropped = [await call_row(clean_engine, f"chat:{c}") for c in chats]
    assert first.customer_id == further.customer_id == bo
    assert further.match["kind"] == "single" and further.match["matched_by"] == "email"
    assert dropped.customer_id is None and dropped.match["kind"] == "none"
