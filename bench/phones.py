"""Fictional phone numbers for a synthetic database of up to ~1.1 million customers.

Nothing here can reach a real person:

* **Callable numbers** (valid to libphonenumber, so a benchmark call is matched by E.164) come
  only from ranges regulators reserve for drama and fiction:
  Ofcom's UK ranges (020 7946 0xxx and the other geographic drama blocks, 07700 900xxx,
  01632 960xxx), the NANP's 555-0100..0199 in every area code libphonenumber accepts, and
  ACMA's Australian 0x 5550 xxxx and 0x 7010 xxxx blocks. About 141,000 numbers.
* **Filler numbers** for everybody else are in the UK's fictional "Dramaton" area code 01632
  (+44 1632 xxxxxx, outside 960xxx). No operator holds that code; libphonenumber calls these
  numbers possible but not valid, so they sit in the index like any other number but a call
  from one would not match. The benchmark never calls them.

A few callable numbers are deliberately shared by two customers (a family on one line), so
some pops are choosers, as in real data.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from app.customers.fiction import LANDLINE_PREFIXES, MOBILE_PREFIX

# Numbers kept back from every customer: calls from them are "unknown caller" pops.
UNKNOWN_CALLERS = 5_000
SHARE_EVERY = 150  # one callable customer in 150 shares the previous one's number


@lru_cache(maxsize=1)
def callable_numbers() -> tuple[str, ...]:
    """Every fictional, libphonenumber-valid number, in a fixed order."""
    out: list[str] = []
    for prefix in (*LANDLINE_PREFIXES, MOBILE_PREFIX, "+441632960"):
        out.extend(f"{prefix}{n:03d}" for n in range(1000))
    for npa in range(200, 1000):
        probe = phonenumbers.parse(f"+1{npa}5550150")
        if phonenumbers.is_valid_number(probe):
            out.extend(f"+1{npa}55501{n:02d}" for n in range(100))
    for area in (2, 3, 7, 8):
        for block in (5550, 7010):
            out.extend(f"+61{area}{block}{n:04d}" for n in range(10_000))
    return tuple(out)


def unknown_numbers() -> tuple[str, ...]:
    """Valid fictional numbers that no customer has (the tail of the callable list)."""
    return callable_numbers()[-UNKNOWN_CALLERS:]


def assignable_numbers() -> tuple[str, ...]:
    return callable_numbers()[:-UNKNOWN_CALLERS]


def filler_number(k: int) -> str:
    """The k-th filler number in +44 1632 xxxxxx, skipping the 960xxx drama block."""
    n = k if k < 960_000 else k + 1000
    if n >= 1_000_000:
        raise ValueError("more customers than this fictional scheme has numbers (~1.13 million)")
    return f"+441632{n:06d}"


def is_callable(e164: str) -> bool:
    return not e164.startswith("+441632") or e164.startswith("+441632960")
