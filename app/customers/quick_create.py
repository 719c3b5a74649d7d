"""Quick-create: a customer for an unknown caller, typed by the agent during the call."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import repository as repo
from app.customers import service
from app.customers.numbers import number_info
from app.customers.schemas import CustomerCreate
from app.customers.service import LAST_DIGITS, digits_of
from app.db import utcnow
from app.errors import Conflict, Invalid
from telephony.callerid import normalise
from telephony.events import CallerId

# New accounts get the importer's floor credit limit (see app/customers/importer.py).
NEW_ACCOUNT_CREDIT_LIMIT = Decimal("500")


async def create_customer(
    session: AsyncSession, data: CustomerCreate, *, default_region: str = "GB"
) -> int:
    """Quick-create a customer (with an account, and a phone when given); returns the id.

    The phone is normalised to E.164; one that is withheld or not a valid number is refused
    (``Invalid``). A number that already reaches customers (as the next call from it would be
    matched) is ``Conflict`` naming them (``customers``: id, name, external_ref), unless
    ``shared_phone`` says it is shared on purpose. The country defaults to the number's.
    """
    phone_row = None
    country = data.country
    if data.phone is not None:
        caller = normalise(data.phone, default_region)
        if caller.withheld or caller.e164 is None:
            raise Invalid(f"phone: {data.phone!r} is not a valid phone number")
        if not data.shared_phone:
            await _check_phone_free(session, caller, default_region)
        phone_row = {
            "raw": data.phone[:64],
            "e164": caller.e164,
            "last_digits": digits_of(caller.e164)[-LAST_DIGITS:],
            "label": "main",
        }
        if country is None:
            country = number_info(caller.e164)["country"]
    return await repo.insert_customer(
        session,
        customer={
            "name": data.name,
            "customer_type": data.customer_type,
            "language": data.language,
            "marketing_consent": data.marketing_consent,
            "country": country,
            "email": data.email,
            "created_at": utcnow(),
        },
        phone=phone_row,
        account={
            "balance": Decimal("0"),
            "credit_limit": NEW_ACCOUNT_CREDIT_LIMIT,
            "currency": "GBP",
            "status": "active",
        },
    )


async def _check_phone_free(session: AsyncSession, caller: CallerId, default_region: str) -> None:
    """``Conflict`` (with the customers) when the number already reaches customers."""
    match = await service.resolve_caller(session, caller, default_region=default_region)
    found = match.candidates
    if not found:
        return
    names = ", ".join(f"{c['name']} ({c['id']})" for c in found[:3])
    raise Conflict(
        f"phone: {caller.e164} is already the number of {names}; link the call to that"
        " customer, or send shared_phone=true if the number is shared",
        extra={
            "customers": [
                {"id": c["id"], "name": c["name"], "external_ref": c["external_ref"]} for c in found
            ]
        },
    )
