"""``POST /telephony/{provider}/events``: every PBX's call events, answered as plain ASGI.

Every call event of every PBX comes through this one endpoint, so its per-request overhead is
the product's. FastAPI's exception middleware, exit stack, router (a match against every
route), request/response wrappers and dependency solving cost ~20 % of the endpoint's CPU
(py-spy), so this is the endpoint's only implementation: ASGI middleware inside
``ObserveRequests`` (request ids, the access log, metrics and spans still apply), with the same body
reader, parser and ingest as the FastAPI webhook routes (``app.calls.webhooks``). Its OpenAPI
description is added to the app's document by ``app.calls.webhook_docs``.

``POST /contacts/{channel}/events`` (chat, email, … and chat systems such as Chatwoot:
``telephony.registry.CONTACT_ADAPTERS``) is answered here too, the same way: contacts are
ingested as calls are.

Answers ``202 {"call_id", "duplicate", "events"}``, or ``{"error", "detail"}`` with
401/404/413/415/422/503 (405 to another method); a 503 carries ``Retry-After``, and database
failures are mapped by ``app.errors.database_error`` as on every route. Every other path goes
on to FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.calls import webhooks
from app.db import utcnow
from app.errors import DATABASE_ERRORS, DomainError, database_error
from telephony.base import WebhookAdapter
from telephony.errors import TelephonyError
from telephony.registry import UnknownProvider, get_adapter, get_contact_adapter

log = logging.getLogger(__name__)

SUFFIX = "/events"
# Path prefix -> the registry lookup of the name between it and ``SUFFIX``.
LOOKUPS: dict[str, Callable[[str], WebhookAdapter]] = {
    "/telephony/": get_adapter,
    "/contacts/": get_contact_adapter,
}
DB_OR_DOMAIN_ERRORS: tuple[type[Exception], ...] = (DomainError, *DATABASE_ERRORS)
JSON_HEADERS = [(b"content-type", b"application/json")]


class FastEvents:
    """ASGI middleware: the provider events endpoint without FastAPI's per-request layers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        prefix = next((p for p in LOOKUPS if path.startswith(p)), "")
        provider = path[len(prefix) : -len(SUFFIX)]
        if (
            scope["type"] != "http"
            or not prefix
            or not path.endswith(SUFFIX)
            or not provider
            or "/" in provider
        ):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            status, body = _error(405, "method_not_allowed", "use POST")
            await _answer(send, status, body, [(b"allow", b"POST")])
            return
        status, body, extra = await self._handle(scope, receive, LOOKUPS[prefix], provider)
        await _answer(send, status, body, extra)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        lookup: Callable[[str], WebhookAdapter],
        provider: str,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        state: Any = scope["state"]
        arrived = utcnow()  # before the body: pop health is measured from here
        try:
            adapter = lookup(provider)
        except UnknownProvider as exc:
            code = "unknown_provider" if lookup is get_adapter else "unknown_channel"
            return (*_error(404, code, exc.detail), [])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await webhooks.read_body(receive, headers, state["settings"].max_body_bytes)
            events = webhooks.parse_events(state, adapter, provider, scope, headers, body)
            if isinstance(events, TelephonyError):
                return (*_error(events.status_code, events.code, events.detail), [])
            results = await webhooks.ingest_events(state["services"]["calls"], events, arrived)
        except DB_OR_DOMAIN_ERRORS as exc:
            mapped = database_error(exc, state.get("engine"))
            if mapped is not None:
                return _domain(mapped)
            log.exception("unhandled error on %s", scope["path"])
            return (*_error(500, "internal", "internal error; see the server log"), [])
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            return (*_error(500, "internal", "internal error; see the server log"), [])
        return 202, orjson.dumps(webhooks.summary(results)), []


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, length, *(extra or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _domain(exc: DomainError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    status, body = _error(exc.status, exc.error, exc.detail)
    retry = [(b"retry-after", str(exc.retry_after).encode())] if exc.retry_after else []
    return status, body, retry


def _error(status: int, error: str, detail: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": error, "detail": detail})
