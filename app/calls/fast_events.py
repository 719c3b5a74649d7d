"""``POST /telephony/{provider}/events`` answered as plain ASGI, ahead of FastAPI's routing.

Every call event of every PBX comes through this one endpoint, so its per-request overhead is
the product's. FastAPI's exception middleware, exit stack, router (a match against every
route), request/response wrappers and dependency solving cost ~20 % of the endpoint's CPU
(py-spy). This middleware sits inside ``RequestIdMiddleware`` (request ids and the access log
still apply) and answers exactly what the FastAPI route answers - it shares
``webhooks.parse_events``, ``webhooks.ingest_events`` and ``webhooks.summary`` with it: ``202
{"call_id", "duplicate", "events"}``, or ``{"error", "detail"}`` with 401/404/413/415/422/503.
Anything else (another method, a provider name the route would refuse, every other path)
goes on to FastAPI unchanged; the route stays there for the OpenAPI document.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.calls import webhooks
from app.errors import DomainError, PayloadTooLarge
from telephony.errors import TelephonyError
from telephony.registry import UnknownProvider, get_adapter

log = logging.getLogger(__name__)

PREFIX = "/telephony/"
SUFFIX = "/events"
MAX_PROVIDER = 32  # as the FastAPI route's path parameter
JSON_HEADERS = [(b"content-type", b"application/json")]


class FastEvents:
    """ASGI middleware: the provider events endpoint without FastAPI's per-request layers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(PREFIX)
            or not path.endswith(SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        provider = path[len(PREFIX) : -len(SUFFIX)]
        if not provider or "/" in provider or len(provider) > MAX_PROVIDER:
            await self.app(scope, receive, send)
            return
        status, body = await self._handle(scope, receive, provider)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive, provider: str) -> tuple[int, bytes]:
        state: Any = scope["state"]
        try:
            adapter = get_adapter(provider)
        except UnknownProvider as exc:
            return _error(404, "unknown_provider", exc.detail)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await _read_body(receive, headers, state["settings"].max_body_bytes)
            events = webhooks.parse_events(state, adapter, provider, scope, headers, body)
            if isinstance(events, TelephonyError):
                return _error(events.status_code, events.code, events.detail)
            results = await webhooks.ingest_events(state["services"]["calls"], events)
        except DomainError as exc:
            return _error(exc.status, exc.error, exc.detail)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            return _error(500, "internal", "internal error; see the server log")
        return 202, orjson.dumps(webhooks.summary(results))


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` without reading past it."""
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


def _error(status: int, error: str, detail: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": error, "detail": detail})
