"""The normalised call event every adapter produces, and the limits every event must fit.

A ``CallEvent`` is refused as it is built (``MalformedEvent``, naming the field and the limit)
when a text is longer than the column the app stores it in, when any text - nested attributes
and the provider's raw payload included - holds a NUL character (PostgreSQL text and JSONB
cannot), or when a field has the wrong type. Adapters and connectors build events only through
this model, so nothing that reaches the app can be cut short or fail in the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from telephony.errors import MalformedEvent

EventKind = Literal[
    "queued",
    "offered",
    "answered",
    "held",
    "resumed",
    "transferred",
    "ended",
    "abandoned",
    "expired",
    "rang_out",
]
EVENT_KINDS: frozenset[str] = frozenset(
    ("queued", "offered", "answered", "held", "resumed", "transferred", "ended", "abandoned")
)
"""What a provider may send; ``expired`` and ``rang_out`` are screenpop's own
(``app.calls.expiry``, ``app.queues.timeouts``)."""

# Attribute conventions shared by all adapters (the app reads these keys).
OFFER_WITHDRAWN = "offer_withdrawn"
"""``attributes[OFFER_WITHDRAWN] = True`` on a ``queued`` event naming ``agent``: the offer of
the call to that agent was withdrawn (ring timeout, rejected, busy) and the call is back in the
queue. It is never an abandon."""
TRANSFER_TO = "transfer_to"
"""``attributes[TRANSFER_TO]`` on a ``transferred`` event: the agent/extension receiving it."""
ACCOUNT_REF = "account_ref"
"""``attributes[ACCOUNT_REF]``: an account number the caller keyed in the IVR, if any."""
NOTES = "notes"
"""``attributes[NOTES]`` on a ``transferred`` event: the transferring side's notes so far."""
CONTACT_EMAIL = "email"
"""``attributes[CONTACT_EMAIL]``: the contact's email address (chat and email contacts); the
customer is matched by it when no ``account_ref`` matches."""

PHONE = "phone"
"""The channel of every call: what telephony adapters and connectors produce."""
CONTACT_CHANNELS: tuple[str, ...] = ("chat", "email", "sms", "social")
"""The channels of ``POST /contacts/{channel}/events``; each is also its events' ``source``,
so a chat's id (``chat:<id>``) never equals a call's (``<provider>:<id>``)."""

# Limits, in characters. The app's columns are declared with these sizes (app/calls/models.py,
# app/queues/models.py, app/users/models.py), so an event that fits them fits the database.
SOURCE_MAX = 32
EVENT_ID_MAX = 200
CALL_ID_MAX = 200
"""The whole call id, ``"<source>:<provider call id>"`` (``calls.id``)."""
KIND_MAX = 16
CALLER_RAW_MAX = 128
CALLER_E164_MAX = 20
CALLER_NAME_MAX = 200
DIALED_MAX = 64
QUEUE_MAX = 64
AGENT_MAX = 64
"""An agent's username; an agent nobody has is kept under the name the event gives."""
ACCOUNT_REF_MAX = 64
EMAIL_MAX = 200
CHANNEL_MAX = 16
NOTES_MAX = 2000
NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"


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
    # "phone" for calls; "chat", "email", "sms" or "social" for contacts (``CONTACT_CHANNELS``).
    channel: str = PHONE
    # None only for screenpop's own events (an expiry): no provider sent anything.
    raw: dict[str, Any] | None

    @model_validator(mode="after")
    def _fits(self) -> CallEvent:
        # MalformedEvent is no ValueError: pydantic lets it through to whoever builds the event.
        check_event(self)
        return self

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


def check_event(event: CallEvent) -> None:
    """Raise ``MalformedEvent`` (field and limit) unless every part fits the database."""
    caller = event.caller
    for field, value, limit in (
        ("source", event.source, SOURCE_MAX),
        ("event_id", event.event_id, EVENT_ID_MAX),
        ("call_id", event.call_id, CALL_ID_MAX - len(event.source) - 1),
        ("caller", caller.raw, CALLER_RAW_MAX),
        ("caller.e164", caller.e164, CALLER_E164_MAX),
        ("caller_name", event.caller_name, CALLER_NAME_MAX),
        ("dialed", event.dialed, DIALED_MAX),
        ("queue", event.queue, QUEUE_MAX),
        ("agent", event.agent, AGENT_MAX),
        ("channel", event.channel, CHANNEL_MAX),
    ):
        if value is not None and (len(value) > limit or NUL in value):
            check_text(field, value, limit)
    if event.attributes:
        _check_attributes(event.attributes)
    _check_json(event.attributes, event.raw)


def check_text(field: str, value: str | None, limit: int) -> None:
    """Refuse a text longer than ``limit`` characters or holding a NUL character."""
    if value is None:
        return
    if len(value) > limit:
        raise MalformedEvent(field, f"is {len(value)} characters long; the limit is {limit}")
    if NUL in value:
        raise MalformedEvent(field, "contains a NUL character (\\u0000), which cannot be stored")


REFUSED = (MalformedEvent, ValidationError)
"""What building a ``CallEvent`` raises for input that does not fit (``except REFUSED``)."""


def malformed(exc: MalformedEvent | ValidationError) -> MalformedEvent:
    """Either refusal as ``MalformedEvent``; pydantic's (a field of the wrong type) names the
    field of its first error."""
    if isinstance(exc, MalformedEvent):
        return exc
    first = exc.errors()[0]
    return MalformedEvent(".".join(str(part) for part in first["loc"]) or "event", first["msg"])


def _check_attributes(attributes: Mapping[str, Any]) -> None:
    """The attributes the app reads have the right type and fit their limits."""
    for key, limit in (
        (ACCOUNT_REF, ACCOUNT_REF_MAX),
        (TRANSFER_TO, AGENT_MAX),
        (NOTES, NOTES_MAX),
        (CONTACT_EMAIL, EMAIL_MAX),
    ):
        value = attributes.get(key)
        if value is None:
            continue
        name = f"attributes.{key}"
        if (
            isinstance(value, bool)
            or not isinstance(value, str | int)
            or (key in (NOTES, CONTACT_EMAIL) and not isinstance(value, str))
        ):
            raise MalformedEvent(name, f"must be a string, not {type(value).__name__}")
        check_text(name, str(value), limit)
    withdrawn = attributes.get(OFFER_WITHDRAWN)
    if withdrawn is not None and not isinstance(withdrawn, bool):
        raise MalformedEvent(f"attributes.{OFFER_WITHDRAWN}", "must be true or false")


def _check_json(attributes: Mapping[str, Any], raw: Mapping[str, Any] | None) -> None:
    """Refuse attributes or a raw payload that cannot be stored as JSON: not serialisable, or
    a NUL in any text or key. One serialisation finds whether there is a NUL at all; only then
    are they walked to name where (``attributes.…``, or the payload's own field names)."""
    try:
        dumped = orjson.dumps((attributes, raw), option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise MalformedEvent("body", f"cannot be stored as JSON ({exc})") from None
    if _ESCAPED_NUL in dumped:
        where = _nul_path(attributes, "attributes")
        if where is None:
            where = _nul_path(raw, "")
        if where is not None:
            raise MalformedEvent(
                where or "body", "contains a NUL character (\\u0000), which cannot be stored"
            )


def _nul_path(value: Any, path: str) -> str | None:
    """Where the first NUL character in ``value`` is, or None."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            text = str(key).replace(NUL, "\\u0000")
            name = f"{path}.{text}" if path else text
            if NUL in str(key):
                return name
            found = _nul_path(item, name)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


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
