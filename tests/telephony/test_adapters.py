"""Each provider's realistic payloads -> the right ``CallEvent``s; bad input -> clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from telephony_helpers import NOW, fixture_bytes, fixture_json, form_body, make_request

from telephony.base import WebhookRequest
from telephony.errors import MalformedEvent, UnsupportedMediaType
from telephony.events import OFFER_WITHDRAWN, TRANSFER_TO, CallEvent
from telephony.registry import ADAPTERS, UnknownProvider, get_adapter
from telephony.twilio import twiml_enqueue

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
ALICE = "+447700900123"


def parse(name: str, request: WebhookRequest) -> list[CallEvent]:
    return ADAPTERS[name].parse(request, default_region="GB")


def one(name: str, request: WebhookRequest) -> CallEvent:
    events = parse(name, request)
    assert len(events) == 1
    return events[0]


# --- generic ------------------------------------------------------------------------------


def test_generic_event_fields() -> None:
    event = one(
        "generic",
        make_request(
            "/telephony/generic/events", fixture_bytes("generic_offered.json"), content_type=JSON
        ),
    )
    assert event.full_call_id == "generic:c-7f3a9d"
    assert (event.kind, event.agent, event.queue) == ("offered", "201", "sales")
    assert event.caller.e164 == ALICE and event.caller.raw == "07700 900123"
    assert event.dialed == "+442079460000"
    assert event.attributes == {"account_ref": "12345"}
    assert event.occurred_at == datetime(2025, 5, 1, 9, 0, 5, tzinfo=UTC)
    assert event.raw["event_id"] == "evt-20250501-0001"


def test_generic_defaults_and_caller_object() -> None:
    body = json.dumps(
        {
            "event_id": "e2",
            "call_id": "c2",
            "kind": "queued",
            "caller": {"raw": "+442079460123", "withheld": True},
        }
    ).encode()
    event = one("generic", make_request("/telephony/generic/events", body, content_type=JSON))
    assert event.occurred_at == NOW  # receipt time when the sender gives none
    assert event.caller.withheld and event.caller.e164 is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"call_id": "c", "kind": "queued"}, "event_id"),
        ({"event_id": "e", "kind": "queued"}, "call_id"),
        ({"event_id": "e", "call_id": "c"}, "kind"),
        ({"event_id": "e", "call_id": "c", "kind": "ringing"}, "kind"),
        (
            {"event_id": "e", "call_id": "c", "kind": "queued", "occurred_at": "yesterday"},
            "occurred_at",
        ),
        ({"event_id": "e", "call_id": "c", "kind": "queued", "caller": 7}, "caller"),
        ({"event_id": "e", "call_id": "c", "kind": "queued", "attributes": [1]}, "attributes"),
    ],
)
def test_generic_malformed_names_the_field(payload: dict[str, object], field: str) -> None:
    request = make_request(
        "/telephony/generic/events", json.dumps(payload).encode(), content_type=JSON
    )
    with pytest.raises(MalformedEvent) as info:
        parse("generic", request)
    assert info.value.field == field and info.value.status_code == 422


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_generic_body_not_a_json_object(body: bytes) -> None:
    with pytest.raises(MalformedEvent) as info:
        parse("generic", make_request("/telephony/generic/events", body, content_type=JSON))
    assert info.value.field == "body"


@pytest.mark.parametrize(
    ("name", "path", "content_type"),
    [
        ("generic", "/telephony/generic/events", "text/plain"),
        ("generic", "/telephony/generic/events", FORM),
        ("telnyx", "/telephony/telnyx/events", FORM),
        ("amazon-connect", "/telephony/amazon-connect/events", "text/xml"),
        ("kamailio", "/telephony/kamailio/events", JSON),
        ("twilio", "/telephony/twilio/voice", "text/xml"),
        ("vonage", "/telephony/vonage/events", "multipart/form-data; boundary=x"),
    ],
)
def test_wrong_content_type_is_415(name: str, path: str, content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse(name, make_request(path, b"x=1", content_type=content_type))
    assert info.value.status_code == 415


def test_registry_lookup() -> None:
    assert set(ADAPTERS) == {"generic", "twilio", "telnyx", "vonage", "amazon-connect", "kamailio"}
    for name, adapter in ADAPTERS.items():
        assert adapter.source == name
    with pytest.raises(UnknownProvider, match="nope"):
        get_adapter("nope")


# --- twilio -------------------------------------------------------------------------------


def twilio(path: str, fixture: str) -> WebhookRequest:
    return make_request(
        f"/telephony/twilio/{path}", form_body(fixture_json(fixture)), content_type=FORM
    )


def test_twilio_voice_webhook_is_queued() -> None:
    event = one("twilio", twilio("voice", "twilio_voice.form.json"))
    assert event.full_call_id == "twilio:CA5f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
    assert event.kind == "queued"
    assert event.caller.e164 == ALICE and event.caller_name == "ALICE SMITH"
    assert event.dialed == "+442079460000"
    # A retry of the same webhook gets the same id.
    assert one("twilio", twilio("voice", "twilio_voice.form.json")).event_id == event.event_id


def test_twilio_status_completed_is_ended() -> None:
    event = one("twilio", twilio("status", "twilio_status_completed.form.json"))
    assert (event.kind, event.call_id) == ("ended", "CA5f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d")


def test_twilio_child_leg_no_answer_withdraws_offer_on_parent_call() -> None:
    event = one("twilio", twilio("status", "twilio_status_child_no_answer.form.json"))
    assert event.call_id == "CA5f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"  # the parent (caller) call
    assert event.kind == "queued" and event.offer_withdrawn
    assert event.agent == "201"
    assert event.caller.raw == ""  # the child leg's From is our own number, not the caller


@pytest.mark.parametrize(
    ("status", "parent", "kind"),
    [
        ("ringing", False, "queued"),
        ("in-progress", False, None),
        ("busy", False, "abandoned"),
        ("canceled", False, "abandoned"),
        ("ringing", True, "offered"),
        ("in-progress", True, "answered"),
        ("completed", True, "ended"),
        ("canceled", True, "queued"),
    ],
)
def test_twilio_status_mapping(status: str, parent: bool, kind: str | None) -> None:
    fields = fixture_json("twilio_status_completed.form.json")
    fields["CallStatus"] = status
    if parent:
        fields["ParentCallSid"] = "CAparent"
        fields["To"] = "client:alice"
    events = parse(
        "twilio", make_request("/telephony/twilio/status", form_body(fields), content_type=FORM)
    )
    assert [e.kind for e in events] == ([kind] if kind else [])
    if parent and kind:
        assert events[0].call_id == "CAparent" and events[0].agent == "alice"


def test_twilio_taskrouter_reservation_created_is_offered() -> None:
    event = one("twilio", twilio("taskrouter", "twilio_taskrouter_reservation_created.form.json"))
    assert event.kind == "offered"
    assert event.call_id == "CA5f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
    assert event.agent == "alice" and event.attributes["WorkerSid"].startswith("WK")
    assert event.queue == "sales"
    assert event.caller.e164 == ALICE and event.dialed == "+442079460000"
    assert event.event_id == "EV3c4d5e6f708192a3b4c5d6e7f8091a2b"
    assert event.attributes["account_ref"] == "12345"
    assert event.occurred_at == datetime.fromtimestamp(1746090005, UTC)


def test_twilio_taskrouter_timeout_withdraws_offer() -> None:
    event = one("twilio", twilio("taskrouter", "twilio_taskrouter_reservation_timeout.form.json"))
    assert event.kind == "queued" and event.attributes[OFFER_WITHDRAWN] is True
    assert event.agent == "alice"


def test_twilio_taskrouter_task_canceled_is_abandoned() -> None:
    event = one("twilio", twilio("taskrouter", "twilio_taskrouter_task_canceled.form.json"))
    assert event.kind == "abandoned" and event.agent is None
    assert event.attributes["TaskCanceledReason"] == "hangup"


def test_twilio_taskrouter_ignores_worker_events_and_needs_call_sid() -> None:
    fields = fixture_json("twilio_taskrouter_reservation_created.form.json")
    fields["EventType"] = "worker.activity.update"
    assert (
        parse(
            "twilio",
            make_request("/telephony/twilio/taskrouter", form_body(fields), content_type=FORM),
        )
        == []
    )
    fields["EventType"] = "reservation.accepted"
    fields["TaskAttributes"] = json.dumps({"from": "+447700900123"})
    with pytest.raises(MalformedEvent) as info:
        parse(
            "twilio",
            make_request("/telephony/twilio/taskrouter", form_body(fields), content_type=FORM),
        )
    assert info.value.field == "TaskAttributes.call_sid"
    fields["TaskAttributes"] = "{oops"
    with pytest.raises(MalformedEvent, match="TaskAttributes"):
        parse(
            "twilio",
            make_request("/telephony/twilio/taskrouter", form_body(fields), content_type=FORM),
        )


def test_twilio_missing_call_sid_is_422() -> None:
    with pytest.raises(MalformedEvent) as info:
        parse(
            "twilio",
            make_request("/telephony/twilio/voice", b"From=%2B447700900123", content_type=FORM),
        )
    assert info.value.field == "CallSid"


def test_twiml_enqueue_escapes_the_queue_name() -> None:
    xml = twiml_enqueue('sales & "vip" <1>')
    assert xml.endswith('<Response><Enqueue>sales &amp; "vip" &lt;1&gt;</Enqueue></Response>')
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    assert root.find("Enqueue") is not None and root.find("Enqueue").text == 'sales & "vip" <1>'  # type: ignore[union-attr]
    assert 'workflowSid="WW1"' in twiml_enqueue("q", workflow_sid="WW1")


# --- telnyx -------------------------------------------------------------------------------


def telnyx(fixture: str) -> WebhookRequest:
    return make_request("/telephony/telnyx/events", fixture_bytes(fixture), content_type=JSON)


def test_telnyx_call_lifecycle() -> None:
    initiated = one("telnyx", telnyx("telnyx_call_initiated.json"))
    assert initiated.full_call_id == "telnyx:428c31b6-abf3-3bc1-b7f4-5013ef9657c1"
    assert initiated.kind == "queued" and initiated.caller.e164 == ALICE
    assert initiated.caller_name == "ALICE SMITH" and initiated.dialed == "+442079460000"
    assert initiated.event_id == "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"
    answered = one("telnyx", telnyx("telnyx_call_answered_outgoing.json"))
    assert (answered.kind, answered.agent, answered.call_id) == (
        "answered",
        "201",
        initiated.call_id,
    )
    hangup = one("telnyx", telnyx("telnyx_call_hangup.json"))
    assert hangup.kind == "ended" and hangup.attributes["hangup_cause"] == "normal_clearing"
    assert parse("telnyx", telnyx("telnyx_call_dtmf.json")) == []


def test_telnyx_agent_leg_timeout_withdraws_offer_and_numbers_without_plus() -> None:
    body = fixture_json("telnyx_call_answered_outgoing.json")
    body["data"]["event_type"] = "call.hangup"
    body["data"]["payload"]["hangup_cause"] = "timeout"
    event = one(
        "telnyx",
        make_request("/telephony/telnyx/events", json.dumps(body).encode(), content_type=JSON),
    )
    assert event.kind == "queued" and event.offer_withdrawn and event.agent == "201"
    incoming = fixture_json("telnyx_call_initiated.json")
    incoming["data"]["payload"]["from"] = "447700900123"
    event = one(
        "telnyx",
        make_request("/telephony/telnyx/events", json.dumps(incoming).encode(), content_type=JSON),
    )
    assert event.caller.e164 == ALICE


def test_telnyx_missing_session_id_names_the_field() -> None:
    body = fixture_json("telnyx_call_initiated.json")
    del body["data"]["payload"]["call_session_id"]
    with pytest.raises(MalformedEvent) as info:
        parse(
            "telnyx",
            make_request("/telephony/telnyx/events", json.dumps(body).encode(), content_type=JSON),
        )
    assert info.value.field == "data.payload.call_session_id"


# --- vonage -------------------------------------------------------------------------------


def test_vonage_answer_webhook_get() -> None:
    request = make_request(
        "/telephony/vonage/answer", method="GET", query=fixture_json("vonage_answer.query.json")
    )
    event = one("vonage", request)
    assert event.full_call_id == "vonage:CON-8f7a3e2c-1b4d-4f6a-9c0e-2d5b7a9c1e3f"
    assert event.kind == "queued"
    assert event.caller.e164 == ALICE  # sent as 447700900123
    assert event.dialed == "+442079460000"


def test_vonage_events() -> None:
    def vonage(fixture: str) -> CallEvent:
        return one(
            "vonage",
            make_request("/telephony/vonage/events", fixture_bytes(fixture), content_type=JSON),
        )

    started = vonage("vonage_event_started.json")
    assert started.kind == "queued" and started.caller.e164 == ALICE
    assert started.occurred_at == datetime(2025, 5, 1, 9, 0, 0, 512000, tzinfo=UTC)
    timeout = vonage("vonage_event_outbound_timeout.json")
    assert timeout.kind == "queued" and timeout.offer_withdrawn and timeout.agent == "201"
    assert timeout.call_id == started.call_id
    completed = vonage("vonage_event_completed.json")
    assert completed.kind == "ended"
    assert len({started.event_id, timeout.event_id, completed.event_id}) == 3


def test_vonage_inbound_answered_ignored_and_failures_abandon() -> None:
    body = fixture_json("vonage_event_started.json")
    body["status"] = "answered"
    assert (
        parse(
            "vonage",
            make_request("/telephony/vonage/events", json.dumps(body).encode(), content_type=JSON),
        )
        == []
    )
    body["status"] = "cancelled"
    assert [
        e.kind
        for e in parse(
            "vonage",
            make_request("/telephony/vonage/events", json.dumps(body).encode(), content_type=JSON),
        )
    ] == ["abandoned"]
    del body["uuid"]
    with pytest.raises(MalformedEvent) as info:
        parse(
            "vonage",
            make_request("/telephony/vonage/events", json.dumps(body).encode(), content_type=JSON),
        )
    assert info.value.field == "uuid"


# --- amazon connect -----------------------------------------------------------------------


def amazon(fixture: str) -> CallEvent:
    return one(
        "amazon-connect",
        make_request("/telephony/amazon-connect/events", fixture_bytes(fixture), content_type=JSON),
    )


def test_amazon_connect_contact_events() -> None:
    queued = amazon("amazon_connect_queued.json")
    assert queued.full_call_id == "amazon-connect:7f8e9d0c-1b2a-4c3d-9e8f-7a6b5c4d3e2f"
    assert queued.kind == "queued" and queued.caller.e164 == ALICE
    assert queued.queue == "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b"
    assert queued.attributes["account_ref"] == "12345" and queued.dialed == "+442079460000"
    assert queued.event_id == "5b2a3c4d-6e7f-8091-a2b3-c4d5e6f70819"
    connected = amazon("amazon_connect_connected_to_agent.json")
    assert (
        connected.kind == "answered" and connected.agent == "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
    )
    gone = amazon("amazon_connect_disconnected_in_queue.json")
    assert gone.kind == "abandoned"  # queued, never reached an agent
    assert gone.caller.e164 == ALICE  # from 'customerNumber' without '+'


def test_amazon_connect_disconnect_after_agent_is_ended_and_others_ignored() -> None:
    body = fixture_json("amazon_connect_connected_to_agent.json")
    body["detail"]["eventType"] = "DISCONNECTED"
    request = make_request(
        "/telephony/amazon-connect/events", json.dumps(body).encode(), content_type=JSON
    )
    assert one("amazon-connect", request).kind == "ended"
    body["detail"]["eventType"] = "CONNECTED_TO_SYSTEM"
    request = make_request(
        "/telephony/amazon-connect/events", json.dumps(body).encode(), content_type=JSON
    )
    assert parse("amazon-connect", request) == []
    body["detail-type"] = "Amazon Connect Agent Event"
    request = make_request(
        "/telephony/amazon-connect/events", json.dumps(body).encode(), content_type=JSON
    )
    assert parse("amazon-connect", request) == []


def test_amazon_connect_without_caller_attribute_is_unknown_not_an_error() -> None:
    body = fixture_json("amazon_connect_queued.json")
    body["detail"]["attributes"] = {}
    request = make_request(
        "/telephony/amazon-connect/events", json.dumps(body).encode(), content_type=JSON
    )
    event = one("amazon-connect", request)
    assert event.caller.e164 is None and event.caller.raw == ""
    del body["detail"]["contactId"]
    request = make_request(
        "/telephony/amazon-connect/events", json.dumps(body).encode(), content_type=JSON
    )
    with pytest.raises(MalformedEvent) as info:
        parse("amazon-connect", request)
    assert info.value.field == "detail.contactId"


# --- kamailio -----------------------------------------------------------------------------


def kamailio(fields: dict[str, str]) -> WebhookRequest:
    return make_request("/telephony/kamailio/events", form_body(fields), content_type=FORM)


def test_kamailio_offered_prefers_pai() -> None:
    fields = fixture_json("kamailio_offered.form.json")
    event = one("kamailio", kamailio(fields))
    assert event.full_call_id == "kamailio:a84b4c76e66710@pc33.atlanta.example.com"
    assert (event.kind, event.agent) == ("offered", "201")
    assert event.caller.e164 == ALICE and event.caller.raw.startswith("<sip:")
    assert event.caller_name == "Alice Smith" and event.dialed == "+442079460000"
    assert event.occurred_at == datetime.fromtimestamp(1795432230.804653, UTC)
    # Kamailio retransmits the same post: same id. Another ring of the same agent: new id.
    assert one("kamailio", kamailio(fields)).event_id == event.event_id
    assert one("kamailio", kamailio({**fields, "ts": "1795432260.1"})).event_id != event.event_id


def test_kamailio_unanswered_is_offer_withdrawn_not_abandon() -> None:
    event = one("kamailio", kamailio(fixture_json("kamailio_unanswered.form.json")))
    assert event.kind == "queued" and event.attributes == {OFFER_WITHDRAWN: True}
    assert event.agent == "201" and event.caller.e164 == ALICE  # from_user when pai is empty


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event": "ringing"}, "event"),
        ({"call_id": ""}, "call_id"),
        ({"ts": "soon"}, "ts"),
        ({"event": "unanswered", "ruri_user": ""}, "ruri_user"),
    ],
)
def test_kamailio_malformed(change: dict[str, str], field: str) -> None:
    with pytest.raises(MalformedEvent) as info:
        parse("kamailio", kamailio({**fixture_json("kamailio_offered.form.json"), **change}))
    assert info.value.field == field


def test_transfer_attribute_name_is_stable() -> None:
    assert TRANSFER_TO == "transfer_to" and OFFER_WITHDRAWN == "offer_withdrawn"
