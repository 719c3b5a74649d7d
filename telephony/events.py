"""The normalised call event every adapter produces."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

EventKind = Literal[
    "queued", "offered", "answered", "held", "resumed", "transferred", "ended", "abandoned"
]
EVENT_KINDS: frozenset[str] = frozenset(
    ("queued", "offered", "answered", "held", "resumed", "transferred", "ended", "abandoned")
)

# Attribute conventions shared by all adapters (the app reads these keys).
OFFER_WITHDRAWN = "offer_withdrawn"
"""``attributes[OFFER_WITHDRAWN] = True`` on a ``queued`` event naming ``agent``: the offer of
the call to that agent was withdrawn (ring timeout, rejected, busy) and the call is back in the
queue. It is never an abandon."""
TRANSFER_TO = "transfer_to"
"""``attributes[TRANSFER_TO]`` on a ``transferred`` event: the agent/extension receiving it."""
ACCOUNT_REF = "account_ref"
"""``attributes[ACCOUNT_REF]``: an account number the caller keyed in the IVR, if any."""


class CallerId(BaseModel):
    """A caller number as received and as normalised."""

    model_config = ConfigDict(frozen=True)

    raw: str
    e164: str | None
    withheld: bool
    valid: bool


class CallEvent(BaseModel):
    """One thing that happened to one call, in provider-neutral terms."""

    model_config = ConfigDict(frozen=True)

    source: str
    event_id: str
    call_id: str
    kind: EventKind
    caller: CallerId
    caller_name: str | None = None
    dialed: str | None = None
    queue: str | None = None
    agent: str | None = None
    occurred_at: datetime
    attributes: dict[str, Any] = {}
    raw: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Naive datetimes are taken as UTC: every provider we speak to sends UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def full_call_id(self) -> str:
        """The call's id across sources, e.g. ``twilio:CA…``."""
        return f"{self.source}:{self.call_id}"

    @property
    def offer_withdrawn(self) -> bool:
        """True when this event withdraws the offer of the call to ``agent``."""
        return bool(self.attributes.get(OFFER_WITHDRAWN))


def derive_event_id(source: str, *parts: object) -> str:
    """A stable id for providers that send none: the same inputs give the same id.

    Used with (call id, kind, agent, provider timestamp …) so a provider's retry of the same
    event de-duplicates, while a genuinely new event (another ring, another agent) does not.
    """
    text = "\x1f".join([source, *("" if p is None else str(p) for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def from_unix(value: str | float | int) -> datetime:
    """Unix seconds (possibly fractional, possibly a string) to an aware UTC datetime."""
    return datetime.fromtimestamp(float(value), tz=UTC)
