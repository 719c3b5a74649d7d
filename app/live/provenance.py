"""Where a hub message comes from: the event's arrival and its trace, carried to the socket.

A publisher answering an event (the pop path) hands ``Provenance`` to ``Hub.publish`` with the
message. The hub carries it beside the frame, never inside it (every screen gets the same
bytes): in process as this object, through Redis in the envelope (``app.live.brokers``). The
subscription keeps it with the queued frame, and the websocket pump (``app.live.pump``) opens
the ``frame`` span in the event's trace around the write and tells the endpoint when the frame
was written, so pop health is measured from the event's arrival to the agent's socket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from app import tracing

# The W3C trace context headers carried; baggage is not (nothing here reads it).
_TRACE_KEYS = ("traceparent", "tracestate")
_ARRIVED = "t"
# A stamp longer than this is not ours: ignored rather than parsed.
MAX_ENCODED = 1024


@dataclass(frozen=True, slots=True)
class Provenance:
    """``arrived_at``: when the event reached this service (Unix seconds, wall clock, so that
    another instance can measure from it); ``trace``: its W3C trace context, if traced."""

    arrived_at: float | None = None
    trace: Mapping[str, str] | None = None

    @classmethod
    def of_event(cls, arrived: datetime) -> Provenance:
        """For messages published while handling an event that arrived at ``arrived``: the
        current trace context (when tracing is on) goes with them."""
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        trace = {k: v for k, v in carrier.items() if k in _TRACE_KEYS}
        return cls(arrived_at=arrived.timestamp(), trace=trace or None)

    def encode(self) -> bytes:
        """A compact form with no space, newline or ``;`` (the Redis envelope relies on it)."""
        fields: list[tuple[str, str]] = []
        if self.arrived_at is not None:
            fields.append((_ARRIVED, repr(self.arrived_at)))
        for key in _TRACE_KEYS:
            value = (self.trace or {}).get(key)
            if value:
                fields.append((key, value))
        return urlencode(fields).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Provenance | None:
        """The provenance ``encode`` wrote; None for anything else (never raises)."""
        if not data or len(data) > MAX_ENCODED:
            return None
        try:
            fields = dict(parse_qsl(data.decode("ascii"), strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            return None
        arrived = _finite(fields.get(_ARRIVED))
        trace = {k: fields[k] for k in _TRACE_KEYS if fields.get(k)}
        if arrived is None and not trace:
            return None
        return cls(arrived_at=arrived, trace=trace or None)


def _finite(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Stamped:
    """A queued frame that came with a provenance, and the message it encodes."""

    frame: bytes
    message: Mapping[str, Any]
    provenance: Provenance
