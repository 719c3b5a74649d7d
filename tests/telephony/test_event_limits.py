"""The limits every ``CallEvent`` is checked against as it is built (any adapter, any stream)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from telephony.callerid import normalise
from telephony.errors import MalformedEvent
from telephony.events import CALL_ID_MAX, CallEvent, malformed


def build(**fields: Any) -> CallEvent:
    values: dict[str, Any] = {
        "source": "kamailio",
        "event_id": "e-1",
        "call_id": "c-1",
        "kind": "queued",
        "caller": normalise("+447700900123", "GB"),
        "occurred_at": datetime(2025, 5, 1, tzinfo=UTC),
        "raw": {},
    }
    values.update(fields)
    return CallEvent(**values)


def test_the_call_id_limit_leaves_room_for_the_source() -> None:
    fits = "c" * (CALL_ID_MAX - len("kamailio:"))
    assert len(build(call_id=fits).full_call_id) == CALL_ID_MAX
    with pytest.raises(MalformedEvent) as info:
        build(call_id=fits + "c")
    assert info.value.field == "call_id" and "the limit is 191" in info.value.detail


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"caller": normalise("1" * 129, "GB")}, "caller"),
        ({"attributes": {"notes": "n" * 2001}}, "attributes.notes"),
        ({"attributes": {"notes": 7}}, "attributes.notes"),
        ({"attributes": {"transfer_to": ["201"]}}, "attributes.transfer_to"),
        ({"raw": {"legs": [{"id": "a"}, {"id": "b\x00"}]}}, "legs[1].id"),
        ({"raw": {"k": {"\x00": 1}}}, "k.\\u0000"),
    ],
)
def test_refusals_name_where(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(MalformedEvent) as info:
        build(**fields)
    assert info.value.field == where


def test_a_literal_backslash_u0000_is_text_not_a_nul() -> None:
    event = build(caller_name="\\u0000", raw={"note": "\\u0000"})
    assert event.caller_name == "\\u0000"


def test_a_wrong_type_from_pydantic_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        build(kind="exploded")
    refusal = malformed(info.value)
    assert refusal.field == "kind" and refusal.status_code == 422
