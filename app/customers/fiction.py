"""Stable fictional identities for imported customers that come without name or phone.

Numbers come from Ofcom's ranges reserved for drama, so they can never reach a real person:
https://www.ofcom.org.uk/phones-and-broadband/phone-numbers/numbers-for-drama
"""

from __future__ import annotations

import hashlib

FIRST = (
    "Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Evie Florence Poppy "
    "Charlotte Ella Daisy Sienna Alice Noah Oliver George Arthur Muhammad Leo Harry Oscar "
    "Archie Henry Theodore Freddie Jack Charlie Finley Thomas Alfie Jacob Lucas Samuel Priya "
    "Aisha Mateo Sofia Hugo Elif Jonas Chiara Pierre Ines Niamh Callum Rhys Eilidh Ruairi"
).split()
LAST = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson "
    "Evans Walker White Roberts Green Hall Thomas Clarke Jackson Wood Harris Edwards Turner "
    "Martin Cooper Hill Ward Hughes Moore Clark King Harrison Lewis Baker Lee Allen Morris "
    "Khan Scott Watson Davis Parker James Bennett Young Phillips Richardson Mitchell Bailey "
    "Carter Cook Singh Shaw Bell Collins Morgan Kelly Begum Miller Cox Hussain Marshall"
).split()
ORG_SUFFIX = ("Gifts", "Trading", "Home & Garden", "Interiors", "Crafts", "Stores", "Emporium")

# Geographic drama ranges (each 1,000 numbers, all valid to libphonenumber).
LANDLINE_PREFIXES = (
    "+442079460", "+441214960", "+441174960", "+441134960", "+441144960",
    "+441164960", "+441184960", "+441314960", "+441414960", "+441514960",
    "+441614960", "+441914980", "+442896496", "+442920180",
)  # fmt: skip
MOBILE_PREFIX = "+447700900"
# Multiplier coprime with the pool size: a bijection from customer number to pool slot.
_STRIDE = 7919
# Customers 12346.. are the retail data's numbering; others hash into the pool.
_BASE_ID = 12346


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _index(external_ref: str) -> int:
    return int(external_ref) - _BASE_ID if external_ref.isdigit() else _digest(external_ref)


def _landline(slot: int) -> str:
    pool = len(LANDLINE_PREFIXES) * 1000
    n = (slot * _STRIDE) % pool
    prefix = LANDLINE_PREFIXES[n // 1000]
    return f"{prefix}{n % 1000:03d}"


def name_for(external_ref: str, business: bool = False) -> str:
    h = _digest("name:" + external_ref)
    first, last = FIRST[h % len(FIRST)], LAST[(h // 97) % len(LAST)]
    if business:
        return f"{last} {ORG_SUFFIX[(h // 7) % len(ORG_SUFFIX)]}"
    return f"{first} {last}"


def phones_for(external_ref: str) -> list[tuple[str, str]]:
    """(label, E.164) numbers for a customer: a landline, sometimes a mobile too.

    About one customer in 150 deliberately shares the landline of the customer before it
    (a family or a small firm on one line), so the product's chooser has real cases.
    """
    k = _index(external_ref)
    slot = k - 1 if k > 0 and k % 150 == 1 else k
    numbers = [("main", _landline(slot))]
    if k % 6 == 0:
        numbers.append(("mobile", f"{MOBILE_PREFIX}{(k // 6) % 1000:03d}"))
    return numbers


def flags_for(external_ref: str) -> tuple[str | None, bool]:
    """(forced customer type or None, marketing consent), stable per customer."""
    h = _digest("flags:" + external_ref)
    bucket = h % 100
    forced = "institutional" if bucket < 3 else "government" if bucket == 3 else None
    consent = (h // 100) % 100 < 62
    return forced, consent
