"""What a phone number says by itself: country, region, place and kind (for unknown callers).

The geocoder and carrier data of ``phonenumbers`` are imported here, at module import, so the
first unknown caller of a process does not pay their load time (~0.4 s) inside a pop.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType, carrier, geocoder

_TYPES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


@lru_cache(maxsize=512)
def _country_name(region: str) -> str | None:
    # The geocoder names countries only through a number of that country: use its example.
    example = phonenumbers.example_number(region)
    if example is None:
        return None
    return geocoder.country_name_for_number(example, "en") or None


def number_info(number: str | None, *, default_region: str = "GB") -> dict[str, Any]:
    """``{"number", "country", "region", "location", "number_type", "carrier"}`` for a number.

    ``number`` is an E.164 string or whatever was received; fields that cannot be known are
    None (``number_type`` is ``"unknown"``). Numbers outside libphonenumber's valid ranges
    (Ofcom's drama ranges, for one) still get their country from the country code.
    """
    info: dict[str, Any] = {
        "number": number,
        "country": None,
        "region": None,
        "location": None,
        "number_type": "unknown",
        "carrier": None,
    }
    if not number:
        return info
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException:
        return info
    valid = phonenumbers.is_valid_number(parsed)
    if not valid and not number.startswith("+"):
        # A short or broken national string (an extension, a typo) says nothing of a country.
        return info
    region = phonenumbers.region_code_for_number(parsed)
    if region is None:
        fallback = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        region = None if fallback == phonenumbers.UNKNOWN_REGION else fallback
    info["region"] = region
    if region is not None:
        info["country"] = _country_name(region)
    if valid:
        info["location"] = geocoder.description_for_number(parsed, "en") or None
        info["number_type"] = _TYPES.get(phonenumbers.number_type(parsed), "unknown")
        info["carrier"] = carrier.name_for_number(parsed, "en") or None
    return info


@lru_cache(maxsize=65536)
def national_format(e164: str | None) -> str | None:
    """A number as its own country writes it (``+441144960796`` -> ``0114 496 0796``), or None
    when it is not a parsable international number."""
    if not e164 or not e164.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL) or None
