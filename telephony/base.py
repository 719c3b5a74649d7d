"""The adapter interface and the request shape every webhook adapter receives.

The app builds a ``WebhookRequest`` from its HTTP request and calls ``verify`` then ``parse``;
adapters never see the web framework. The app reads the body with its own size limit
(``SCREENPOP_MAX_BODY_BYTES``) before an adapter sees it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl

import orjson

from telephony.errors import (
    BadSignature,
    MalformedEvent,
    NotConfigured,
    StaleTimestamp,
    UnsupportedMediaType,
)
from telephony.events import CallEvent

SIGNATURE_TOLERANCE_S = 300


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP request as a provider sent it.

    ``url`` is the full public URL the provider called (``SCREENPOP_PUBLIC_URL`` + path + raw
    query string): Twilio signs exactly that. ``query`` is a plain mapping (last value wins);
    adapters that need repeated keys re-parse ``url``. ``headers`` names are lower-case.
    """

    method: str
    url: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime

    def header(self, name: str) -> str | None:
        """A header by (case-insensitive) name."""
        value = self.headers.get(name.lower())
        if value is None:
            # Tolerate callers that did not lower-case (the contract says they do).
            for key, val in self.headers.items():
                if key.lower() == name.lower():
                    return val
        return value

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-case; '' when absent."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@runtime_checkable
class WebhookAdapter(Protocol):
    """One provider's webhook: authenticity check and payload -> ``CallEvent``s."""

    source: str

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Raise ``NotConfigured``/``BadSignature``/``StaleTimestamp`` unless authentic.

        ``secret`` None: ``NotConfigured`` unless ``dev`` (then unsigned requests pass).
        """
        ...

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """The events in the request; [] for provider events we deliberately ignore.

        Raises ``MalformedEvent`` (naming the field: missing, wrong type, too long for its
        column, a NUL character) or ``UnsupportedMediaType``.
        """
        ...


def should_verify(source: str, secret: str | None, *, dev: bool) -> bool:
    """Common prologue of ``verify``: whether a signature must be checked."""
    if secret:
        return True
    if dev:
        return False
    raise NotConfigured(f"{source}: no secret is configured for this provider")


def check_shared_secret(
    source: str,
    secret: str | None,
    presented: str | None,
    *,
    dev: bool,
    where: str,
) -> None:
    """``verify`` for providers that send the configured secret itself (a header or a URL
    parameter named by ``where``) rather than a signature: compared in constant time."""
    if not should_verify(source, secret, dev=dev):
        return
    assert secret is not None
    if not presented:
        raise BadSignature(f"missing {where}")
    if not hmac.compare_digest(presented.encode("utf-8"), secret.encode("utf-8")):
        raise BadSignature(f"{where} is wrong")


def check_timestamp(
    ts: int | float, now: datetime, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> None:
    """Refuse a signed timestamp further than ``tolerance_s`` from ``now`` either way."""
    skew = abs(now.timestamp() - ts)
    if skew > tolerance_s:
        raise StaleTimestamp(f"timestamp is {int(skew)} s away from now (limit {tolerance_s} s)")


def require_media_type(request: WebhookRequest, *allowed: str) -> str:
    """The request's media type if allowed; a missing Content-Type passes as the first."""
    media = request.media_type
    if not media:
        return allowed[0]
    if media not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {media!r} is not accepted here; send {' or '.join(allowed)}"
        )
    return media


def load_json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body or raise ``MalformedEvent('body', …)``."""
    try:
        value = orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent("body", f"not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise MalformedEvent("body", "expected a JSON object")
    return value


def load_form(body: bytes) -> dict[str, str]:
    """Decode a form body (last value wins) or raise ``MalformedEvent('body', …)``."""
    return dict(form_pairs(body))


def form_pairs(body: bytes) -> Sequence[tuple[str, str]]:
    """All key/value pairs of a form body, in order, repeated keys kept."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEvent("body", f"not a valid form body ({exc})") from exc


def required_str(data: Mapping[str, Any], key: str, *, label: str | None = None) -> str:
    """``data[key]`` as a non-empty string (an integer is taken as its digits), or
    ``MalformedEvent`` naming the field: missing, or of another JSON type."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MalformedEvent(label or key, "is required")
    return _text(value, label or key)


def optional_str(data: Mapping[str, Any], key: str, *, label: str | None = None) -> str | None:
    """``data[key]`` as a stripped string, None when absent, null or empty; a number is taken
    as its text; any other JSON type (true/false, object, array) is ``MalformedEvent``."""
    value = data.get(key)
    if value is None:
        return None
    return _text(value, label or key) or None


def _text(value: Any, field_name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        kind = "true/false" if isinstance(value, bool) else type(value).__name__
        raise MalformedEvent(field_name, f"must be a string, not {kind}")
    return str(value).strip()


def as_mapping(value: Any, field_name: str) -> Mapping[str, Any]:
    """A nested object, or ``MalformedEvent`` naming the field."""
    if not isinstance(value, Mapping):
        raise MalformedEvent(field_name, "expected an object")
    return value
