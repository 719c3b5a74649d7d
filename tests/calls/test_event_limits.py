"""Events that do not fit the database are refused at the edge, over real HTTP, unwritten.

Every case goes through the app's real HTTP layer (both databases): a text longer than its
column, a NUL character anywhere, or a field of the wrong JSON type is a 422 naming the field
(and the limit), and nothing is journaled. Values at the limit are stored whole.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call, CallEventRecord
from app.calls.replay import replay_journal
from app.db import create_sessionmaker
from tests.calls.support import (
    GENERIC,
    bearer,
    event,
    journal_rows,
    new_call_id,
    running_app,
    signed,
)
from tests.telephony.telephony_helpers import fixture_json

# (case, change to a valid generic body, the field the 422 must name, text the detail holds)
GENERIC_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("event id over 200", {"event_id": "e" * 201}, "event_id", "limit is 200"),
    ("call id of 193", {"call_id": "c" * 193}, "call_id", "limit is 192"),
    ("agent of 65", {"kind": "offered", "agent": "a" * 65}, "agent", "limit is 64"),
    ("agent of 5,000", {"kind": "offered", "agent": "a" * 5000}, "agent", "limit is 64"),
    ("queue of 500", {"queue": "q" * 500}, "queue", "limit is 64"),
    ("caller name of 201", {"caller_name": "n" * 201}, "caller_name", "limit is 200"),
    ("caller of 129", {"caller": "1" * 129}, "caller", "limit is 128"),
    ("dialed of 65", {"dialed": "x" * 65}, "dialed", "limit is 64"),
    ("account ref of 65", {"attributes": {"account_ref": "9" * 65}}, "attributes.account_ref",
     "limit is 64"),
    ("transfer target of 65", {"kind": "transferred", "attributes": {"transfer_to": "t" * 65}},
     "attributes.transfer_to", "limit is 64"),
    ("NUL in caller_name", {"caller_name": "Ada\u0000"}, "caller_name", "NUL"),
    ("NUL in the event id", {"event_id": "e\u00001"}, "event_id", "NUL"),
    ("NUL in nested attributes", {"attributes": {"crm": {"tags": ["ok", "b\u0000d"]}}},
     "attributes.crm.tags[1]", "NUL"),
    ("NUL in an attribute key", {"attributes": {"k\u0000": 1}}, "attributes.k\\u0000", "NUL"),
    ("NUL in a field nobody reads", {"extra": {"note": "\u0000"}}, "extra.note", "NUL"),
    ("event_id true", {"event_id": True}, "event_id", "must be a string"),
    ("call_id an object", {"call_id": {"id": 1}}, "call_id", "must be a string"),
    ("queue an array", {"queue": ["sales"]}, "queue", "must be a string"),
    ("agent false", {"kind": "offered", "agent": False}, "agent", "must be a string"),
    ("attributes an array", {"attributes": ["x"]}, "attributes", "expected an object"),
    ("offer_withdrawn a string", {"attributes": {"offer_withdrawn": "yes"}},
     "attributes.offer_withdrawn", "true or false"),
]  # fmt: skip


async def test_generic_events_that_do_not_fit_are_refused_naming_the_field(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        for case, change, field, says in GENERIC_REFUSALS:
            body = {**event("c-limits", "queued"), **change}
            raw, headers = signed(body)
            response = await app.http.post(GENERIC, content=raw, headers=headers)
            assert response.status_code == 422, (case, response.text)
            answer = response.json()
            assert answer["error"] == "malformed_event", case
            assert answer["detail"].startswith(f"{field}: "), (case, answer["detail"])
            assert says in answer["detail"], (case, answer["detail"])
    assert await journal_rows(clean_engine) == 0


async def test_ids_at_their_limits_are_stored_whole_and_kept_apart(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    """Ids sharing all but their last character are two events, and two calls."""
    stem = "x" * 199
    long_call = "c" * 192  # "generic:" + 192 = the 200 of calls.id
    async with running_app(database_url) as app:
        for call_id, suffix in ((long_call, "a"), ("c-second", "b")):
            first = await app.post(event(call_id, "queued", event_id=stem + suffix))
            assert first.status_code == 202, first.text
            assert first.json()["duplicate"] is False
        # Sharing their first 200 characters, these are over the limit: refused, not merged.
        for suffix in "ab":
            over = event("c-over", "queued", event_id=stem + "y" + suffix)
            refused = await app.post(over)
            assert refused.status_code == 422 and "limit is 200" in refused.json()["detail"]
        supervisor = bearer("sam", "supervisor")
        shown = await app.http.get(f"/api/calls/generic:{long_call}", headers=supervisor)
        assert shown.status_code == 200 and shown.json()["id"] == f"generic:{long_call}"
    async with AsyncSession(clean_engine) as session:
        ids = sorted((await session.execute(select(CallEventRecord.event_id))).scalars())
        calls = sorted((await session.execute(select(Call.id))).scalars())
    assert ids == [stem + "a", stem + "b"]
    assert calls == sorted([f"generic:{long_call}", "generic:c-second"])


def _form(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return urlencode(fields).encode(), {"content-type": "application/x-www-form-urlencoded"}


def _json(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(body).encode(), {"content-type": "application/json"}


def _provider_cases() -> list[tuple[str, str, bytes, dict[str, str], str]]:
    kamailio = fixture_json("kamailio_offered.form.json")
    telnyx = fixture_json("telnyx_call_initiated.json")
    telnyx["data"]["payload"]["caller_id_name"] = "ALICE\u0000"
    vonage = fixture_json("vonage_event_started.json")
    vonage["conversation_uuid"] = "v" * 194  # "vonage:" + 194 > 200
    connect = fixture_json("amazon_connect_connected_to_agent.json")
    connect["detail"]["agentInfo"]["agentArn"] = "arn:aws:connect:x/agent/" + "a" * 65
    twilio = fixture_json("twilio_status_completed.form.json")
    return [
        ("kamailio call id", "/telephony/kamailio/events",
         *_form({**kamailio, "call_id": "k" * 192}), "call_id"),
        ("kamailio NUL", "/telephony/kamailio/events",
         *_form({**kamailio, "from_name": "Ada\u0000"}), "caller_name"),
        ("telnyx NUL", "/telephony/telnyx/events", *_json(telnyx), "caller_name"),
        ("telnyx id true", "/telephony/telnyx/events",
         *_json({**telnyx, "data": {**telnyx["data"], "id": True}}), "data.id"),
        ("vonage call id", "/telephony/vonage/events", *_json(vonage), "call_id"),
        ("amazon connect agent", "/telephony/amazon-connect/events", *_json(connect), "agent"),
        ("twilio call sid", "/telephony/twilio/status",
         *_form({**twilio, "CallSid": "C" * 194}), "call_id"),
        ("twilio NUL", "/telephony/twilio/status",
         *_form({**twilio, "Direction": "in\u0000bound"}), "Direction"),
    ]  # fmt: skip


async def test_every_provider_refuses_what_does_not_fit(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url, dev=True) as app:
        for case, path, raw, headers, field in _provider_cases():
            response = await app.http.post(path, content=raw, headers=headers)
            assert response.status_code == 422, (case, response.text)
            assert response.json()["error"] == "malformed_event", case
            assert response.json()["detail"].startswith(f"{field}: "), (case, response.text)
    assert await journal_rows(clean_engine) == 0


async def test_the_body_limit_is_the_setting(clean_engine: AsyncEngine, database_url: str) -> None:
    """Above the default 64 KiB when the operator raises it; refused over it."""
    body = event("c-big", "queued", attributes={"padding": "x" * 100_000})
    raw, headers = signed(body)
    async with running_app(database_url, max_body_bytes=200_000) as app:
        accepted = await app.http.post(GENERIC, content=raw, headers=headers)
        assert accepted.status_code == 202, accepted.text
    async with running_app(database_url, max_body_bytes=50_000) as app:
        refused = await app.http.post(GENERIC, content=raw, headers=headers)
        assert refused.status_code == 413
        assert "limit is 50000" in refused.json()["detail"]
    assert await journal_rows(clean_engine) == 1


async def test_the_events_endpoint_answers_other_methods_405(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        for method in ("GET", "PUT"):
            response = await app.http.request(method, GENERIC)
            assert response.status_code == 405 and response.headers["allow"] == "POST"
            assert response.json()["error"] == "method_not_allowed"


async def test_openapi_documents_the_events_endpoint(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        document = (await app.http.get("/openapi.json")).json()
    operation = document["paths"]["/telephony/{provider}/events"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content["application/json"]["examples"]) == {
        "generic", "telnyx", "vonage", "amazon-connect"
    }  # fmt: skip
    assert "kamailio" in content["application/x-www-form-urlencoded"]["examples"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"X-Screenpop-Signature", "telnyx-signature-ed25519", "Authorization", "X-API-Key",
            "X-Screenpop-Token"} <= headers  # fmt: skip
    assert {"202", "401", "413", "415", "422", "503"} <= set(operation["responses"])
    error = document["components"]["schemas"]["WebhookError"]
    assert error["required"] == ["error", "detail"]
    generic = document["components"]["schemas"]["GenericCallEvent"]["properties"]
    assert (
        generic["agent"]["maxLength"] == 64 and generic["call_id"]["anyOf"][0]["maxLength"] == 192
    )
    status = document["paths"]["/telephony/twilio/status"]["post"]
    assert "X-Twilio-Signature" in {p["name"] for p in status["parameters"]}
    assert "422" in status["responses"]


async def test_replay_skips_a_journaled_event_that_no_longer_fits(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    """A row an older version journaled with a 5,000-character agent: the replay rebuilds the
    call from the events that fit instead of stopping."""
    cid = new_call_id()
    async with running_app(database_url) as app:
        for kind, fields in (("queued", {}), ("answered", {"agent": "alice"})):
            assert (await app.post(event(cid, kind, queue="sales", **fields))).status_code == 202
    async with AsyncSession(clean_engine) as session:
        answered = (
            await session.execute(select(CallEventRecord).where(CallEventRecord.kind == "answered"))
        ).scalar_one()
        answered.event = {**answered.event, "agent": "a" * 5000}
        await session.execute(delete(Call))
        await session.commit()
    assert await replay_journal(create_sessionmaker(clean_engine)) == 1
    async with AsyncSession(clean_engine) as session:
        call = (await session.execute(select(Call))).scalar_one()
    assert (call.id, call.state, call.agent) == (f"generic:{cid}", "queued", None)


async def test_the_call_api_refuses_what_it_could_not_store(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    """A NUL in a call id or a wrap-up, a customer id past int32: 422 naming it, not a 500."""
    async with running_app(database_url) as app:
        supervisor, alice = bearer("sam", "supervisor"), bearer("alice")
        cases = [
            ("GET", "/api/calls/%00x", supervisor, None, "call_id"),
            ("GET", "/api/calls/" + "c" * 201, supervisor, None, "call_id"),
            ("POST", "/api/calls/generic:c-1/wrapup", alice,
             {"disposition": "sale\u0000"}, "disposition"),
            ("POST", "/api/calls/generic:c-1/wrapup", alice,
             {"disposition": "sale", "notes": "a\u0000b"}, "notes"),
            ("POST", "/api/calls/generic:c-1/match", alice, {"customer_id": 2**31}, "customer_id"),
        ]  # fmt: skip
        for method, path, headers, body, field in cases:
            response = await app.http.request(method, path, headers=headers, json=body)
            assert response.status_code == 422, (path, body, response.text)
            assert response.json()["error"] == "invalid"
            assert field in response.json()["detail"], (path, response.text)
