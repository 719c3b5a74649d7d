"""Vonage Voice API webhooks.

* ``GET /telephony/vonage/answer`` - the answer webhook (query ``from``, ``to``, ``uuid``,
  ``conversation_uuid``, ``endpoint_type``; a POST JSON answer webhook is read the same way)
  -> ``queued``. Vonage expects an NCCO (JSON array) in reply; the app owns that answer.
* ``POST /telephony/vonage/events`` - event webhook JSON with ``status``. On the inbound leg:
  ``started``/``ringing`` -> ``queued``, ``completed`` -> ``ended``, ``busy``/``cancelled``/
  ``unanswered``/``timeout``/``rejected``/``failed`` -> ``abandoned``; ``answered`` is ignored
  (Vonage answering to run the NCCO is not an agent answering). On an outbound leg (a
  ``connect`` to an agent, same conversation): ``started``/``ringing`` -> ``offered`` to the
  ``to`` user, ``answered`` -> ``answered``, ``completed`` -> ``ended``, the failures -> offer
  withdrawn. Other statuses (``human``/``machine``, transfer, input…) are ignored.

The call id is ``conversation_uuid`` (shared by all legs) or ``uuid``. Vonage sends numbers
without ``+`` (``447700900123``). Vonage sends no event id, so one is derived from (leg uuid,
status, timestamp): a retry of the same delivery gets the same id.

Signature: ``Authorization: Bearer <JWT>`` HS256 with the signature secret; its
``payload_hash`` claim is the hex SHA-256 of the body (required when there is a body); ``iat``
must be within 300 s of now.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt

from telephony.base import (
    SIGNATURE_TOLERANCE_S,
    WebhookRequest,
    check_timestamp,
    load_json_object,
    optional_str,
    require_media_type,
    required_str,
    should_verify,
)
from telephony.callerid import extension_of, normalise, normalise_dialed
from telephony.errors import BadSignature, MalformedEvent, StaleTimestamp
from telephony.events import OFFER_WITHDRAWN, CallEvent, EventKind, derive_event_id

_FAILED = frozenset({"busy", "cancelled", "unanswered", "timeout", "rejected", "failed"})
_INBOUND: dict[str, EventKind] = {"started": "queued", "ringing": "queued", "completed": "ended"}
_OUTBOUND: dict[str, EventKind] = {
    "started": "offered",
    "ringing": "offered",
    "answered": "answered",
    "completed": "ended",
}


def _occurred_at(data: Mapping[str, Any], fallback: datetime) -> datetime:
    text = optional_str(data, "timestamp")
    if not text:
        return fallback
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedEvent("timestamp", "not an ISO 8601 timestamp") from exc


class VonageAdapter:
    """Adapter for ``GET /telephony/vonage/answer`` and ``POST /telephony/vonage/events``."""

    source = "vonage"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Check the HS256 JWT and its ``payload_hash`` against the raw body."""
        if not should_verify(self.source, secret, dev=dev):
            return
        assert secret is not None
        auth = request.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BadSignature("missing Authorization: Bearer <JWT>")
        try:
            claims = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                # Time claims are checked below against the caller's clock (``now``).
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError as exc:
            raise BadSignature(f"Vonage JWT rejected ({exc})") from exc
        payload_hash = claims.get("payload_hash")
        if request.body or payload_hash is not None:
            expected = hashlib.sha256(request.body).hexdigest()
            if not isinstance(payload_hash, str) or not hmac.compare_digest(
                expected, payload_hash.lower()
            ):
                raise BadSignature("JWT payload_hash does not match the body")
        iat = claims.get("iat")
        if not isinstance(iat, int | float):
            raise BadSignature("Vonage JWT has no iat claim")
        check_timestamp(iat, now)
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp < now.timestamp() - SIGNATURE_TOLERANCE_S:
            raise StaleTimestamp("Vonage JWT has expired")

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """The answer webhook or an event webhook as ``CallEvent``s."""
        answer = request.path.rstrip("/").endswith("/answer")
        data: dict[str, Any]
        if request.method.upper() == "GET" or not request.body:
            data = dict(request.query)
        else:
            require_media_type(request, "application/json")
            data = load_json_object(request.body)
        leg = required_str(data, "uuid")
        call_id = optional_str(data, "conversation_uuid") or leg
        direction = optional_str(data, "direction") or "inbound"
        attributes: dict[str, Any] = {"leg_uuid": leg}
        agent = None
        kind: EventKind | None
        if answer:
            kind = "queued"
            status = "answer"
        else:
            status = required_str(data, "status").lower()
            attributes["status"] = status
            if direction == "outbound":
                agent = extension_of(optional_str(data, "to"))
                kind = _OUTBOUND.get(status)
                if status in _FAILED:
                    kind = "queued"
                    attributes[OFFER_WITHDRAWN] = True
            else:
                kind = "abandoned" if status in _FAILED else _INBOUND.get(status)
        if kind is None:
            return []
        outbound = direction == "outbound"
        return [
            CallEvent(
                source=self.source,
                event_id=derive_event_id(self.source, leg, status, data.get("timestamp")),
                call_id=call_id,
                kind=kind,
                # On an agent leg 'from' is our own number: the caller is on the inbound leg.
                caller=normalise(None if outbound else optional_str(data, "from"), default_region),
                dialed=None
                if outbound
                else normalise_dialed(optional_str(data, "to"), default_region),
                agent=agent,
                occurred_at=_occurred_at(data, request.received_at),
                attributes=attributes,
                raw=data,
            )
        ]
