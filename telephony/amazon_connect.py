"""Amazon Connect contact events, delivered by an EventBridge rule to an API destination.

Envelope: ``{"version": "0", "id", "detail-type": "Amazon Connect Contact Event",
"source": "aws.connect", "time", "detail": {"eventType", "contactId", "channel",
"initiationMethod", "queueInfo": {"queueArn", "enqueueTimestamp"}, "agentInfo": {"agentArn",
"connectedToAgentTimestamp"}, …}}``. Only ``channel == "VOICE"`` contacts are mapped.

Mapping: ``INITIATED``/``QUEUED`` -> ``queued``; ``CONNECTED_TO_AGENT`` -> ``answered`` (agent =
the agent id, the last part of ``agentArn``); ``DISCONNECTED`` -> ``ended``, or ``abandoned``
when the contact was queued and never reached an agent. Others (``CONNECTED_TO_SYSTEM``,
``CONTACT_DATA_UPDATED``, ``AMD_*``…) are ignored. The queue is the queue id from ``queueArn``
(names are not in the event); the full ARNs are kept in attributes.

Contact events carry no caller number: the contact flow must store it as a contact attribute
(``Set contact attributes``: ``CustomerNumber`` = ``$.CustomerEndpoint.Address``). Read from
``detail.attributes`` (or ``detail.contactAttributes``), first match wins:
caller ``CustomerNumber``, ``customerNumber``, ``customer_number``, then
``detail.customerEndpoint.address`` if present; dialed ``DialedNumber``, ``dialedNumber``,
``SystemNumber``, then ``detail.systemEndpoint.address``; account reference ``AccountRef``,
``accountRef``, ``account_ref``; caller name ``CustomerName``, ``customerName``.

Authentication: the API destination's connection sends ``X-API-Key``, compared in constant time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from telephony.base import (
    WebhookRequest,
    as_mapping,
    check_shared_secret,
    load_json_object,
    optional_str,
    require_media_type,
    required_str,
)
from telephony.callerid import normalise, normalise_dialed
from telephony.errors import MalformedEvent
from telephony.events import ACCOUNT_REF, CallEvent, EventKind

DETAIL_TYPE = "Amazon Connect Contact Event"
CALLER_KEYS = ("CustomerNumber", "customerNumber", "customer_number")
DIALED_KEYS = ("DialedNumber", "dialedNumber", "SystemNumber")
ACCOUNT_KEYS = ("AccountRef", "accountRef", "account_ref")
NAME_KEYS = ("CustomerName", "customerName")


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = optional_str(mapping, key)
        if value:
            return value
    return None


def _arn_id(arn: str | None) -> str | None:
    return arn.rstrip("/").rsplit("/", 1)[-1] if arn else None


def _endpoint(detail: Mapping[str, Any], key: str) -> str | None:
    endpoint = detail.get(key)
    return optional_str(endpoint, "address") if isinstance(endpoint, Mapping) else None


class AmazonConnectAdapter:
    """Adapter for ``POST /telephony/amazon-connect/events``."""

    source = "amazon-connect"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Compare ``X-API-Key`` with the configured key in constant time."""
        presented = request.header("x-api-key")
        check_shared_secret(self.source, secret, presented, dev=dev, where="X-API-Key header")

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """At most one ``CallEvent`` per EventBridge envelope."""
        require_media_type(request, "application/json")
        envelope = load_json_object(request.body)
        if envelope.get("detail-type") != DETAIL_TYPE:
            # Rules may forward other Connect events (agent, case…); not ours to map.
            return []
        detail = as_mapping(envelope.get("detail"), "detail")
        event_type = required_str(detail, "eventType", label="detail.eventType")
        channel = optional_str(detail, "channel")
        if channel is not None and channel.upper() != "VOICE":
            return []
        contact_id = required_str(detail, "contactId", label="detail.contactId")
        queue_info = detail.get("queueInfo") if isinstance(detail.get("queueInfo"), Mapping) else {}
        agent_info = detail.get("agentInfo") if isinstance(detail.get("agentInfo"), Mapping) else {}
        assert isinstance(queue_info, Mapping) and isinstance(agent_info, Mapping)
        kind: EventKind | None
        if event_type in ("INITIATED", "QUEUED"):
            kind = "queued"
        elif event_type == "CONNECTED_TO_AGENT":
            kind = "answered"
        elif event_type == "DISCONNECTED":
            # Queued but never connected to an agent: the caller gave up waiting.
            kind = "abandoned" if queue_info and not agent_info else "ended"
        else:
            kind = None
        if kind is None:
            return []
        attrs_obj = detail.get("attributes") or detail.get("contactAttributes") or {}
        if not isinstance(attrs_obj, Mapping):
            raise MalformedEvent("detail.attributes", "expected an object")
        attributes: dict[str, Any] = {"event_type": event_type}
        for key in ("initialContactId", "previousContactId", "initiationMethod"):
            if detail.get(key):
                attributes[key] = detail[key]
        if queue_info.get("queueArn"):
            attributes["queue_arn"] = queue_info["queueArn"]
        if agent_info.get("agentArn"):
            attributes["agent_arn"] = agent_info["agentArn"]
        account_ref = _first(attrs_obj, ACCOUNT_KEYS)
        if account_ref:
            attributes[ACCOUNT_REF] = account_ref
        time_text = optional_str(envelope, "time")
        try:
            occurred_at = (
                datetime.fromisoformat(time_text.replace("Z", "+00:00"))
                if time_text
                else request.received_at
            )
        except ValueError as exc:
            raise MalformedEvent("time", "not an ISO 8601 timestamp") from exc
        caller_raw = _first(attrs_obj, CALLER_KEYS) or _endpoint(detail, "customerEndpoint")
        dialed_raw = _first(attrs_obj, DIALED_KEYS) or _endpoint(detail, "systemEndpoint")
        return [
            CallEvent(
                source=self.source,
                event_id=required_str(envelope, "id"),
                call_id=contact_id,
                kind=kind,
                caller=normalise(caller_raw, default_region),
                caller_name=_first(attrs_obj, NAME_KEYS),
                dialed=normalise_dialed(dialed_raw, default_region),
                queue=_arn_id(optional_str(queue_info, "queueArn")),
                agent=_arn_id(optional_str(agent_info, "agentArn")),
                occurred_at=occurred_at,
                attributes=attributes,
                raw=envelope,
            )
        ]
