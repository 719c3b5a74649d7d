"""Find customers by what a caller can tell: name, phone number (any format), e-mail,
account number or external reference.

On PostgreSQL (see the ``agent_desk`` migration) a part of a name is found through a trigram
index (``pg_trgm``), an e-mail or a name's start through ``text_pattern_ops`` indexes, numbers
and references through their own indexes, so each query reads few rows among a million
customers; SQLite scans the customers table (fine for a small or demo installation).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer, CustomerEmail, CustomerPhone
from app.customers.numbers import national_format
from app.errors import Invalid
from telephony.callerid import normalise

MAX_RESULTS = 50
_PHONE_CHARS = re.compile(r"^[+\d\s().\-/]+$")
_LIKE_SPECIAL = re.compile(r"([\\%_])")
MIN_QUERY = 2
# pg_trgm indexes words of three characters or more.
TRIGRAM = 3
RANK_WINDOW = 200


def _escaped(text: str) -> str:
    return _LIKE_SPECIAL.sub(r"\\\1", text.lower())


def _like(part: str) -> str:
    return f"%{_escaped(part)}%"


def _prefix(text: str) -> str:
    return f"{_escaped(text)}%"


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


async def _by_email(session: AsyncSession, q: str, limit: int) -> list[dict[str, Any]]:
    """Customers with an address starting with ``q`` (a whole address, or its start:
    ``jane@``, ``jane.smi``): the first (``customers.email``) or any further one
    (``customer_emails``, stored lower-case)."""
    email = func.lower(Customer.email)
    starts = _prefix(q.lower())
    first = _columns().where(email.like(starts, escape="\\"))
    further = (
        _columns()
        .join(CustomerEmail, CustomerEmail.customer_id == Customer.id)
        .where(CustomerEmail.email.like(starts, escape="\\"))
    )
    found = union(first, further).subquery()
    rows = await session.execute(
        select(found).order_by(func.lower(found.c.email), found.c.id).limit(limit)
    )
    return [{**r, "matched_by": "email"} for r in rows.mappings()]


async def _by_name(session: AsyncSession, q: str, limit: int) -> list[dict[str, Any]]:
    """Names containing every word of ``q`` (at least one word of 3+ characters, which the
    trigram index can serve), names that start with ``q`` first, then by trigram similarity
    (PostgreSQL) or alphabetically (SQLite). Ranking looks at the first ``RANK_WINDOW``
    customers found, so a common fragment costs no more than a rare one. A query of short
    words only finds names that start with it."""
    name = func.lower(Customer.name)
    words = q.lower().split()
    if any(len(w) >= TRIGRAM for w in words):
        where = and_(*(name.like(_like(w), escape="\\") for w in words))
    else:
        where = name.like(_prefix(q), escape="\\")
    found = _columns().where(where).limit(RANK_WINDOW).subquery()
    found_name = func.lower(found.c.name)
    order: list[Any] = [case((found_name.like(_prefix(q), escape="\\"), 0), else_=1)]
    if session.get_bind().dialect.name == "postgresql":
        order.append(func.similarity(found_name, q.lower()).desc())
    order += [found.c.name, found.c.id]
    rows = await session.execute(select(found).order_by(*order).limit(limit))
    return [{**r, "matched_by": "name"} for r in rows.mappings()]


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
    if len(q) < MIN_QUERY:
        raise Invalid("q: type at least 2 characters")
    limit = max(1, min(limit, MAX_RESULTS))
    found: dict[int, dict[str, Any]] = {}
    batches = [await _by_reference(session, q, limit)]
    if _looks_like_phone(q):
        batches.append(await _by_phone(session, q, default_region, limit))
    else:
        batches.append(
            await (_by_email(session, q, limit) if "@" in q else _by_name(session, q, limit))
        )
    for batch in batches:
        for row in batch:
            found.setdefault(int(row["id"]), row)
    results = list(found.values())[:limit]
    phones = await _phones_of(session, [int(r["id"]) for r in results])
    return [{**r, "phones": phones.get(int(r["id"]), [])[:3]} for r in results]
