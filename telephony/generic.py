"""The generic JSON webhook: our own event format, HMAC-SHA256 signed.

Body (``POST /telephony/generic/events``, ``application/json``)::

    {"event_id": "e-1", "call_id": "c-1", "kind": "offered",
     "caller": "+447700900123" | {"raw": "...", "withheld": false},
     "caller_name": "…", "dialed": "…", "queue": "sales", "agent": "201",
     "occurred_at": "2025-05-01T09:00:00Z" | 1746090000,
     "attributes": {"account_ref": "12345"}}

``event_id`` and ``call_id`` are strings (an integer is taken as its digits); ``true``,
``false``, objects and arrays are refused, as is any text longer than its limit in
``telephony.events`` or holding a NUL character.

Header ``X-Screenpop-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
Several ``v1=`` entries are accepted (any may match), so secrets can be rotated.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from telephony.base import (
    WebhookRequest,
    check_timestamp,
    load_json_object,
    optional_str,
    require_media_type,
    required_str,
    should_verify,
)
from telephony.callerid import normalise, normalise_dialed
from telephony.errors import BadSignature, MalformedEvent
from telephony.events import EVENT_KINDS, CallerId, CallEvent

SIGNATURE_HEADER = "x-screenpop-signature"


def _mac(secret: str, timestamp: int | str, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    # One-shot digest: OpenSSL's HMAC in one call, no HMAC object per request.
    return hmac.digest(secret.encode("utf-8"), message, "sha256").hex()


def sign_generic(secret: str, body: bytes, t: int) -> str:
    """The ``X-Screenpop-Signature`` header value for ``body`` signed at unix time ``t``."""
    return f"t={t},v1={_mac(secret, t, body)}"


def _parse_signature(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise BadSignature("signature timestamp is not an integer") from exc
        elif key == "v1" and value:
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise BadSignature("signature header needs t=<unix> and v1=<hex>")
    return timestamp, signatures


def _occurred_at(value: Any, received_at: datetime) -> datetime:
    if value is None or value == "":
        return received_at
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=received_at.tzinfo)
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as exc:
        raise MalformedEvent("occurred_at", f"not a timestamp ({exc})") from exc
    raise MalformedEvent("occurred_at", "expected ISO 8601 text or unix seconds")


def _caller(value: Any, default_region: str) -> CallerId:
    if value is None or isinstance(value, str):
        return normalise(value, default_region)
    if isinstance(value, dict):
        raw = value.get("raw", value.get("number"))
        if raw is not None and not isinstance(raw, str):
            raise MalformedEvent("caller.raw", "must be a string")
        caller = normalise(raw, default_region)
        if value.get("withheld") is True and not caller.withheld:
            # The sender knows better than the digits (e.g. a CLIR flag with a network number).
            return CallerId(raw=caller.raw, e164=None, withheld=True, valid=False)
        return caller
    raise MalformedEvent("caller", "expected a string or an object with 'raw'")


def verify_signature(
    source: str, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
) -> None:
    """Check ``X-Screenpop-Signature`` (HMAC-SHA256 over ``"<t>.<body>"``, 300 s window);
    shared by the generic call webhook and the generic contact webhook (``telephony.contacts``)."""
    if not should_verify(source, secret, dev=dev):
        return
    assert secret is not None
    header = request.header(SIGNATURE_HEADER)
    if not header:
        raise BadSignature("missing X-Screenpop-Signature header")
    timestamp, signatures = _parse_signature(header)
    expected = _mac(secret, timestamp, request.body)
    if not any(hmac.compare_digest(expected, sig) for sig in signatures):
        raise BadSignature("X-Screenpop-Signature does not match the body")
    # Checked after the MAC so a forged header cannot probe our clock.
    check_timestamp(timestamp, now)


def event_fields(request: WebhookRequest, default_region: str) -> dict[str, Any]:
    """The JSON body's normalised event fields (``CallEvent`` keyword arguments but
    ``source``); shared with the generic contact webhook."""
    require_media_type(request, "application/json")
    data = load_json_object(request.body)
    kind = required_str(data, "kind")
    if kind not in EVENT_KINDS:
        raise MalformedEvent("kind", f"{kind!r} is not one of {sorted(EVENT_KINDS)}")
    attributes = data.get("attributes")
    if attributes is None:
        attributes = {}
    elif not isinstance(attributes, dict):
        raise MalformedEvent("attributes", "expected an object")
    return {
        "event_id": required_str(data, "event_id"),
        "call_id": required_str(data, "call_id"),
        "kind": kind,
        "caller": _caller(data.get("caller"), default_region),
        "caller_name": optional_str(data, "caller_name"),
        "dialed": normalise_dialed(optional_str(data, "dialed"), default_region),
        "queue": optional_str(data, "queue"),
        "agent": optional_str(data, "agent"),
        "occurred_at": _occurred_at(data.get("occurred_at"), request.received_at),
        "attributes": attributes,
        "raw": data,
    }


class GenericAdapter:
    """Adapter for ``POST /telephony/generic/events``."""

    source = "generic"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Check ``X-Screenpop-Signature`` (see ``verify_signature``)."""
        verify_signature(self.source, request, secret, dev=dev, now=now)

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """One ``CallEvent`` from the JSON body."""
        return [CallEvent(source=self.source, **event_fields(request, default_region))]
