"""Contact adapters: the generic contact webhook and Chatwoot's webhooks, payload -> event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from telephony.chatwoot import ChatwootAdapter
from telephony.contacts import ContactAdapter
from telephony.errors import BadSignature, MalformedEvent, NotConfigured
from telephony.events import CONTACT_CHANNELS, CallEvent
from telephony.generic import sign_generic
from telephony.registry import ADAPTERS, CONTACT_ADAPTERS
from tests.telephony.telephony_helpers import NOW, fixture_bytes, make_request

CHATWOOT = "/contacts/chatwoot/events"
TOKEN = "cw-" + "t" * 20


def chatwoot(name: str, **query: str) -> list[CallEvent]:
    request = make_request(
        CHATWOOT,
        fixture_bytes(f"chatwoot_{name}.json"),
        content_type="application/json",
        query={"token": TOKEN, **query},
    )
    adapter = ChatwootAdapter()
    adapter.verify(request, TOKEN, dev=False, now=NOW)
    return adapter.parse(request, default_region="GB")


def contact(body: dict[str, Any], channel: str = "chat") -> list[CallEvent]:
    raw = json.dumps(body).encode()
    request = make_request(
        f"/contacts/{channel}/events",
        raw,
        content_type="application/json",
        headers={"x-screenpop-signature": sign_generic("s3cret", raw, int(NOW.timestamp()))},
    )
    adapter = ContactAdapter(channel)
    adapter.verify(request, "s3cret", dev=False, now=NOW)
    return adapter.parse(request, default_region="GB")


def test_contact_sources_never_equal_a_telephony_provider() -> None:
    # A contact's id is "<source>:<id>": disjoint sources keep chats and calls apart.
    assert not set(CONTACT_ADAPTERS) & set(ADAPTERS)
    assert {a.source for a in CONTACT_ADAPTERS.values()}.isdisjoint(
        a.source for a in ADAPTERS.values()
    )
    assert set(CONTACT_CHANNELS) <= set(CONTACT_ADAPTERS)


def test_generic_contact_carries_email_phone_and_external_id() -> None:
    (event,) = contact(
        {
            "event_id": "e-1",
            "call_id": "c-1",
            "kind": "queued",
            "queue": "sales",
            "contact": {
                "email": "Ada@Example.com",
                "phone": "07700 900101",
                "external_id": "C-1001",
                "name": "Ada",
            },
        }
    )
    assert event.full_call_id == "chat:c-1" and event.channel == "chat"
    assert event.caller.e164 == "+447700900101" and not event.caller.withheld
    assert event.attributes == {"account_ref": "C-1001", "email": "ada@example.com"}
    assert event.caller_name == "Ada"


def test_generic_contact_without_a_number_is_not_withheld() -> None:
    (event,) = contact(
        {"event_id": "e-1", "call_id": "m-9", "kind": "queued", "contact": {"email": "a@b.co"}},
        channel="email",
    )
    assert event.full_call_id == "email:m-9" and event.channel == "email"
    assert event.caller.raw == "" and not event.caller.withheld


@pytest.mark.parametrize(
    ("contact_value", "field"),
    [
        ({"email": "not-an-address"}, "contact.email"),
        ({"email": ["a@b.co"]}, "contact.email"),
        ("ada@example.com", "contact"),
        ({"external_id": {"id": 1}}, "contact.external_id"),
    ],
)
def test_generic_contact_refuses_bad_contact_details(contact_value: Any, field: str) -> None:
    with pytest.raises(MalformedEvent) as refused:
        contact({"event_id": "e", "call_id": "c", "kind": "queued", "contact": contact_value})
    assert refused.value.field == field


def test_generic_contact_is_signed_like_the_generic_webhook() -> None:
    raw = b'{"event_id": "e", "call_id": "c", "kind": "queued"}'
    signature = {"x-screenpop-signature": sign_generic("other", raw, 0)}
    request = make_request(
        "/contacts/chat/events", raw, content_type="application/json", headers=signature
    )
    with pytest.raises(BadSignature):
        ContactAdapter("chat").verify(request, "s3cret", dev=False, now=NOW)
    with pytest.raises(NotConfigured):
        ContactAdapter("chat").verify(request, None, dev=False, now=NOW)
    with pytest.raises(ValueError, match="not a contact channel"):
        ContactAdapter("phone")


def test_chatwoot_conversation_created_is_a_queued_chat_with_the_contact() -> None:
    (event,) = chatwoot("conversation_created", queue="sales")
    assert event.source == "chatwoot" and event.full_call_id == "chatwoot:10"
    assert event.kind == "queued" and event.channel == "chat" and event.queue == "sales"
    assert event.attributes == {"email": "ada@example.com"}
    assert event.caller_name == "ada"
    assert event.occurred_at.timestamp() == 1627063369


def test_chatwoot_first_incoming_message_is_the_same_first_sight() -> None:
    (created,) = chatwoot("conversation_created")
    (incoming,) = chatwoot("message_created_incoming")
    # Whichever arrives second is a duplicate of the first: one first sight per conversation.
    assert incoming.event_id == created.event_id and incoming.kind == "queued"
    assert incoming.queue == "chat"  # no ?queue=: the channel's name


def test_chatwoot_assignment_reply_and_resolve() -> None:
    (offered,) = chatwoot("conversation_updated")
    assert offered.kind == "offered" and offered.agent == "alice@acme.example"
    (answered,) = chatwoot("message_created_outgoing")
    assert answered.kind == "answered" and answered.agent == "alice@acme.example"
    (ended,) = chatwoot("conversation_status_changed")
    assert ended.kind == "ended"
    ids = {offered.event_id, answered.event_id, ended.event_id}
    assert len(ids) == 3 and {e.full_call_id for e in (offered, answered, ended)} == {"chatwoot:10"}


def test_chatwoot_email_inbox_is_the_email_channel_and_other_events_are_ignored() -> None:
    data = json.loads(fixture_bytes("chatwoot_conversation_created.json"))
    data["channel"] = "Channel::Email"
    request = make_request(CHATWOOT, json.dumps(data).encode(), content_type="application/json")
    (event,) = ChatwootAdapter().parse(request, default_region="GB")
    assert event.channel == "email"
    typing = make_request(CHATWOOT, b'{"event": "conversation_typing_on", "conversation": {}}',
                          content_type="application/json")  # fmt: skip
    assert ChatwootAdapter().parse(typing, default_region="GB") == []


def test_chatwoot_token_is_checked() -> None:
    body = fixture_bytes("chatwoot_conversation_created.json")
    for query in ({}, {"token": "wrong"}):
        request = make_request(CHATWOOT, body, content_type="application/json", query=query)
        with pytest.raises(BadSignature):
            ChatwootAdapter().verify(request, TOKEN, dev=False, now=NOW)


def test_chatwoot_without_a_conversation_id_is_refused() -> None:
    request = make_request(
        CHATWOOT, b'{"event": "conversation_created", "status": "open"}',
        content_type="application/json",
    )  # fmt: skip
    with pytest.raises(MalformedEvent) as refused:
        ChatwootAdapter().parse(request, default_region="GB")
    assert refused.value.field == "conversation.id"
