"""Telnyx Call Control (API v2) webhooks.

Envelope ``{"data": {"record_type": "event", "id", "event_type", "occurred_at", "payload": {…}},
"meta": {…}}``; the call id is ``payload.call_session_id`` (shared by every leg of the call) and
the event id is ``data.id`` (stable across Telnyx's retries).

Mapping: ``call.initiated`` incoming -> ``queued``; outgoing (a leg we dial to an agent) ->
``offered`` to the ``to`` user; ``call.enqueued`` -> ``queued`` (with ``payload.queue``);
``call.answered``/``call.bridged`` on an outgoing leg -> ``answered`` (on the incoming leg
``call.answered`` is our application answering, not an agent, and is ignored; ``call.bridged``
still means the caller is connected -> ``answered``); ``call.hangup`` on the incoming leg ->
``ended`` (``abandoned`` if it never got beyond the queue is for the state machine to judge,
``hangup_cause`` is kept in attributes); on an outgoing leg ``normal_clearing`` -> ``ended``,
any other cause -> offer withdrawn. Everything else (dtmf, playback, speak, gather,
recording, machine detection …) is ignored.

Signature: ``telnyx-signature-ed25519`` = base64 Ed25519 over ``"<telnyx-timestamp>|<body>"``,
verified with the account's public key (``SCREENPOP_TELNYX_PUBLIC_KEY``, base64), 300 s window.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from telephony.base import (
    WebhookRequest,
    as_mapping,
    check_timestamp,
    load_json_object,
    optional_str,
    require_media_type,
    required_str,
    should_verify,
)
from telephony.callerid import extension_of, normalise, normalise_dialed
from telephony.errors import BadSignature, MalformedEvent, NotConfigured
from telephony.events import OFFER_WITHDRAWN, CallEvent, EventKind

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"


def _verify_key(secret: str) -> VerifyKey:
    try:
        key = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotConfigured("telnyx: the public key is not valid base64") from exc
    if len(key) != 32:
        raise NotConfigured("telnyx: the public key must be 32 bytes (base64)")
    return VerifyKey(key)


def _occurred_at(
    data: Mapping[str, Any], payload: Mapping[str, Any], fallback: datetime
) -> datetime:
    text = optional_str(data, "occurred_at") or optional_str(payload, "occurred_at")
    if not text:
        return fallback
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedEvent("data.occurred_at", "not an ISO 8601 timestamp") from exc


class TelnyxAdapter:
    """Adapter for ``POST /telephony/telnyx/events``."""

    source = "telnyx"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Check the Ed25519 signature over ``"<timestamp>|<body>"`` and its freshness."""
        if not should_verify(self.source, secret, dev=dev):
            return
        assert secret is not None
        key = _verify_key(secret)
        signature_b64 = request.header(SIGNATURE_HEADER)
        timestamp = request.header(TIMESTAMP_HEADER)
        if not signature_b64 or not timestamp:
            raise BadSignature("missing telnyx-signature-ed25519 or telnyx-timestamp header")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
            ts = int(timestamp.strip())
        except (binascii.Error, ValueError) as exc:
            raise BadSignature("malformed Telnyx signature or timestamp") from exc
        try:
            key.verify(timestamp.strip().encode("ascii") + b"|" + request.body, signature)
        except (BadSignatureError, ValueError) as exc:
            raise BadSignature("telnyx-signature-ed25519 does not match the body") from exc
        check_timestamp(ts, now)

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """At most one ``CallEvent`` per Telnyx webhook."""
        require_media_type(request, "application/json")
        body = load_json_object(request.body)
        data = as_mapping(body.get("data"), "data")
        event_type = required_str(data, "event_type", label="data.event_type")
        payload = as_mapping(data.get("payload"), "data.payload")
        outgoing = (payload.get("direction") or "") == "outgoing"
        attributes: dict[str, Any] = {"event_type": event_type}
        for key in ("call_control_id", "call_leg_id", "hangup_cause", "hangup_source"):
            if payload.get(key):
                attributes[key] = payload[key]
        agent = extension_of(optional_str(payload, "to")) if outgoing else None
        queue = None
        kind: EventKind | None = None
        if event_type == "call.initiated":
            kind = "offered" if outgoing else "queued"
        elif event_type == "call.enqueued":
            kind, queue = "queued", optional_str(payload, "queue")
        elif event_type == "call.answered":
            kind = "answered" if outgoing else None
        elif event_type == "call.bridged":
            kind = "answered"
        elif event_type == "call.hangup":
            cause = payload.get("hangup_cause") or "normal_clearing"
            if outgoing and cause != "normal_clearing":
                kind = "queued"
                attributes[OFFER_WITHDRAWN] = True
            else:
                kind = "ended"
        if kind is None:
            return []
        caller_raw = optional_str(payload, "from")
        dialed_raw = optional_str(payload, "to")
        if outgoing:
            # An agent leg runs from our number to the agent; the caller is on the incoming leg.
            caller_raw, dialed_raw = None, None
        return [
            CallEvent(
                source=self.source,
                event_id=required_str(data, "id", label="data.id"),
                call_id=required_str(
                    payload, "call_session_id", label="data.payload.call_session_id"
                ),
                kind=kind,
                caller=normalise(caller_raw, default_region),
                caller_name=None if outgoing else optional_str(payload, "caller_id_name"),
                dialed=normalise_dialed(dialed_raw, default_region),
                queue=queue,
                agent=agent,
                occurred_at=_occurred_at(data, payload, request.received_at),
                attributes=attributes,
                raw=body,
            )
        ]
