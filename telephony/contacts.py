"""The generic contact webhook: chat, email, SMS and social contacts in the call event shape.

``POST /contacts/{channel}/events`` (``channel`` one of ``CONTACT_CHANNELS``) takes the body
of ``POST /telephony/generic/events`` (``telephony.generic``), signed the same way, plus who
the contact is::

    {"event_id": "e-1", "call_id": "chat-77", "kind": "queued", "queue": "sales",
     "contact": {"email": "ann@example.com", "phone": "+447700900123",
                 "external_id": "12345", "name": "Ann"}}

``contact`` is optional and each of its keys too: ``phone`` is taken as the ``caller`` when
the body has none, ``external_id`` as ``attributes.account_ref`` and ``email`` as
``attributes.email`` (lower-cased), ``name`` as ``caller_name``. The event's ``source`` is the
channel, so a chat ``c-1`` is the contact ``chat:c-1`` and never the call ``generic:c-1``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telephony.base import WebhookRequest, as_mapping, optional_str
from telephony.callerid import normalise
from telephony.errors import MalformedEvent
from telephony.events import (
    ACCOUNT_REF,
    CONTACT_CHANNELS,
    CONTACT_EMAIL,
    CallerId,
    CallEvent,
)
from telephony.generic import event_fields, verify_signature

NO_NUMBER = CallerId(raw="", e164=None, withheld=False, valid=False)
"""A contact with no phone number: not a withheld caller (nothing was hidden)."""


def contact_email(value: str | None, field: str) -> str | None:
    """An email address, lower-cased; ``MalformedEvent`` unless it looks like one."""
    if value is None:
        return None
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in value):
        raise MalformedEvent(field, f"{value!r} is not an email address")
    return value.lower()


def with_contact(
    fields: dict[str, Any],
    *,
    email: str | None,
    phone: str | None,
    external_id: str | None,
    name: str | None,
    default_region: str,
) -> dict[str, Any]:
    """``fields`` (``CallEvent`` keyword arguments) completed with who the contact is; what
    the event already says (its caller, name, ``account_ref``, ``email``) wins."""
    caller: CallerId | None = fields.get("caller")
    if caller is None or (caller.withheld and not caller.raw):
        caller = normalise(phone, default_region) if phone else NO_NUMBER
    attributes = dict(fields.get("attributes") or {})
    if external_id and not attributes.get(ACCOUNT_REF):
        attributes[ACCOUNT_REF] = external_id
    if email and not attributes.get(CONTACT_EMAIL):
        attributes[CONTACT_EMAIL] = email
    return {
        **fields,
        "caller": caller,
        "caller_name": fields.get("caller_name") or name,
        "attributes": attributes,
    }


class ContactAdapter:
    """Adapter for ``POST /contacts/{channel}/events``; one per channel."""

    def __init__(self, channel: str) -> None:
        if channel not in CONTACT_CHANNELS:
            raise ValueError(f"{channel!r} is not a contact channel")
        self.source = channel
        self.channel = channel

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """``X-Screenpop-Signature``, exactly as the generic call webhook."""
        verify_signature(self.source, request, secret, dev=dev, now=now)

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """One event from the JSON body; the contact's details go where matching reads them."""
        fields = event_fields(request, default_region)
        raw = fields["raw"]
        contact = as_mapping(raw.get("contact") or {}, "contact")
        # A copy: ``raw`` (the body as received, journaled) keeps the address as sent.
        attributes = fields["attributes"] = dict(fields["attributes"])
        if attributes.get(CONTACT_EMAIL) is not None:
            attributes[CONTACT_EMAIL] = contact_email(
                optional_str(attributes, CONTACT_EMAIL, label="attributes.email"),
                "attributes.email",
            )
        if "caller" not in raw:
            fields.pop("caller")
        fields = with_contact(
            fields,
            email=contact_email(
                optional_str(contact, "email", label="contact.email"), "contact.email"
            ),
            phone=optional_str(contact, "phone", label="contact.phone"),
            external_id=optional_str(contact, "external_id", label="contact.external_id"),
            name=optional_str(contact, "name", label="contact.name"),
            default_region=default_region,
        )
        return [CallEvent(source=self.source, channel=self.channel, **fields)]
