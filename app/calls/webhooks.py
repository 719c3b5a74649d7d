"""Telephony webhooks: provider HTTP requests -> verified, parsed ``CallEvent``s -> ingest.

``POST /telephony/{provider}/events`` is answered by ``app.calls.fast_events``; the routes
here are the ones that answer something else (Twilio's TwiML and callbacks, Vonage's NCCO).
All of them read the raw body with ``read_body`` (one size limit, ``settings.max_body_bytes``:
413 before anything is parsed, and the body is not read past it), build a
``telephony.base.WebhookRequest`` whose ``url`` is ``SCREENPOP_PUBLIC_URL`` + path + raw query
(what Twilio signs), check it with the provider's secret and parse it into ``CallEvent``s,
which refuse any value that would not fit the database. Rejections map to ``{"error",
"detail"}`` with 401/404/413/415/422 and write nothing. When no database connection comes free
within ``SCREENPOP_DB_POOL_TIMEOUT_S`` (overload) the answer is 503 ``{"error":
"overloaded"}``, never a 500: providers retry, and the journal drops duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Receive

from app.calls import routing as call_routing
from app.calls import webhook_docs as docs
from app.calls.service import CallService, IngestResult
from app.db import utcnow
from app.deps import get_state
from app.errors import Overloaded, PayloadTooLarge
from app.settings import Settings
from app.state import State
from telephony.base import WebhookRequest
from telephony.errors import TelephonyError
from telephony.events import QUEUE_MAX, CallEvent, malformed
from telephony.registry import SECRET_SETTINGS, UnknownProvider, get_adapter
from telephony.routing import twilio_task
from telephony.twilio import twiml_enqueue

router = APIRouter(tags=["telephony"])
DEFAULT_QUEUE = "default"
QueueParam = Annotated[str | None, Query(max_length=QUEUE_MAX, description="Queue to enqueue into")]


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The raw body from the ASGI ``receive``, refusing (413) anything over ``limit`` bytes
    without reading past it; ``headers`` names are lower-case."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def provider_secret(settings: Settings, provider: str) -> str | None:
    """The configured secret for ``provider`` (None when unset)."""
    name = SECRET_SETTINGS.get(provider)
    if name is None:
        return None
    value = getattr(settings, name.lower(), None)
    if value is None:
        return None
    secret = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return secret or None


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _calls(request: Request) -> CallService:
    service: CallService = get_state(request)["services"]["calls"]
    return service


Received = tuple[list[CallEvent], datetime]


async def _receive(request: Request, provider: str) -> Received | JSONResponse:
    """Verified, parsed events of this request and when it arrived, or the error response."""
    arrived = utcnow()
    state = get_state(request)
    settings = state["settings"]
    try:
        adapter = get_adapter(provider)
    except UnknownProvider as exc:
        return _error(404, "unknown_provider", exc.detail)
    headers = dict(request.headers.items())
    body = await read_body(request.receive, headers, settings.max_body_bytes)
    outcome = parse_events(state, adapter, provider, request.scope, headers, body)
    if isinstance(outcome, TelephonyError):
        return _error(outcome.status_code, outcome.code, outcome.detail)
    return outcome, arrived


def parse_events(
    state: State,
    adapter: Any,
    provider: str,
    scope: Mapping[str, Any],
    headers: dict[str, str],
    body: bytes,
) -> list[CallEvent] | TelephonyError:
    """Verify and parse one webhook request (shared with ``app.calls.fast_events``).

    The URL checked against signatures is ``SCREENPOP_PUBLIC_URL`` + path + raw query (what
    Twilio signs); the scope's path is used as is (parsing a whole URL per event cost ~5 %).
    """
    settings = state["settings"]
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope["path"]
    url = settings.public_url.rstrip("/") + path + (f"?{query}" if query else "")
    webhook = WebhookRequest(
        method=scope["method"],
        url=url,
        path=path,
        query=dict(parse_qsl(query, keep_blank_values=True)),
        headers=headers,
        body=body,
        received_at=utcnow(),
    )
    try:
        adapter.verify(
            webhook, provider_secret(settings, provider), dev=settings.dev, now=webhook.received_at
        )
        events: list[CallEvent] = adapter.parse(webhook, default_region=settings.default_region)
        return events
    except (TelephonyError, ValidationError) as exc:
        refusal = exc if isinstance(exc, TelephonyError) else malformed(exc)
        state["metrics"].events.labels(source=provider, result=refusal.code).inc()
        return refusal


async def _ingest(request: Request, received: Received) -> list[IngestResult]:
    events, arrived = received
    return await ingest_events(_calls(request), events, arrived)


async def ingest_events(
    service: CallService, events: list[CallEvent], received_at: datetime
) -> list[IngestResult]:
    """Ingest a request's events, which arrived at ``received_at`` (journaled, and where pop
    health is measured from); a pool timeout (overload) is a 503, never a 500."""
    try:
        return [await service.ingest(event, received_at=received_at) for event in events]
    except PoolTimeout as exc:
        # Every pooled connection is busy (overload): nothing of this event was written, and
        # providers retry a 503; a 500 after 30 s helped nobody.
        raise Overloaded(
            "the server is overloaded (no database connection free); retry shortly"
        ) from exc


async def _queue_name(request: Request, results: list[IngestResult]) -> str:
    """The queue the call landed in (a provider's retry of the same webhook included)."""
    for result in results:
        try:
            name = result.queue or await _calls(request).actions.queue_of_call(result.call_id)
        except PoolTimeout as exc:
            raise Overloaded("the server is overloaded; retry shortly") from exc
        if name:
            return name
    return DEFAULT_QUEUE


def summary(results: list[IngestResult]) -> dict[str, Any]:
    """The 202 body: ``{"call_id", "duplicate", "events"}``."""
    first = results[0] if results else None
    return {
        "call_id": first.call_id if first else None,
        "duplicate": bool(results) and all(r.duplicate for r in results),
        "events": len(results),
    }


@router.get(
    "/telephony/twilio/voice", operation_id="twilio_voice_get", openapi_extra=docs.SIGNED_BY_TWILIO
)
@router.post("/telephony/twilio/voice", operation_id="twilio_voice", openapi_extra=docs.TWILIO)
async def twilio_voice(
    request: Request, queue: QueueParam = None, workflow_sid: QueueParam = None
) -> Response:
    """Twilio's incoming-call webhook: journal the call, answer TwiML that enqueues it.

    The queue is the one a routing rule names for this caller, else ``?queue=`` when the
    webhook URL names one, else the queue that owns the dialed number, else ``default``.
    ``?workflow_sid=`` enqueues into TaskRouter instead, with a ``<Task>`` carrying the
    routing hints: priority, preferred worker (the account manager), language, queue.
    """
    received = await _receive(request, "twilio")
    if isinstance(received, JSONResponse):
        return received
    results = await _ingest(request, received)
    name = queue or await _queue_name(request, results)
    state = get_state(request)
    hints = None
    if results:
        hints = await call_routing.hints_for_call(
            state["sessionmaker"],
            results[0].call_id,
            state["services"]["routing"],
            default_queue=name,
        )
    twiml = twiml_enqueue(
        (hints.queue if hints else None) or name,
        workflow_sid=workflow_sid,
        task=twilio_task(hints) if hints else None,
    )
    return Response(twiml, media_type="application/xml")


@router.post("/telephony/twilio/status", status_code=204, openapi_extra=docs.TWILIO)
@router.post("/telephony/twilio/taskrouter", status_code=204, openapi_extra=docs.TWILIO)
async def twilio_callbacks(request: Request) -> Response:
    """Twilio status callbacks (the caller's leg and agents' legs) and TaskRouter event
    callbacks (``reservation.created`` is the offer to an agent)."""
    received = await _receive(request, "twilio")
    if isinstance(received, JSONResponse):
        return received
    await _ingest(request, received)
    return Response(status_code=204)


@router.get("/telephony/vonage/answer", operation_id="vonage_answer", openapi_extra=docs.VONAGE)
@router.post(
    "/telephony/vonage/answer", operation_id="vonage_answer_post", openapi_extra=docs.VONAGE
)
async def vonage_answer(request: Request, queue: QueueParam = None) -> Response:
    """Vonage's answer webhook: journal the call, answer an NCCO joining the queue's
    conversation (``?queue=`` overrides the dialed number's queue)."""
    received = await _receive(request, "vonage")
    if isinstance(received, JSONResponse):
        return received
    results = await _ingest(request, received)
    name = queue or await _queue_name(request, results)
    ncco = [{"action": "conversation", "name": name}]
    return Response(json.dumps(ncco), media_type="application/json")
