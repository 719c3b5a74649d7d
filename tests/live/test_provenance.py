"""A provenance survives its encoding (the Redis envelope) and anything else decodes to None."""

from __future__ import annotations

from datetime import UTC, datetime

from app.live.provenance import MAX_ENCODED, Provenance


def test_encoding_round_trips_and_has_no_envelope_separators() -> None:
    stamp = Provenance(
        arrived_at=1764900000.123456,
        trace={"traceparent": "00-abc-def-01", "tracestate": "a=1;x, b=two words\n"},
    )
    encoded = stamp.encode()
    assert not any(sep in encoded for sep in (b" ", b"\n", b";"))
    assert Provenance.decode(encoded) == stamp
    assert Provenance.decode(Provenance(arrived_at=2.5).encode()) == Provenance(arrived_at=2.5)


def test_garbage_decodes_to_none() -> None:
    for junk in (b"", b"t=nan", b"t=inf", b"nonsense", b"t=x", b"\xff\xfe", b"t=1" * MAX_ENCODED):
        assert Provenance.decode(junk) is None, junk


def test_of_event_without_tracing_carries_the_arrival_only() -> None:
    arrived = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    assert Provenance.of_event(arrived) == Provenance(arrived_at=arrived.timestamp())
