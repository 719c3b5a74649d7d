"""Chatwoot's webhooks (``POST /contacts/chatwoot/events``): conversations as contacts.

Chatwoot (chatwoot.com, open source) posts one JSON object per event to a webhook URL
(Settings -> Integrations -> Webhooks), with ``"event"`` naming it. Chatwoot does not sign
them, so the URL carries a token: ``…/contacts/chatwoot/events?token=<SCREENPOP_CHATWOOT_TOKEN>``
(``&queue=Q`` names the queue; else the channel's name). What is read:

* ``conversation_created`` (the payload is the conversation) -> ``queued``;
* ``message_created`` (``conversation`` inside): an ``incoming`` message -> ``queued`` (the
  conversation's first sight when ``conversation_created`` is not subscribed; the same event
  id, so whichever comes second is a duplicate); the first public ``outgoing`` message from an
  agent (``sender.type == "user"``) -> ``answered`` by that agent;
* ``conversation_updated`` / ``conversation_status_changed``: ``resolved`` -> ``ended``;
  ``open`` with ``meta.assignee`` -> ``offered`` to the assignee; else nothing.

The contact is ``conversation.meta.sender``: ``email``, ``phone_number`` and ``identifier``
(the external id, matched as an account reference). Agents are named by their Chatwoot email
(give the screenpop user that email as worker id). The contact's id is
``chatwoot:<conversation id>``; its channel comes from ``conversation.channel``
(``Channel::WebWidget`` -> chat, ``Channel::Email`` -> email, ...). Other events are ignored.
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
)
from telephony.contacts import contact_email, with_contact
from telephony.errors import MalformedEvent
from telephony.events import CallEvent, derive_event_id, from_unix

CHANNELS = {
    "Channel::WebWidget": "chat",
    "Channel::Api": "chat",
    "Channel::Email": "email",
    "Channel::Sms": "sms",
    "Channel::TwilioSms": "sms",
    "Channel::Whatsapp": "social",
    "Channel::FacebookPage": "social",
    "Channel::Instagram": "social",
    "Channel::Telegram": "social",
    "Channel::Line": "social",
    "Channel::TwitterProfile": "social",
}
CONVERSATION_EVENTS = ("conversation_updated", "conversation_status_changed")


def _when(value: Any, received_at: datetime) -> datetime:
    """Chatwoot's times: unix seconds, ISO 8601, or ``2020-03-03 13:05:57 UTC``."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return from_unix(value)
        if isinstance(value, str) and value:
            return datetime.fromisoformat(value.replace(" UTC", "+00:00").replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        pass
    return received_at


def _agent(user: Mapping[str, Any]) -> str | None:
    return optional_str(user, "email", label="agent.email") or optional_str(
        user, "id", label="agent.id"
    )


def _kind(
    event: str, data: Mapping[str, Any], conversation: Mapping[str, Any]
) -> tuple[str, str | None, str] | None:
    """(kind, agent, what makes the event id unique) or None for an ignored event."""
    if event == "conversation_created":
        return "queued", None, "first-sight"
    if event == "message_created":
        if data.get("message_type") == "incoming":
            return "queued", None, "first-sight"
        sender = data.get("sender")
        if data.get("message_type") == "outgoing" and not data.get("private"):
            if isinstance(sender, Mapping) and sender.get("type") == "user":
                agent = _agent(sender)
                return ("answered", agent, f"answered:{agent}") if agent else None
        return None
    if event in CONVERSATION_EVENTS:
        status = conversation.get("status")
        if status == "resolved":
            return "ended", None, f"resolved:{conversation.get('timestamp')}"
        meta = conversation.get("meta")
        assignee = meta.get("assignee") if isinstance(meta, Mapping) else None
        if status == "open" and isinstance(assignee, Mapping):
            agent = _agent(assignee)
            return ("offered", agent, f"offered:{agent}") if agent else None
    return None


class ChatwootAdapter:
    """Adapter for ``POST /contacts/chatwoot/events``."""

    source = "chatwoot"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """The URL's ``token=`` must equal ``SCREENPOP_CHATWOOT_TOKEN`` (Chatwoot signs nothing)."""
        presented = request.query.get("token")
        check_shared_secret(self.source, secret, presented, dev=dev, where="?token= of the URL")

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """At most one event: see the module docstring for what each Chatwoot event becomes."""
        require_media_type(request, "application/json")
        data = load_json_object(request.body)
        event = optional_str(data, "event")
        if event is None:
            raise MalformedEvent("event", "is required")
        conversation = as_mapping(
            data.get("conversation") if event.startswith("message_") else data, "conversation"
        )
        planned = _kind(event, data, conversation)
        if planned is None:
            return []
        kind, agent, unique = planned
        conversation_id = optional_str(conversation, "id", label="conversation.id")
        if conversation_id is None:
            raise MalformedEvent("conversation.id", "is required")
        meta = as_mapping(conversation.get("meta") or {}, "conversation.meta")
        sender = as_mapping(meta.get("sender") or {}, "conversation.meta.sender")
        channel = CHANNELS.get(str(conversation.get("channel")), "chat")
        when = (
            data.get("created_at") if event == "message_created" else conversation.get("timestamp")
        )
        fields = with_contact(
            {
                "event_id": derive_event_id(self.source, conversation_id, unique),
                "call_id": conversation_id,
                "kind": kind,
                "queue": request.query.get("queue") or channel,
                "agent": agent,
                "occurred_at": _when(when, request.received_at),
                "attributes": {},
                "raw": data,
            },
            email=contact_email(
                optional_str(sender, "email", label="sender.email"), "sender.email"
            ),
            phone=optional_str(sender, "phone_number", label="sender.phone_number"),
            external_id=optional_str(sender, "identifier", label="sender.identifier"),
            name=optional_str(sender, "name", label="sender.name"),
            default_region=default_region,
        )
        return [CallEvent(source=self.source, channel=channel, **fields)]
