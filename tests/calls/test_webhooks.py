"""Webhooks over HTTP: the generic endpoint's answers, and every bad input refused unwritten."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from twilio.request_validator import RequestValidator

from app.queues import service as queues
from tests.calls.support import (
    GENERIC,
    event,
    journal_rows,
    new_call_id,
    running_app,
    signed,
    token,
)
from tests.conftest import add_user


async def test_generic_event_is_accepted_then_a_duplicate(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        body = event(new_call_id(), "queued", queue="sales")
        first = await app.post(body)
        assert first.status_code == 202
        assert first.json()["call_id"] == f"generic:{body['call_id']}"
        assert first.json()["duplicate"] is False
        again = await app.post(body)
        assert again.status_code == 202 and again.json()["duplicate"] is True
    assert await journal_rows(clean_engine) == 1


def _bad_requests() -> list[tuple[str, int, str]]:
    return [
        ("unsigned", 401, "bad_signature"),
        ("wrong-secret", 401, "bad_signature"),
        ("tampered", 401, "bad_signature"),
        ("stale", 401, "stale_timestamp"),
        ("unknown-provider", 404, "unknown_provider"),
        ("text-plain", 415, "unsupported_media_type"),
        ("too-large", 413, "payload_too_large"),
        ("not-json", 422, "malformed_event"),
        ("missing-kind", 422, "malformed_event"),
        ("bad-kind", 422, "malformed_event"),
        ("missing-call-id", 422, "malformed_event"),
    ]


@pytest.mark.parametrize(("case", "status", "error"), _bad_requests())
async def test_bad_input_is_refused_and_writes_nothing(
    clean_engine: AsyncEngine, database_url: str, case: str, status: int, error: str
) -> None:
    body = event(new_call_id(), "queued")
    raw, headers = signed(body)
    path = GENERIC
    if case == "unsigned":
        headers.pop("x-screenpop-signature")
    elif case == "wrong-secret":
        raw, headers = signed(body, secret="another-secret")
    elif case == "tampered":
        raw = raw.replace(b"queued", b"offered")
    elif case == "stale":
        raw, headers = signed(body, t=int(time.time()) - 600)
    elif case == "unknown-provider":
        path = "/telephony/nosuchpbx/events"
    elif case == "text-plain":
        headers["content-type"] = "text/plain"
    elif case == "too-large":
        body["attributes"] = {"padding": "x" * 70_000}
        raw, headers = signed(body)
    elif case == "not-json":
        raw, headers = signed(b"{not json")
    elif case == "missing-kind":
        del body["kind"]
        raw, headers = signed(body)
    elif case == "bad-kind":
        body["kind"] = "exploded"
        raw, headers = signed(body)
    elif case == "missing-call-id":
        del body["call_id"]
        raw, headers = signed(body)
    async with running_app(database_url) as app:
        response = await app.http.post(path, content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["detail"]
    assert await journal_rows(clean_engine) == 0


async def test_a_body_streamed_over_the_cap_is_refused_without_a_length(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    async with running_app(database_url) as app:
        response = await app.http.post(
            GENERIC, content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert await journal_rows(clean_engine) == 0


async def test_provider_without_a_secret_is_refused_unless_dev(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    form = "CallSid=CA1&From=%2B447700900123&To=%2B448081570001&CallStatus=ringing"
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with running_app(database_url) as app:
        refused = await app.http.post("/telephony/twilio/voice", content=form, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"] == "not_configured"
    assert await journal_rows(clean_engine) == 0
    async with running_app(database_url, dev=True) as app:
        accepted = await app.http.post("/telephony/twilio/voice", content=form, headers=headers)
    assert accepted.status_code == 200
    assert "<Enqueue>default</Enqueue>" in accepted.text
    assert await journal_rows(clean_engine) == 1


async def test_twilio_voice_enqueues_to_the_dialed_numbers_queue(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    async with AsyncSession(clean_engine) as session:
        await queues.upsert_queue(session, name="sales", numbers=["+448081570001"])
        await session.commit()
    auth_token = "twilio-auth-token-for-tests"
    params = {"CallSid": "CA42", "From": "+447700900123", "To": "+448081570001",
              "CallStatus": "ringing"}  # fmt: skip
    url = "http://127.0.0.1:8000/telephony/twilio/voice"
    signature = RequestValidator(auth_token).compute_signature(url, params)
    async with running_app(database_url, twilio_auth_token=auth_token) as app:
        response = await app.http.post(
            "/telephony/twilio/voice",
            data=params,
            headers={"x-twilio-signature": signature},
        )
        assert response.status_code == 200, response.text
        assert "<Enqueue>sales</Enqueue>" in response.text
        call = await app.http.get(
            "/api/calls/twilio:CA42", headers={"Authorization": "Bearer " + _sup()}
        )
    assert call.json()["queue"] == "sales" and call.json()["state"] == "queued"


def _sup() -> str:
    return token("sam", "supervisor")


async def test_vonage_answer_replies_an_ncco(clean_engine: AsyncEngine, database_url: str) -> None:
    async with running_app(database_url, dev=True) as app:
        response = await app.http.get(
            "/telephony/vonage/answer",
            params={
                "from": "447700900123",
                "to": "448081570001",
                "uuid": "u1",
                "conversation_uuid": "CON-1",
                "queue": "support",
            },
        )
    assert response.status_code == 200, response.text
    assert json.loads(response.text) == [{"action": "conversation", "name": "support"}]
    assert await journal_rows(clean_engine) == 1


async def test_kamailio_offer_reaches_the_agent_by_extension(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await add_user(clean_engine, "alice", extension="201")
    form = {
        "call_id": "abc@pbx",
        "from_user": "07700900123",
        "from_name": "",
        "to_user": "",
        "ruri_user": "201",
        "pai": "",
        "event": "offered",
        "ts": f"{time.time():.6f}",
    }
    async with running_app(database_url, kamailio_token="kamailio-token-xyz") as app:
        response = await app.http.post(
            "/telephony/kamailio/events",
            data=form,
            headers={"x-screenpop-token": "kamailio-token-xyz"},
        )
        assert response.status_code == 202, response.text
        call = await app.http.get(
            "/api/calls/kamailio:abc@pbx", headers={"Authorization": "Bearer " + _sup()}
        )
    body = call.json()
    assert body["state"] == "ringing" and body["offered_to"] == ["alice"]
    assert body["caller"]["e164"] == "+447700900123"


async def test_unhandled_http_errors_are_json(database_url: str, clean_engine: AsyncEngine) -> None:
    async with running_app(database_url) as app:
        response = await app.http.get(GENERIC)
    assert response.status_code == 405
    assert isinstance(response, httpx.Response) and response.json()["error"]


async def test_an_exhausted_connection_pool_answers_503_overloaded_quickly(
    clean_engine: AsyncEngine, database_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("the pool size and timeout apply to PostgreSQL engines")
    async with running_app(database_url, db_pool_size=1, db_pool_timeout_s=0.3) as app:
        engine: AsyncEngine = app.state["engine"]
        # Hold every pooled connection (1 + 1 overflow, and the ingest pool's one), as events
        # stuck under overload do.
        held = [await engine.connect() for _ in range(2)]
        hot_pool = app.state["services"]["calls"].store.pool
        hot = await hot_pool.acquire()
        try:
            body = event(new_call_id(), "queued", queue="sales")
            started = time.perf_counter()
            refused = await app.post(body)
            elapsed = time.perf_counter() - started
        finally:
            for conn in held:
                await conn.close()
            hot_pool.release(hot)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "overloaded" and refused.json()["detail"]
        assert elapsed < 5
        # Nothing was written; the provider's retry goes through once a connection is free.
        assert await journal_rows(clean_engine) == 0
        retried = await app.post(body)
        assert retried.status_code == 202 and retried.json()["duplicate"] is False
    assert await journal_rows(clean_engine) == 1


async def test_the_events_endpoint_keeps_request_ids_and_refuses_unknown_providers(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    """Served by ``FastEvents`` ahead of FastAPI: same answers, request ids still on them."""
    async with running_app(database_url) as app:
        body = event(new_call_id(), "queued", queue="sales")
        raw, headers = signed(body)
        headers["x-request-id"] = "trace-me-42"
        accepted = await app.http.post(GENERIC, content=raw, headers=headers)
        assert accepted.status_code == 202
        assert accepted.headers["x-request-id"] == "trace-me-42"
        assert accepted.headers["content-type"] == "application/json"
        assert int(accepted.headers["content-length"]) == len(accepted.content)
        # Any provider name that is not an adapter's is a 404, however long.
        long_name = await app.http.post(
            "/telephony/" + "x" * 40 + "/events", content=raw, headers=headers
        )
        assert long_name.status_code == 404 and long_name.json()["error"] == "unknown_provider"
    assert await journal_rows(clean_engine) == 1


async def test_fast_events_hands_every_other_request_to_the_app() -> None:
    from app.calls.fast_events import FastEvents

    seen: list[tuple[str, str]] = []

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["method"], scope["path"]))

    fast = FastEvents(downstream)
    for method, path in [
        ("GET", "/telephony/generic/other"),
        ("POST", "/telephony/generic/other"),
        ("POST", "/telephony/a/b/events"),
        ("POST", "/telephony//events"),
        ("POST", "/api/calls"),
    ]:
        await fast({"type": "http", "method": method, "path": path}, None, None)  # type: ignore[arg-type]
    assert [p for _, p in seen] == [
        "/telephony/generic/other",
        "/telephony/generic/other",
        "/telephony/a/b/events",
        "/telephony//events",
        "/api/calls",
    ]


@pytest.mark.parametrize("path", ["/telephony/twilio/status", "/telephony/twilio/taskrouter"])
async def test_twilio_callback_routes_check_the_signature(
    clean_engine: AsyncEngine, database_url: str, path: str
) -> None:
    async with running_app(database_url, twilio_auth_token="twilio-token-for-tests") as app:
        response = await app.http.post(
            path,
            content=b"CallSid=CA1&CallStatus=ringing",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 401
        assert response.json()["error"] == "bad_signature"
    assert await journal_rows(clean_engine) == 0
