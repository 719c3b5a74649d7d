"""The README's Twilio recipes, step by step, signed by Twilio's own ``RequestValidator``.

Flex / TaskRouter: the task's events drive the call. Programmable Voice: ``<Enqueue>``, then
the integrator's dequeue ``<Dial><Client statusCallbackEvent="initiated ringing answered
completed">alice</Client></Dial>`` on the caller's call, whose child-leg callbacks offer,
answer and end it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from twilio.request_validator import RequestValidator

from app.queues import service as queues
from tests.calls.support import running_app, token
from tests.conftest import add_user

AUTH_TOKEN = "twilio-auth-token-for-the-recipe"
PUBLIC_URL = "http://127.0.0.1:8000"  # make_settings' SCREENPOP_PUBLIC_URL
CALLER = "+447700900123"
DID = "+448081570001"


async def post(http: httpx.AsyncClient, path: str, fields: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, fields)
    return await http.post(path, data=fields, headers={"x-twilio-signature": signature})


async def call_state(http: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    response = await http.get(
        f"/api/calls/{call_id}", headers={"Authorization": "Bearer " + token("sam", "supervisor")}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def prepare(engine: AsyncEngine) -> None:
    await add_user(engine, "alice", extension="201", queues=["sales"])
    async with AsyncSession(engine) as session:
        await queues.upsert_queue(session, name="sales", numbers=[DID])
        await session.commit()


async def test_voice_enqueue_then_dequeue_to_a_client_leg(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await prepare(clean_engine)
    parent = {"CallSid": "CA100", "From": CALLER, "To": DID, "Direction": "inbound"}
    async with running_app(database_url, twilio_auth_token=AUTH_TOKEN) as app:
        voice = await post(app.http, "/telephony/twilio/voice", {**parent, "CallStatus": "ringing"})
        assert voice.status_code == 200 and "<Enqueue>sales</Enqueue>" in voice.text
        assert (await call_state(app.http, "twilio:CA100"))["state"] == "queued"
        leg = {"CallSid": "CA200", "ParentCallSid": "CA100", "From": DID, "To": "client:alice"}
        seen = []
        for n, status in enumerate(["initiated", "ringing", "in-progress", "completed"], 1):
            fields = {**leg, "CallStatus": status, "SequenceNumber": str(n)}
            response = await post(app.http, "/telephony/twilio/status", fields)
            assert response.status_code in (202, 204), response.text
            call = await call_state(app.http, "twilio:CA100")
            seen.append((call["state"], call["agent"] or call.get("offered_to")))
    assert seen == [
        ("queued", []),  # initiated: the leg is being set up, nobody rings yet
        ("ringing", ["alice"]),
        ("answered", "alice"),
        ("ended", "alice"),
    ]
    assert call["caller"]["e164"] == CALLER and call["queue"] == "sales"


async def test_flex_taskrouter_events_drive_the_call(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await prepare(clean_engine)
    task = json.dumps({"call_sid": "CA300", "from": CALLER, "to": DID})
    base = {"TaskAttributes": task, "TaskQueueName": "sales", "TaskSid": "WT1"}
    steps = [
        ("task.created", {}),
        ("reservation.created", {"WorkerName": "alice", "ReservationSid": "WR1"}),
        ("reservation.accepted", {"WorkerName": "alice", "ReservationSid": "WR1"}),
        ("task.completed", {}),
    ]
    seen = []
    async with running_app(database_url, twilio_auth_token=AUTH_TOKEN) as app:
        for n, (event_type, extra) in enumerate(steps):
            fields = {**base, **extra, "EventType": event_type, "EventSid": f"EV{n}"}
            response = await post(app.http, "/telephony/twilio/taskrouter", fields)
            assert response.status_code in (202, 204), response.text
            call = await call_state(app.http, "twilio:CA300")
            seen.append((call["state"], call["agent"] or call.get("offered_to")))
    assert seen == [
        ("queued", []),
        ("ringing", ["alice"]),
        ("answered", "alice"),
        ("ended", "alice"),
    ]
