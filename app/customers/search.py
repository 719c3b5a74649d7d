"""Find customers by what a caller can tell: name, phone number (any format), e-mail,
account number or external reference.

On PostgreSQL, names and e-mails are found through trigram indexes (``pg_trgm``, see the
``agent_desk`` migration), so a part of a name is found in a few milliseconds among a
million customers; SQLite scans the table (fine for a small or demo installation).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer, CustomerPhone
from app.customers.numbers import national_format
from app.errors import Invalid
from telephony.callerid import normalise

MAX_RESULTS = 50
_PHONE_CHARS = re.compile(r"^[+\d\s().\-/]+$")
_LIKE_SPECIAL = re.compile(r"([\\%_])")
MIN_NAME_PART = 2


def _like(part: str) -> str:
    return "%" + _LIKE_SPECIAL.sub(r"\\\1", part.lower()) + "%"


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _looks_like_phone(q: str) -> bool:
    return bool(_PHONE_CHARS.match(q)) and len(_digits(q)) >= 7


def _columns() -> Select[int, str, str | None, str | None, str, str | None]:
    return select(
        Customer.id,
        Customer.name,
        Customer.external_ref,
        Customer.email,
        Customer.customer_type,
        Customer.country,
    )


async def _by_reference(session: AsyncSession, q: str, limit: int) -> list[dict[str, Any]]:
    """Exact external reference (as typed, or in capitals), or the customer number."""
    conditions: list[ColumnElement[bool]] = [Customer.external_ref.in_({q, q.upper()})]
    plain = q.lstrip("#")
    if plain.isdigit() and len(plain) <= 9:
        conditions.append(Customer.id == int(plain))
    rows = await session.execute(_columns().where(or_(*conditions)).limit(limit))
    return [{**r, "matched_by": "reference"} for r in rows.mappings()]


async def _by_phone(
    session: AsyncSession, q: str, default_region: str, limit: int
) -> list[dict[str, Any]]:
    """The number normalised as a caller's is, matched on E.164 or its last nine digits."""
    caller = normalise(q, default_region)
    digits = _digits(caller.e164 or q)
    conditions: list[ColumnElement[bool]] = []
    if caller.e164:
        conditions.append(CustomerPhone.e164 == caller.e164)
    if len(digits) >= 9:
        conditions.append(CustomerPhone.last_digits == digits[-9:])
    if not conditions:
        return []
    rows = await session.execute(
        _columns()
        .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
        .where(or_(*conditions))
        .distinct()
        .limit(limit)
    )
    return [{**r, "matched_by": "phone"} for r in rows.mappings()]


async def _by_text(session: AsyncSession, q: str, limit: int) -> list[dict[str, Any]]:
    """Every word of ``q`` in the name, or ``q`` in the e-mail; names that start with the
    query first, then by trigram similarity (PostgreSQL) or alphabetically (SQLite)."""
    name = func.lower(Customer.name)
    if "@" in q:
        where: ColumnElement[bool] = func.lower(Customer.email).like(_like(q), escape="\\")
        matched_by = "email"
    else:
        parts = [p for p in q.split() if len(p) >= MIN_NAME_PART]
        if not parts:
            return []
        where = and_(*(name.like(_like(p), escape="\\") for p in parts))
        matched_by = "name"
    starts = case((name.like(_like(q)[1:], escape="\\"), 0), else_=1)
    order: list[Any] = [starts]
    if session.get_bind().dialect.name == "postgresql":
        order.append(func.similarity(name, q.lower()).desc())
    order += [Customer.name, Customer.id]
    rows = await session.execute(_columns().where(where).order_by(*order).limit(limit))
    return [{**r, "matched_by": matched_by} for r in rows.mappings()]


async def _phones_of(session: AsyncSession, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = await session.execute(
        select(
            CustomerPhone.customer_id, CustomerPhone.e164, CustomerPhone.raw, CustomerPhone.label
        )
        .where(CustomerPhone.customer_id.in_(ids))
        .order_by(CustomerPhone.id)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    for cid, e164, raw, label in rows.all():
        out.setdefault(cid, []).append(
            {"e164": e164, "national": national_format(e164) or raw, "label": label}
        )
    return out


async def search_customers(
    session: AsyncSession, q: str, *, default_region: str = "GB", limit: int = 20
) -> list[dict[str, Any]]:
    """Customers matching ``q``, best first: exact references, then phone, then e-mail or
    name. Each with ``matched_by`` and up to three phones (E.164 and national format)."""
    q = q.strip()
    if len(q) < MIN_NAME_PART:
        raise Invalid("q: type at least 2 characters")
    limit = max(1, min(limit, MAX_RESULTS))
    found: dict[int, dict[str, Any]] = {}
    batches = [await _by_reference(session, q, limit)]
    if _looks_like_phone(q):
        batches.append(await _by_phone(session, q, default_region, limit))
    else:
        batches.append(await _by_text(session, q, limit))
    for batch in batches:
        for row in batch:
            found.setdefault(int(row["id"]), row)
    results = list(found.values())[:limit]
    phones = await _phones_of(session, [int(r["id"]) for r in results])
    return [{**r, "phones": phones.get(int(r["id"]), [])[:3]} for r in results]
