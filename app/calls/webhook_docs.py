"""The OpenAPI description of the telephony webhooks.

``POST /telephony/{provider}/events`` is answered by ASGI middleware (``app.calls.fast_events``)
that FastAPI's router never sees, so ``install`` adds it to the app's document by hand: the
request body per provider (schemas and examples), the signature header each provider sends,
and every answer with its ``{"error", "detail"}`` shape. ``TWILIO`` and ``VONAGE`` are the
same descriptions for the FastAPI routes (Twilio's voice and callbacks, Vonage's answer),
which read their body raw too. Text limits come from
``telephony.events``, the ones every event is checked against.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from telephony import events as limits
from telephony.events import EVENT_KINDS
from telephony.registry import ADAPTERS, CONTACT_ADAPTERS

EVENTS_PATH = "/telephony/{provider}/events"
CONTACTS_PATH = "/contacts/{channel}/events"
ERROR = "#/components/schemas/WebhookError"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(limit: int, description: str) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit, "description": description}


def _id(limit: int, description: str) -> dict[str, Any]:
    return {"anyOf": [_text(limit, description), {"type": "integer"}]}


SCHEMAS: dict[str, dict[str, Any]] = {
    "WebhookError": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "example": "malformed_event"},
            "detail": {
                "type": "string",
                "example": "event_id: is 201 characters long; the limit is 200",
            },
        },
    },
    "WebhookAccepted": {
        "type": "object",
        "required": ["call_id", "duplicate", "events"],
        "properties": {
            "call_id": {"type": ["string", "null"], "example": "generic:c-1"},
            "duplicate": {"type": "boolean"},
            "events": {"type": "integer", "description": "events in the request"},
        },
    },
    "GenericCallEvent": {
        "type": "object",
        "description": "Our own event format (provider `generic`). No text may hold a NUL.",
        "required": ["event_id", "call_id", "kind"],
        "properties": {
            "event_id": _id(limits.EVENT_ID_MAX, "unique per event; a repeat is a duplicate"),
            "call_id": _id(
                limits.CALL_ID_MAX - len("generic:"),
                "the PBX's call id; stored as `generic:<call_id>`",
            ),
            "kind": {"type": "string", "enum": sorted(EVENT_KINDS)},
            "caller": {
                "anyOf": [
                    _text(limits.CALLER_RAW_MAX, "the caller's number as received"),
                    {
                        "type": "object",
                        "properties": {
                            "raw": _text(limits.CALLER_RAW_MAX, "the number"),
                            "withheld": {"type": "boolean"},
                        },
                    },
                    {"type": "null"},
                ]
            },
            "caller_name": _text(limits.CALLER_NAME_MAX, "caller name from the network"),
            "dialed": _text(limits.DIALED_MAX, "the dialed number (DID)"),
            "queue": _text(limits.QUEUE_MAX, "queue name; created on first use"),
            "agent": _text(limits.AGENT_MAX, "username, extension or worker id"),
            "occurred_at": {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
                "description": "ISO 8601 or unix seconds; default: when received",
            },
            "attributes": {
                "type": "object",
                "properties": {
                    "account_ref": _text(limits.ACCOUNT_REF_MAX, "account number keyed in"),
                    "transfer_to": _text(limits.AGENT_MAX, "on `transferred`: the target"),
                    "offer_withdrawn": {"type": "boolean"},
                    "notes": _text(limits.NOTES_MAX, "on `transferred`: notes so far"),
                },
                "additionalProperties": True,
            },
        },
    },
    "KamailioForm": {
        "type": "object",
        "description": "Posted by Kamailio's `http_client` (see telephony/kamailio/).",
        "required": ["call_id", "event"],
        "properties": {
            "call_id": _text(limits.CALL_ID_MAX - len("kamailio:"), "SIP Call-ID"),
            "event": {
                "type": "string",
                "enum": ["offered", "answered", "unanswered", "abandoned", "ended"],
            },
            "from_user": _text(limits.CALLER_RAW_MAX, "From user part"),
            "from_name": _text(limits.CALLER_NAME_MAX, "From display name"),
            "to_user": _text(limits.DIALED_MAX, "the dialed number"),
            "ruri_user": _text(limits.AGENT_MAX, "the extension being rung (the agent)"),
            "pai": {"type": "string", "description": "P-Asserted-Identity URI, or empty"},
            "ts": {"type": "string", "description": "unix seconds, possibly fractional"},
        },
    },
    "TelnyxWebhook": {
        "type": "object",
        "description": "Telnyx Call Control v2; the call is `data.payload.call_session_id`.",
        "required": ["data"],
        "properties": {"data": {"type": "object", "required": ["id", "event_type", "payload"]}},
    },
    "VonageEvent": {
        "type": "object",
        "description": "Vonage Voice event webhook; the call is `conversation_uuid`.",
        "required": ["uuid", "status"],
        "properties": {
            "uuid": {"type": "string"},
            "conversation_uuid": {"type": "string"},
            "status": {"type": "string"},
            "direction": {"type": "string", "enum": ["inbound", "outbound"]},
            "from": {"type": "string"},
            "to": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
        },
    },
    "AmazonConnectContactEvent": {
        "type": "object",
        "description": "EventBridge `Amazon Connect Contact Event`; VOICE contacts only.",
        "required": ["id", "detail-type", "detail"],
        "properties": {
            "id": _text(limits.EVENT_ID_MAX, "the event id"),
            "detail-type": {"type": "string", "enum": ["Amazon Connect Contact Event"]},
            "detail": {"type": "object", "required": ["eventType", "contactId"]},
        },
    },
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "generic": {
        "event_id": "e-1",
        "call_id": "c-1",
        "kind": "offered",
        "caller": "+447700900123",
        "queue": "sales",
        "agent": "201",
        "attributes": {"account_ref": "12345"},
    },
    "telnyx": {
        "data": {
            "event_type": "call.initiated",
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": "2025-05-01T09:00:00.123456Z",
            "payload": {
                "call_session_id": "428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
                "caller_id_name": "ALICE SMITH",
                "direction": "incoming",
                "from": "+447700900123",
                "to": "+442079460000",
            },
            "record_type": "event",
        }
    },
    "vonage": {
        "from": "447700900123",
        "to": "442079460000",
        "uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        "conversation_uuid": "CON-8f7a3e2c-1b4d-4f6a-9c0e-2d5b7a9c1e3f",
        "status": "started",
        "direction": "inbound",
        "timestamp": "2025-05-01T09:00:00.512Z",
    },
    "amazon-connect": {
        "version": "0",
        "id": "5b2a3c4d-6e7f-8091-a2b3-c4d5e6f70819",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "time": "2025-05-01T09:00:04Z",
        "detail": {
            "eventType": "QUEUED",
            "contactId": "7f8e9d0c-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
            "channel": "VOICE",
            "queueInfo": {"queueArn": "arn:aws:connect:eu-west-2:1:instance/i/queue/q-sales"},
            "attributes": {"CustomerNumber": "+447700900123", "DialedNumber": "+442079460000"},
        },
    },
    "kamailio": {
        "call_id": "a84b4c76e66710@pc33.atlanta.example.com",
        "from_user": "07700900123",
        "from_name": '"Alice Smith"',
        "to_user": "442079460000",
        "ruri_user": "201",
        "pai": "<sip:+447700900123@carrier.example.net;user=phone>",
        "event": "offered",
        "ts": "1795432230.804653",
    },
}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


SIGNATURE_HEADERS = [
    _header(
        "X-Screenpop-Signature",
        "generic: `t=<unix seconds>,v1=<hex HMAC-SHA256(SCREENPOP_WEBHOOK_SECRET, "
        '"<t>.<raw body>")>`, within 300 s; several `v1=` allowed',
    ),
    _header(
        "telnyx-signature-ed25519",
        'telnyx: base64 Ed25519 over `"<telnyx-timestamp>|<raw body>"` '
        "(SCREENPOP_TELNYX_PUBLIC_KEY)",
    ),
    _header("telnyx-timestamp", "telnyx: unix seconds, within 300 s"),
    _header(
        "Authorization",
        "vonage: `Bearer <JWT>` HS256 with SCREENPOP_VONAGE_SIGNATURE_SECRET; "
        "`payload_hash` = hex SHA-256 of the body; `iat` within 300 s",
    ),
    _header("X-API-Key", "amazon-connect: SCREENPOP_AMAZON_CONNECT_API_KEY"),
    _header("X-Screenpop-Token", "kamailio: SCREENPOP_KAMAILIO_TOKEN"),
]
TWILIO_SIGNATURE = _header(
    "X-Twilio-Signature",
    "base64 HMAC-SHA1(SCREENPOP_TWILIO_AUTH_TOKEN, SCREENPOP_PUBLIC_URL + path + query + "
    "the sorted form fields), as Twilio's library computes it; JSON bodies: `bodySHA256` in "
    "the query and only the URL signed",
)


def _error(description: str, error: str, detail: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": ERROR},
                "example": {"error": error, "detail": detail},
            }
        },
    }


REFUSALS: dict[str, dict[str, Any]] = {
    "401": _error(
        "Signature, token or key missing, wrong or stale (`bad_signature`, "
        "`stale_timestamp`), or the provider's secret is unset (`not_configured`)",
        "bad_signature",
        "X-Screenpop-Signature does not match the body",
    ),
    "413": _error(
        "Body over SCREENPOP_MAX_BODY_BYTES (`payload_too_large`); nothing is read past it",
        "payload_too_large",
        "body is 70000 bytes; the limit is 65536",
    ),
    "415": _error(
        "Content-Type the provider does not send (`unsupported_media_type`)",
        "unsupported_media_type",
        "Content-Type 'text/plain' is not accepted here; send application/json",
    ),
    "422": _error(
        "A field missing, of the wrong JSON type, longer than its limit or holding a NUL "
        "character (`malformed_event`, naming the field and the limit); nothing is written",
        "malformed_event",
        "call_id: is 193 characters long; the limit is 192",
    ),
    "503": _error(
        "No database connection came free in time (`overloaded`) or the write could not be "
        "confirmed (`unavailable`): nothing was acknowledged, send it again",
        "overloaded",
        "the server is overloaded (no database connection free); retry shortly",
    ),
}


EVENTS_OPERATION: dict[str, Any] = {
    "tags": ["telephony"],
    "summary": "Call events from a PBX or cloud provider",
    "operationId": "provider_events",
    "description": (
        "One endpoint for every provider that posts events: `generic` (our JSON CallEvent), "
        "`telnyx`, `vonage`, `amazon-connect` (JSON) and `kamailio` (form). Each request is "
        "verified with the provider's signature header, parsed into call events and "
        "journaled before the answer. The same event twice is a duplicate and changes "
        "nothing. A text longer than its column, a NUL character anywhere, or a field of "
        "the wrong JSON type is refused with 422 naming the field and the limit."
    ),
    "parameters": [
        {
            "name": "provider",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": sorted(ADAPTERS)},
        },
        *SIGNATURE_HEADERS,
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _ref("GenericCallEvent"),
                        _ref("TelnyxWebhook"),
                        _ref("VonageEvent"),
                        _ref("AmazonConnectContactEvent"),
                    ]
                },
                "examples": {
                    name: {"summary": name, "value": EXAMPLES[name]}
                    for name in ("generic", "telnyx", "vonage", "amazon-connect")
                },
            },
            "application/x-www-form-urlencoded": {
                "schema": _ref("KamailioForm"),
                "examples": {"kamailio": {"summary": "kamailio", "value": EXAMPLES["kamailio"]}},
            },
        },
    },
    "responses": {
        "202": {
            "description": "Journaled (or a duplicate of an event already journaled)",
            "content": {"application/json": {"schema": _ref("WebhookAccepted")}},
        },
        **REFUSALS,
        "404": _error(
            "No such provider (`unknown_provider`)",
            "unknown_provider",
            "unknown telephony provider 'nosuchpbx'; known: amazon-connect, generic, …",
        ),
    },
}

CONTACT_EVENTS_OPERATION: dict[str, Any] = {
    "tags": ["telephony"],
    "summary": "Chat, email, SMS and social contacts, and Chatwoot's webhooks",
    "operationId": "contact_events",
    "description": (
        "Contacts that are not calls, ingested as calls are (docs/channels.md). `chat`, "
        "`email`, `sms`, `social`: the generic call event plus `contact` (email, phone, "
        "external_id, name), signed with `X-Screenpop-Signature` as the generic webhook; "
        "the contact's id is `<channel>:<call_id>`. `chatwoot`: Chatwoot's own webhook "
        "payloads, authenticated by `?token=` (`SCREENPOP_CHATWOOT_TOKEN`)."
    ),
    "parameters": [
        {
            "name": "channel",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": sorted(CONTACT_ADAPTERS)},
        },
        SIGNATURE_HEADERS[0],
        {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "queue", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_ref("ContactEvent"), _ref("ChatwootWebhook")]},
                "examples": {
                    "chat": {
                        "summary": "chat",
                        "value": {
                            "event_id": "chat-77-1",
                            "call_id": "77",
                            "kind": "queued",
                            "queue": "sales",
                            "contact": {"email": "ada@example.com"},
                        },
                    }
                },
            }
        },
    },
    "responses": {
        "202": {
            "description": "Journaled (or a duplicate of an event already journaled)",
            "content": {"application/json": {"schema": _ref("WebhookAccepted")}},
        },
        **REFUSALS,
        "404": _error(
            "No such channel (`unknown_channel`)",
            "unknown_channel",
            "unknown contact channel 'fax'; known: chat, chatwoot, email, sms, social",
        ),
    },
}
CONTACT_SCHEMAS: dict[str, Any] = {
    "ContactEvent": {
        "type": "object",
        "description": "The generic call event (GenericCallEvent) plus who the contact is.",
        "required": ["event_id", "call_id", "kind"],
        "properties": {
            **SCHEMAS["GenericCallEvent"]["properties"],
            "call_id": _id(limits.CALL_ID_MAX - len("social:"), "stored as `<channel>:<call_id>`"),
            "contact": {
                "type": "object",
                "properties": {
                    "email": _text(limits.EMAIL_MAX, "matched case-insensitively"),
                    "phone": _text(limits.CALLER_RAW_MAX, "the caller, when `caller` is absent"),
                    "external_id": _text(limits.ACCOUNT_REF_MAX, "a customer's imported id"),
                    "name": _text(limits.CALLER_NAME_MAX, "the contact's name"),
                },
            },
        },
    },
    "ChatwootWebhook": {
        "type": "object",
        "description": "A Chatwoot webhook event (conversation_created, conversation_updated, "
        "conversation_status_changed, message_created; others are ignored).",
        "required": ["event"],
        "properties": {"event": {"type": "string"}},
        "additionalProperties": True,
    },
}

_TWILIO_FORM = {
    "type": "object",
    "description": "Twilio's voice/status (CallSid, From, To, CallStatus, ParentCallSid, "
    "CallerName) or TaskRouter (EventType, EventSid, TaskAttributes, WorkerName, "
    "WorkerSid, TaskQueueName) form fields",
    "properties": {
        "CallSid": _text(limits.CALL_ID_MAX - len("twilio:"), "the call"),
        "From": _text(limits.CALLER_RAW_MAX, "the caller"),
        "To": _text(limits.DIALED_MAX, "the dialed number"),
        "CallStatus": {"type": "string"},
        "EventType": {"type": "string"},
    },
}
SIGNED_BY_TWILIO: dict[str, Any] = {"parameters": [TWILIO_SIGNATURE], "responses": REFUSALS}
TWILIO: dict[str, Any] = {
    **SIGNED_BY_TWILIO,
    "requestBody": {
        "content": {"application/x-www-form-urlencoded": {"schema": _TWILIO_FORM}},
    },
}
VONAGE: dict[str, Any] = {
    "parameters": [SIGNATURE_HEADERS[3]],
    "responses": REFUSALS,
}


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` FastAPI's document plus the events endpoint and its schemas."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("paths", {})[EVENTS_PATH] = {"post": EVENTS_OPERATION}
            document["paths"][CONTACTS_PATH] = {"post": CONTACT_EVENTS_OPERATION}
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(SCHEMAS)
            schemas.update(CONTACT_SCHEMAS)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook
