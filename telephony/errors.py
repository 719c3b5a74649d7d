"""Errors raised by telephony adapters.

Each error carries a human-readable ``detail``; the app maps the class to an HTTP status
(``status_code`` is provided as a hint so the mapping lives next to the meaning).
"""

from __future__ import annotations


class TelephonyError(Exception):
    """Base of every error an adapter raises for bad or unauthenticated input."""

    status_code: int = 400
    code: str = "telephony_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotConfigured(TelephonyError):
    """The provider's secret is unset and dev mode is off: refuse rather than trust."""

    status_code = 401
    code = "not_configured"


class BadSignature(TelephonyError):
    """Signature, token or API key missing or wrong."""

    status_code = 401
    code = "bad_signature"


class StaleTimestamp(TelephonyError):
    """The signed timestamp is outside the replay window."""

    status_code = 401
    code = "stale_timestamp"


class UnsupportedMediaType(TelephonyError):
    """The request's Content-Type is not one the provider sends."""

    status_code = 415
    code = "unsupported_media_type"


class MalformedEvent(TelephonyError):
    """The payload is unparseable or misses a required field; ``field`` names it."""

    status_code = 422
    code = "malformed_event"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
