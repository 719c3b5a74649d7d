"""Pull lookup for PBXs that ask "who is this number?": 3CX CRM template, FreePBX Superfecta.

The answer is flat, in the field names of the shipped 3CX template
(``telephony/threecx/screenpop-crm-template.xml``): ``customer_id``, ``name``, ``first_name``,
``last_name``, ``company``, ``email``, ``phone``, ``contact_url``. A number shared by several
customers answers with the best-ranked one (see ``service.resolve_caller``) and says how many
matched in ``matches``.

``lookup`` also computes the routing hints for the number (``app.customers.routing``): the JSON
answer carries them as ``routing``; ``format=asterisk`` and ``format=connect`` render only
them, and answer an unknown or withheld caller too (with the default routing), since the PBX
must route that call all the same.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import repository as repo
from app.customers import routing, service
from app.customers.routing import RoutingRules
from app.errors import Unauthorized
from app.settings import Settings
from telephony.callerid import normalise
from telephony.routing import RoutingHints, as_json

BUSINESS_TYPES = frozenset({"industrial", "institutional", "government"})


def check_api_key(settings: Settings, presented: str | None) -> None:
    """Refuse (401) a missing or wrong key; with no key configured, only dev mode is open."""
    expected = settings.lookup_api_key
    if expected is None:
        if settings.dev:
            return
        raise Unauthorized("lookup is disabled: SCREENPOP_LOOKUP_API_KEY is not set")
    if not presented:
        raise Unauthorized("missing API key (X-API-Key header or key= parameter)")
    if not hmac.compare_digest(presented.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("wrong API key")


def _split_name(name: str, customer_type: str) -> tuple[str, str, str]:
    """(first name, last name, company): a business is a company, a person splits at the end."""
    if customer_type in BUSINESS_TYPES:
        return "", name, name
    first, _, last = name.rpartition(" ")
    return (first, last, "") if first else ("", name, "")


@dataclass(frozen=True, slots=True)
class Lookup:
    """A number's contact (None: nobody, ``missing`` says why) and its routing hints."""

    contact: dict[str, Any] | None
    hints: RoutingHints
    missing: str = ""


async def lookup(
    session: AsyncSession,
    number: str,
    settings: Settings,
    rules: RoutingRules,
    *,
    queue: str | None = None,
) -> Lookup:
    """The flat contact and the routing hints for a number (``queue``: the PBX's own
    choice, kept unless a routing rule names another)."""
    caller = normalise(number, settings.default_region)
    if caller.withheld:
        hints = routing.unmatched_hints(rules, match="withheld", default_queue=queue)
        return Lookup(None, hints, "withheld numbers are never looked up")
    match = await service.resolve_caller(session, caller, default_region=settings.default_region)
    row = await repo.contact_row(session, match.candidates[0]["id"]) if match.candidates else None
    if row is None:  # nobody, or deleted between the match and now
        hints = routing.unmatched_hints(rules, match="none", default_queue=queue)
        return Lookup(None, hints, f"no customer with number {number!r}")
    best = match.candidates[0]
    first, last, company = _split_name(row.name, row.customer_type)
    base = settings.public_url.rstrip("/")
    hints = await routing.hints_for_customer(
        session, best["id"], rules, match=match.kind, default_queue=queue
    )
    contact = {
        "customer_id": str(best["id"]),
        "external_ref": best["external_ref"],
        "name": row.name,
        "first_name": first,
        "last_name": last,
        "company": company,
        "email": row.email or "",
        "phone": caller.e164 or caller.raw,
        "contact_url": f"{base}/agent?customer={best['id']}",
        "matches": len(match.candidates),
        "routing": as_json(hints),
    }
    return Lookup(contact, hints)
