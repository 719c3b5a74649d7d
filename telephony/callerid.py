"""Caller-ID normalisation: whatever a PBX or provider sends -> ``CallerId``.

Accepts national and international numbers (``+``, ``00``), SIP/SIPS/tel URIs with or without a
display name (``"Bob" <sip:+4420…@host;user=phone>``), numbers decorated with spaces, dashes,
brackets, dots and slashes, and provider styles without ``+`` (Vonage, Telnyx: ``447700900123``).
Withheld forms are flagged and never get an E.164 (they must never be looked up). Anything else
that does not parse to a valid number is kept raw and flagged ``valid=False``. Never raises.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from telephony.events import CallerId

# Compared after lower-casing and stripping quotes/brackets/whitespace.
_WITHHELD_WORDS = frozenset(
    {
        "",
        "anonymous",
        "anonymous caller",
        "private",
        "private number",
        "restricted",
        "unknown",
        "unavailable",
        "not available",
        "withheld",
        "number withheld",
        "blocked",
        "no caller id",
        "anonymous.invalid",
    }
)
# Twilio spells withheld callers as keypad words (ANONYMOUS, RESTRICTED, UNKNOWN, UNAVAILABLE).
_TWILIO_WITHHELD = frozenset({"+266696687", "+7378742833", "+8656696", "+86282452253"})

# Ofcom's drama ranges are not "valid" in libphonenumber's metadata, yet our demo data and many
# test systems use them; treat them as real numbers so they can be matched.
_FICTIONAL_PREFIXES: tuple[tuple[str, int], ...] = (("+447700900", 13), ("+441632960", 13))

_ANGLE = re.compile(r"<([^>]*)>")
_DECORATION = re.compile(r"[\s\-().\[\]/]")
_URI_SCHEME = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)
_MAX_INPUT = 200  # longer strings are not phone numbers; keeps the parser cheap on junk


def _uri_user(value: str) -> str:
    """The number-ish part of a SIP/tel URI or a decorated string."""
    text = value.strip()
    match = _ANGLE.search(text)
    if match is not None:
        # '"Bob" <sip:+44…@h>': the address is inside the brackets, the rest is a display name.
        text = match.group(1).strip()
    text = text.strip("\"' ")
    if _URI_SCHEME.match(text):
        text = _URI_SCHEME.sub("", text, count=1)
        text = text.split(";", 1)[0]  # ;user=phone, ;phone-context=…
        text = text.split("@", 1)[0]
        text = text.split(":", 1)[0]  # user:password@host
    elif "@" in text:
        text = text.split("@", 1)[0]
    return text.strip()


def _is_withheld(value: str) -> bool:
    return value.strip().strip("\"'<> ").lower() in _WITHHELD_WORDS


def _fictional(e164: str) -> bool:
    return any(e164.startswith(p) and len(e164) == n for p, n in _FICTIONAL_PREFIXES)


def _e164_if_valid(number: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(parsed) or _fictional(e164):
        return e164
    return None


def _to_e164(user: str, default_region: str) -> str | None:
    compact = _DECORATION.sub("", user)
    if not compact or len(compact) > 32:
        return None
    if compact.startswith("00") and not compact.startswith("000"):
        # '00' is the international prefix almost everywhere; make it explicit so regions whose
        # own IDD differs (US: 011) do not read it as a national number.
        compact = "+" + compact[2:]
    if compact.startswith("+"):
        return _e164_if_valid(compact, None)
    found = _e164_if_valid(compact, default_region)
    if found is not None:
        return found
    if compact.isdigit() and not compact.startswith("0"):
        # Providers that drop the '+' (Vonage, Telnyx): the digits start with a country code.
        return _e164_if_valid("+" + compact, None)
    return None


# Callers repeat (and CallerId is frozen): parsing with phonenumbers compiles and walks many
# regions' patterns, which cost ~6 % of the server's CPU under load before this cache.
@lru_cache(maxsize=65536)
def normalise(raw: str | None, default_region: str = "GB") -> CallerId:
    """Normalise a caller number as received into a ``CallerId``; never raises (cached)."""
    text = (raw or "").strip()
    if len(text) > _MAX_INPUT:
        return CallerId(raw=text, e164=None, withheld=False, valid=False)
    if _is_withheld(text):
        return CallerId(raw=text, e164=None, withheld=True, valid=False)
    user = _uri_user(text)
    if _is_withheld(user):
        return CallerId(raw=text, e164=None, withheld=True, valid=False)
    if _DECORATION.sub("", user) in _TWILIO_WITHHELD:
        return CallerId(raw=text, e164=None, withheld=True, valid=False)
    e164 = _to_e164(user, default_region)
    return CallerId(raw=text, e164=e164, withheld=False, valid=e164 is not None)


@lru_cache(maxsize=4096)
def normalise_dialed(raw: str | None, default_region: str = "GB") -> str | None:
    """The dialed number (DID) as E.164 when it parses, else the URI user part / raw text.

    Returns None for empty input. Non-numbers (``sales`` in ``sip:sales@pbx``) are kept so queues
    can be matched by name.
    """
    text = (raw or "").strip()
    if not text:
        return None
    if len(text) > _MAX_INPUT:
        return text
    user = _uri_user(text)
    return _to_e164(user, default_region) or user or text


def extension_of(value: str | None) -> str | None:
    """The agent part of a device or URI: ``PJSIP/201-0000a`` -> ``201``, ``sip:201@pbx`` ->
    ``201``, ``1000@default`` -> ``1000``, ``Local/201@from-queue/n`` -> ``201``."""
    if not value:
        return None
    text = value.strip()
    if _URI_SCHEME.match(text) or "<" in text:
        return _uri_user(text) or None
    if "/" in text:
        # TECH/resource[-suffix]: Asterisk devices and Local channels.
        text = text.split("/", 1)[1]
        text = text.split("@", 1)[0]
        if re.fullmatch(r".+-[0-9a-f]{8}(;\d+)?", text):
            text = text.rsplit("-", 1)[0]
        return text or None
    return text.split("@", 1)[0] or None
