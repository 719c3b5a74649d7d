"""Pure ASGI middleware around every request: request id, access log, metrics, server span.

- ``X-Request-ID``: taken from the request (a balancer's) or minted, echoed on the answer and
  bound into every log line written while the request runs.
- One access log line per HTTP request (method, route, status, ms).
- ``screenpop_http_requests_total`` / ``..._duration_seconds`` by route *template*, and
  ``screenpop_webhook_requests_total`` by telephony provider and outcome.
- A server span when tracing is on (``app.tracing``), continuing the caller's ``traceparent``.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs, tracing
from app.metrics import Metrics
from telephony.registry import ADAPTERS, CONTACT_ADAPTERS

access_log = logging.getLogger("screenpop.access")

TELEPHONY = "/telephony/"
CONTACTS = "/contacts/"
CONTACTS_ROUTE = "/contacts/{channel}/events"
# Answered ahead of FastAPI's router (app/calls/fast_events.py), so no route is in the scope.
EVENTS_ROUTE = "/telephony/{provider}/events"


def route_template(scope: Scope) -> str:
    """The matched route's path template; ``unmatched`` keeps 404 probes out of the labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    raw: str = scope.get("path", "")
    if raw.endswith("/events") and raw.count("/") == 3:
        if raw.startswith(TELEPHONY):
            return EVENTS_ROUTE
        if raw.startswith(CONTACTS):
            return CONTACTS_ROUTE
    return "unmatched"


def webhook_outcome(status: int) -> str:
    if status < 300:
        return "accepted"
    if status in (401, 403):
        return "unauthorized"
    if status == 503:
        return "overloaded"
    return "rejected" if status < 500 else "error"


def webhook_provider(path: str) -> str | None:
    """The provider a ``/telephony/<provider>/...`` path names, or the channel a
    ``/contacts/<channel>/events`` path names (``unknown`` if none is)."""
    if path.startswith(CONTACTS):
        name = path[len(CONTACTS) :].split("/", 1)[0]
        return name if name in CONTACT_ADAPTERS else "unknown"
    if not path.startswith(TELEPHONY):
        return None
    name = path[len(TELEPHONY) :].split("/", 1)[0]
    if name == "lookup":
        return None  # the PBX caller-name lookup is not a webhook
    return name if name in ADAPTERS else "unknown"


class ObserveRequests:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        name = f"{scope.get('method', 'WS')} {scope.get('path', '')}"
        with logs.bound(request_id=rid), tracing.server_span(name, headers) as span:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if scope["type"] == "http":
                    self._observe(scope, status, time.perf_counter() - started, span)

    def _observe(self, scope: Scope, status: int, seconds: float, span: Any) -> None:
        method = scope.get("method", "")
        route = route_template(scope)
        if span is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.request.method", method)
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
        state = scope.get("state") or {}
        metrics: Metrics | None = state.get("metrics")
        if metrics is not None:
            metrics.http_requests.labels(method=method, route=route, status=str(status)).inc()
            metrics.http_duration.labels(method=method, route=route).observe(seconds)
            provider = webhook_provider(scope.get("path", ""))
            if provider is not None:
                metrics.webhooks.labels(provider=provider, outcome=webhook_outcome(status)).inc()
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope.get("path"),
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                },
            )
