"""The API documents: OpenAPI security schemes, and the AsyncAPI document of the websockets.

``/openapi.json`` (with ``/docs`` and ``/redoc``, assets served locally) gets the bearer and
API-key schemes, each operation marked with the one it needs; ``/asyncapi.json`` describes
``/ws/agent`` and ``/ws/supervisor`` (AsyncAPI 3.0): their messages are built by
``app.calls.pop`` and ``app.queues.router`` and delivered by ``app.live.pump``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.users.deps import current_user

try:
    VERSION = version("screenpop")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"

DESCRIPTION = (
    "Call-centre screen pop. Sign in with `POST /api/auth/login` and use the token as "
    "`Authorization: Bearer …`. The websockets (`/ws/agent`, `/ws/supervisor`) are described "
    "by the AsyncAPI document at [/asyncapi.json](/asyncapi.json)."
)

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The token from `POST /api/auth/login` (agents, supervisors, admins).",
    },
    "lookupApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`SCREENPOP_LOOKUP_API_KEY`, for PBXs that pull a caller name.",
    },
    "lookupApiKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "The same key as a query parameter (3CX, FreePBX Superfecta).",
    },
    "amazonConnectApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`SCREENPOP_AMAZON_CONNECT_API_KEY`, sent by the EventBridge API "
        "destination.",
    },
    "kamailioToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Screenpop-Token",
        "description": "`SCREENPOP_KAMAILIO_TOKEN`, sent by Kamailio's http_client.",
    },
}

# Operations whose key is not a user's token.
KEYED_PATHS: dict[str, list[dict[str, list[str]]]] = {
    "/telephony/lookup": [{"lookupApiKey": []}, {"lookupApiKeyQuery": []}],
}

router = APIRouter(tags=["ops"])


@router.get("/asyncapi.json", summary="AsyncAPI 3.0 document of the websockets")
async def asyncapi(request: Request) -> dict[str, Any]:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return asyncapi_document(f"{scheme}://{request.url.netloc}")


def install(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Add the security schemes to the app's OpenAPI document (built once, on first use).

    ``routers`` are the routers the app includes (without a prefix): each of their operations
    that depends on ``current_user`` is marked as needing the bearer token.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(
            SECURITY_SCHEMES
        )
        for router in routers:
            for route in router.routes:
                if isinstance(route, APIRoute) and route.include_in_schema:
                    _mark(schema, route)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mark(schema: dict[str, Any], route: APIRoute) -> None:
    security = KEYED_PATHS.get(route.path)
    if security is None and current_user in _dependency_calls(route.dependant):
        security = [{"bearerAuth": []}]
    if security is None:
        return
    for method in route.methods or ():
        operation = schema["paths"].get(route.path, {}).get(method.lower())
        if operation is not None:
            operation["security"] = security


def _dependency_calls(dependant: Dependant) -> set[Any]:
    calls: set[Any] = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= _dependency_calls(sub)
    return calls


def _message(name: str, summary: str, required: list[str], props: dict[str, Any]) -> Any:
    return {
        "name": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "required": ["type", *required],
            "properties": {"type": {"const": name}, **props},
        },
    }


_STR = {"type": "string"}
_INT = {"type": "integer"}
_CALL_REF = {"call_id": _STR, "version": _INT}
_CALLER = {
    "type": "object",
    "properties": {
        "raw": _STR,
        "e164": {"type": ["string", "null"]},
        "national": {"type": ["string", "null"], "description": "As its country writes it."},
        "withheld": {"type": "boolean"},
    },
}
_POP_PROPS: dict[str, Any] = {
    "version": {**_INT, "description": "Grows with every push for the call."},
    "call": {
        "type": "object",
        "properties": {"id": _STR, "state": _STR, "caller": _CALLER, "queue": _STR, "agent": _STR},
    },
    "match": {
        "type": "object",
        "properties": {
            "kind": {"enum": ["single", "multiple", "none", "withheld"]},
            "candidates": {"type": "array"},
        },
    },
    "customer": {"type": ["object", "null"]},
    "account": {"type": ["object", "null"], "description": "Masked for roles without money."},
    "loyalty": {
        "type": ["object", "null"],
        "description": "Programme, tier, points, since; computed=true for the frequency "
        "programme screenpop computes from purchases (docs/customers.md, Loyalty).",
    },
    "purchases": {"type": "array"},
    "insights": {"type": ["object", "null"]},
    "next_needs": {"type": "array"},
    "interactions": {"type": "array"},
}

MESSAGES: dict[str, Any] = {
    "pop": _message(
        "pop",
        "The caller's profile, pushed when a call is offered.",
        ["version", "call", "match"],
        _POP_PROPS,
    ),
    "popUpdate": _message(
        "pop.update",
        "A newer version of a pop (a slow part arrived).",
        ["version", "call"],
        _POP_PROPS,
    ),
    "callState": _message(
        "call.state",
        "The call moved on; withdrawn=true when this agent no longer has it.",
        ["call_id", "state"],
        {
            "call_id": _STR,
            "state": _STR,
            "withdrawn": {"type": "boolean"},
            "reason": {
                "enum": [
                    "answered_elsewhere",
                    "transferred",
                    "offer_withdrawn",
                    "abandoned",
                    "ended",
                ]
            },
        },
    ),
    "ack": _message(
        "ack",
        "Delivered receipt (seen=true: also seen).",
        ["call_id", "version"],
        {**_CALL_REF, "seen": {"type": "boolean"}},
    ),
    "seen": _message("seen", "Seen receipt.", ["call_id", "version"], _CALL_REF),
    "error": _message(
        "error",
        "A client message the server refused (not_found: a receipt for a call whose pop was "
        "never sent to this agent; nothing written); the connection stays open.",
        ["error", "detail"],
        {"error": _STR, "detail": _STR},
    ),
    "queues": _message(
        "queues",
        "Today's queue and agent figures in the supervisor's scope (at most 4 a second); "
        "calls that name no queue are the queue named unrouted; an agent with known=false is "
        "a name only the phone system gave.",
        ["queues", "agents"],
        {
            "queues": {"type": "array"},
            "agents": {"type": "array"},
            "pop_health": {"type": "object"},
        },
    ),
}

CLOSE_CODES = (
    "4401 bad or expired token (sign in again); 4403 role not allowed; 4008 too slow (reconnect, "
    "the pops are replayed); 4009 messages may have been missed (reconnect for the replay); "
    "1001 server going away."
)


def _channel(address: str, description: str, messages: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": f"{description} Close codes: {CLOSE_CODES}",
        "parameters": {},
        "bindings": {
            "ws": {
                "query": {"type": "object", "required": ["token"], "properties": {"token": _STR}}
            }
        },
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
    }


def _operation(action: str, channel: str, messages: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages],
    }


def asyncapi_document(server_url: str) -> dict[str, Any]:
    """The AsyncAPI 3.0 document, with ``server_url`` (ws://host:port) as its server."""
    host = server_url.split("://", 1)[1]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "screenpop websockets",
            "version": VERSION,
            "description": "Pops for agents, live figures for supervisors. Authenticate with the "
            "token from POST /api/auth/login as the `token` query parameter.",
        },
        "servers": {"screenpop": {"host": host, "protocol": server_url.split("://", 1)[0]}},
        "channels": {
            "agent": _channel(
                "/ws/agent",
                "One agent's pops. On connect every pop still live for the agent is replayed.",
                ["pop", "popUpdate", "callState", "ack", "seen", "error"],
            ),
            "supervisor": _channel(
                "/ws/supervisor",
                "A snapshot on connect, then a fresh one after changes.",
                ["queues"],
            ),
        },
        "operations": {
            "receivePops": _operation(
                "receive", "agent", ["pop", "popUpdate", "callState", "error"], "Server to agent."
            ),
            "sendReceipts": _operation(
                "send", "agent", ["ack", "seen"], "Agent to server: receipts."
            ),
            "receiveQueues": _operation(
                "receive", "supervisor", ["queues"], "Server to supervisor."
            ),
        },
        "components": {"messages": MESSAGES},
    }
