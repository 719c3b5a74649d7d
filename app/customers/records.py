"""Storing records from a system of record (sync) or a mapped file (import), idempotently.

Every record names its source (``erp``, ``crm``, an import's ``--source``) and its reference
there; ``customer_refs`` ties (source, ref) to one customer, so storing the same record again
changes nothing, and a changed record updates only what changed. Only columns that are given
and not null are written (a query that does not select ``language`` leaves it alone).

Customers (``ref``, ``name`` and optionally ``phones``, ``email``, ``emails``,
``customer_type``, ``language``, ``account_manager``, ``credit_limit``, ``marketing_ok``,
``country``, ``deleted``, ``merged_into``; any other column is a free attribute, except
``updated_at``): ``phones`` replaces the numbers this source gave before. ``deleted`` true
removes the source's reference, and the customer with it when no other source refers to
them. ``merged_into`` (another ref in the same source) moves this customer's numbers,
orders, touch points, references (and loyalty membership, when that customer has none)
to that customer, then removes this one.

Orders (``ref``, ``customer_ref``, ``ordered_at``, ``total`` and optionally ``currency``,
``status``, ``lines`` as a JSON array of ``{sku, description, quantity, unit_price}``,
``deleted``). Balances (``customer_ref``, ``amount`` and optionally ``currency``,
``overdue``, ``as_of``): the account's balance as the billing system gives it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.customers.models import (
    Account,
    Customer,
    CustomerEmail,
    CustomerPhone,
    CustomerRef,
    Interaction,
    LoyaltyMembership,
    MatchChoice,
    Order,
)
from app.customers.values import (
    text_key,
    text_or_none,
    to_bool,
    to_decimal,
    to_list,
)
from app.db import utcnow
from telephony.callerid import normalise

CUSTOMER_COLUMNS = {
    "ref", "name", "phones", "email", "emails", "customer_type", "language", "account_manager",
    "credit_limit", "marketing_ok", "country", "deleted", "merged_into", "updated_at",
}  # fmt: skip
ORDER_COLUMNS = ("ref", "customer_ref", "ordered_at", "total", "currency", "status", "lines")
BALANCE_COLUMNS = ("customer_ref", "amount", "currency", "overdue", "as_of")
LAST_DIGITS = 9
# customer_refs.ref and customers.external_ref; a phone as typed (customer_phones.raw).
REF_MAX = 128
EXTERNAL_REF_MAX = 64
PHONE_RAW_MAX = 64
EMAIL_MAX = 200


@dataclass
class RecordReport:
    """What storing a run of records did; ``bad`` holds (where, reason) per refused record."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    merged: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "merged": self.merged,
            "bad": len(self.bad),
        }


def where(row: Mapping[str, Any]) -> str:
    line = row.get("_line")
    return (
        f"line {line}" if line is not None else f"ref {row.get('ref', row.get('customer_ref'))!r}"
    )


async def refs_of(db: AsyncConnection | AsyncSession, customer_id: int | None) -> dict[str, str]:
    """The customer's reference in each system of record (source -> ref)."""
    if customer_id is None:
        return {}
    query = select(CustomerRef.source, CustomerRef.ref).where(
        CustomerRef.customer_id == customer_id
    )
    return {source: ref for source, ref in (await db.execute(query)).all()}


async def _customer_id(conn: AsyncConnection, source: str, ref: str) -> int | None:
    query = select(CustomerRef.customer_id).where(
        CustomerRef.source == source, CustomerRef.ref == ref
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def customer_ids(
    conn: AsyncConnection, source: str, rows: Sequence[Mapping[str, Any]], key: str
) -> dict[str, int]:
    """Customer ids of the references in a batch's ``key`` column, in one query."""
    wanted = sorted({ref for r in rows if (ref := text_key(r.get(key), REF_MAX))})
    if not wanted:
        return {}
    query = select(CustomerRef.ref, CustomerRef.customer_id).where(
        CustomerRef.source == source, CustomerRef.ref.in_(wanted)
    )
    return {ref: cid for ref, cid in (await conn.execute(query)).all()}


def _phone_rows(raws: list[str], region: str) -> list[dict[str, Any]]:
    """Numbers as typed and as E.164; one row per number (the first way it was typed)."""
    rows, seen = [], set()
    for raw in dict.fromkeys(raws):
        e164 = normalise(raw, region).e164
        if e164 is not None and e164 in seen:
            continue
        seen.add(e164)
        if len(raw) > PHONE_RAW_MAX:
            raise ValueError(f"phones: {raw[:20]!r}... is longer than {PHONE_RAW_MAX} characters")
        digits = "".join(ch for ch in (e164 or raw) if ch.isdigit())
        rows.append({"raw": raw, "e164": e164, "last_digits": digits[-LAST_DIGITS:] or None})
    return rows


def _customer_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """The customers-table columns this record gives (non-null only)."""
    given_emails = to_list(row.get("email"), "email") + to_list(row.get("emails"), "emails")
    emails = [a for e in given_emails if (a := text_or_none(e, EMAIL_MAX, "email")) is not None]
    given: dict[str, Any] = {
        "name": text_or_none(row.get("name"), 200, "name"),
        "customer_type": (text_or_none(row.get("customer_type"), 20, "customer_type") or "").lower()
        or None,
        "language": text_or_none(row.get("language"), 8, "language"),
        "account_manager": text_or_none(row.get("account_manager"), 64, "account_manager"),
        "marketing_consent": to_bool(row.get("marketing_ok"), "marketing_ok"),
        "country": text_or_none(row.get("country"), 64, "country"),
    }
    if emails:
        given["email"] = emails[0]
        given["emails"] = emails[1:]
    extra = {k: v for k, v in row.items() if k not in CUSTOMER_COLUMNS and not k.startswith("_")}
    if extra:
        given["attributes"] = extra
    return {k: v for k, v in given.items() if v is not None}


async def _taken_external_refs(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]
) -> set[str]:
    """The batch's refs that some customer already has as ``external_ref`` (one query)."""
    refs = sorted({ref for r in rows if (ref := text_key(r.get("ref"), EXTERNAL_REF_MAX))})
    if not refs:
        return set()
    query = select(Customer.external_ref).where(Customer.external_ref.in_(refs))
    return {ref for ref in (await conn.execute(query)).scalars() if ref is not None}


CUSTOMER_DEFAULTS: dict[str, Any] = {
    "customer_type": "consumer", "language": "en", "marketing_consent": False,
    "account_manager": None, "country": None, "email": None, "emails": [], "attributes": {},
}  # fmt: skip
# Customers new in a batch, inserted together: ref -> (columns, credit limit, numbers).
NewCustomers = dict[str, tuple[dict[str, Any], Decimal | None, list[dict[str, Any]]]]


async def _insert_new(
    conn: AsyncConnection, source: str, new: NewCustomers, known: dict[str, int], taken: set[str]
) -> None:
    """The batch's new customers with their references, accounts and numbers, one statement
    per table. ``external_ref`` is the ref unless another customer has it (``taken``)."""
    if not new:
        return
    now = utcnow()
    rows = []
    for ref, (values, _, _) in new.items():
        # A ref too long for external_ref is kept whole in customer_refs only.
        external_ref = None if ref in taken or len(ref) > EXTERNAL_REF_MAX else ref
        if external_ref is not None:
            taken.add(external_ref)
        rows.append({**CUSTOMER_DEFAULTS, **values, "external_ref": external_ref,
                     "created_at": now, "updated_at": now})  # fmt: skip
    stmt = insert(Customer).returning(Customer.id, sort_by_parameter_order=True)
    ids = (await conn.execute(stmt, rows)).scalars().all()
    refs, accounts, phones = [], [], []
    for (ref, (_, limit, numbers)), customer_id in zip(new.items(), ids, strict=True):
        known[ref] = customer_id
        refs.append({"source": source, "ref": ref, "customer_id": customer_id, "updated_at": now})
        accounts.append({"customer_id": customer_id, "balance": Decimal("0"),
                         "credit_limit": Decimal("0") if limit is None else limit,
                         "currency": "GBP", "status": "active"})  # fmt: skip
        phones += [{**p, "customer_id": customer_id, "label": source} for p in numbers]
    await conn.execute(insert(CustomerRef), refs)
    await conn.execute(insert(Account), accounts)
    if phones:
        await conn.execute(insert(CustomerPhone), phones)
    further = [
        {"customer_id": customer_id, "email": email}
        for (_, (values, _, _)), customer_id in zip(new.items(), ids, strict=True)
        for email in _lookup_emails(values.get("emails") or ())
    ]
    if further:
        await conn.execute(insert(CustomerEmail), further)
    new.clear()


async def _update_customer(conn: AsyncConnection, customer_id: int, values: dict[str, Any]) -> bool:
    columns = [getattr(Customer, k) for k in values]
    current = (await conn.execute(select(*columns).where(Customer.id == customer_id))).one()
    changes = {}
    for (key, value), old in zip(values.items(), current, strict=True):
        if key == "attributes":
            value = {**(old or {}), **value}
        if value != old:
            changes[key] = value
    if changes:
        changes["updated_at"] = utcnow()
        await conn.execute(update(Customer).where(Customer.id == customer_id).values(**changes))
    if "emails" in changes:
        await conn.execute(delete(CustomerEmail).where(CustomerEmail.customer_id == customer_id))
        rows = [{"customer_id": customer_id, "email": e} for e in _lookup_emails(changes["emails"])]
        if rows:
            await conn.execute(insert(CustomerEmail), rows)
    return bool(changes)


def _lookup_emails(emails: Sequence[str]) -> list[str]:
    """A customer's further addresses as ``customer_emails`` keys: lower-case, once each."""
    return list(dict.fromkeys(e.lower() for e in emails))


async def _set_phones(
    conn: AsyncConnection, customer_id: int, label: str, phones: list[dict[str, Any]]
) -> bool:
    """The numbers this source gives for a stored customer replace the ones it gave before."""
    owned = (CustomerPhone.customer_id == customer_id, CustomerPhone.label == label)
    current = (await conn.execute(select(CustomerPhone.raw).where(*owned))).scalars().all()
    if sorted(current) == sorted(p["raw"] for p in phones):
        return False
    await conn.execute(delete(CustomerPhone).where(*owned))
    others = select(CustomerPhone.e164).where(
        CustomerPhone.customer_id == customer_id, CustomerPhone.e164.is_not(None)
    )
    taken = {e for e in (await conn.execute(others)).scalars() if e is not None}
    fresh = [p for p in phones if p["e164"] is None or p["e164"] not in taken]
    if fresh:
        await conn.execute(
            insert(CustomerPhone),
            [{**p, "customer_id": customer_id, "label": label} for p in fresh],
        )
    return True


async def _set_credit_limit(conn: AsyncConnection, customer_id: int, limit: Decimal) -> bool:
    result = await conn.execute(
        update(Account)
        .where(Account.customer_id == customer_id, Account.credit_limit != limit)
        .values(credit_limit=limit)
    )
    return bool(result.rowcount)


async def _forget(conn: AsyncConnection, source: str, ref: str, report: RecordReport) -> None:
    customer_id = await _customer_id(conn, source, ref)
    if customer_id is None:
        return
    await conn.execute(
        delete(CustomerRef).where(CustomerRef.source == source, CustomerRef.ref == ref)
    )
    others = select(func.count()).where(CustomerRef.customer_id == customer_id)
    if not (await conn.execute(others)).scalar_one():
        await conn.execute(delete(Customer).where(Customer.id == customer_id))
    report.deleted += 1


async def _merge(
    conn: AsyncConnection, source: str, ref: str, into: str, report: RecordReport
) -> None:
    loser = await _customer_id(conn, source, ref)
    winner = await _customer_id(conn, source, into)
    if winner is None:
        raise ValueError(f"merged_into {into!r} is not a known {source} customer")
    if loser is None:
        # Never seen here: the ref becomes another name for the survivor (its orders follow).
        await conn.execute(
            insert(CustomerRef).values(
                source=source, ref=ref, customer_id=winner, updated_at=utcnow()
            )
        )
        report.merged += 1
        return
    if loser == winner:
        return
    kept = select(CustomerPhone.e164).where(CustomerPhone.customer_id == winner)
    await conn.execute(
        update(CustomerPhone)
        .where(CustomerPhone.customer_id == loser, CustomerPhone.e164.not_in(kept))
        .values(customer_id=winner)
    )
    for table in (Order, Interaction, CustomerRef):
        await conn.execute(
            update(table).where(table.customer_id == loser).values(customer_id=winner)
        )
    # One membership per customer: the survivor's own stays, else the loser's moves over.
    winner_has = select(LoyaltyMembership.customer_id).where(
        LoyaltyMembership.customer_id == winner
    )
    await conn.execute(
        update(LoyaltyMembership)
        .where(LoyaltyMembership.customer_id == loser, ~winner_has.exists())
        .values(customer_id=winner)
    )
    await conn.execute(delete(MatchChoice).where(MatchChoice.customer_id == loser))
    await conn.execute(delete(Customer).where(Customer.id == loser))
    report.merged += 1


async def store_customers(
    conn: AsyncConnection,
    source: str,
    rows: Sequence[Mapping[str, Any]],
    report: RecordReport,
    *,
    region: str = "GB",
) -> None:
    """Store customer records (see the module docstring); bad ones land in ``report.bad``."""
    known = await customer_ids(conn, source, rows, "ref")
    taken = await _taken_external_refs(conn, rows)
    new: NewCustomers = {}
    for row in rows:
        try:
            ref = text_or_none(row.get("ref"), REF_MAX, "ref")
            if ref is None:
                raise ValueError("ref is empty")
            deleted = to_bool(row.get("deleted"), "deleted")
            into = text_or_none(row.get("merged_into"), REF_MAX, "merged_into")
            if ref in new or deleted or into:
                # Stored first: the same customer twice in a batch, or one a merge names.
                await _insert_new(conn, source, new, known, taken)
            if deleted:
                await _forget(conn, source, ref, report)
                known.pop(ref, None)
                continue
            if into:
                await _merge(conn, source, ref, into, report)
                known.pop(ref, None)
                continue
            values = _customer_values(row)
            limit = to_decimal(row.get("credit_limit"), "credit_limit")
            phones = None
            if "phones" in row:
                phones = _phone_rows(to_list(row.get("phones"), "phones"), region)
            customer_id = known.get(ref)
            added = customer_id is None
            if customer_id is None:
                if "name" not in values:
                    raise ValueError("name is empty")
                new[ref] = (values, limit, phones or [])
                changed = True
            else:
                changed = await _update_customer(conn, customer_id, values)
                if phones is not None:
                    changed = await _set_phones(conn, customer_id, source, phones) or changed
                if limit is not None:
                    changed = await _set_credit_limit(conn, customer_id, limit) or changed
        except ValueError as exc:
            report.bad.append((where(row), str(exc)))
            continue
        if added:
            report.added += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
    await _insert_new(conn, source, new, known, taken)


def customer_of(known: Mapping[str, int], source: str, row: Mapping[str, Any]) -> int:
    ref = text_or_none(row.get("customer_ref"), REF_MAX, "customer_ref")
    if ref is None:
        raise ValueError("customer_ref is empty")
    customer_id = known.get(ref)
    if customer_id is None:
        raise ValueError(f"customer_ref {ref!r} is not a known {source} customer")
    return customer_id
