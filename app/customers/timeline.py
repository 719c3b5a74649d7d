"""A customer's history in one list: calls (with their wrap-up), other touch points and
orders, newest first, paged by a cursor.

Each page asks each source for at most ``limit`` rows older than the cursor through its
``(customer_id, time)`` index and merges them, so a page costs three index range scans
however long the history (and one lookup of the page's calls' wrap-ups by call id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call
from app.customers.models import Customer, Interaction, Order, OrderLine
from app.customers.numbers import national_format
from app.errors import Invalid, NotFound

MAX_PAGE = 100
# Order of kinds among items of the same instant (newest first reads call, touch, order).
_RANK = {"order": 0, "touch": 1, "call": 2}
Key = tuple[datetime, int, str]


def parse_cursor(cursor: str | None) -> Key | None:
    """``"<ISO time>~<kind>~<id>"`` (the ``next`` of the previous page) -> a sort key."""
    if not cursor:
        return None
    try:
        when, kind, ident = cursor.split("~", 2)
        at = datetime.fromisoformat(when)
        if at.tzinfo is None or kind not in _RANK:
            raise ValueError(cursor)
    except ValueError as exc:
        raise Invalid(f"before: {cursor!r} is not a cursor from a previous page") from exc
    return (at, _RANK[kind], ident)


def _key(item: dict[str, Any]) -> Key:
    return (item["_at"], _RANK[item["kind"]], str(item["id"]))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _wrapup(row: Any) -> dict[str, Any]:
    return {
        "agent": row.agent,
        "disposition": row.disposition,
        "notes": row.notes,
        "satisfaction": row.satisfaction,
        "satisfaction_kind": row.satisfaction_kind,
    }


async def _calls(session: AsyncSession, cid: int, until: datetime | None, n: int) -> list[Any]:
    query = select(
        Call.id,
        Call.state,
        Call.queue,
        Call.agent,
        Call.caller_e164,
        Call.caller_withheld,
        Call.first_seen_at,
        Call.answered_at,
        Call.ended_at,
    ).where(Call.customer_id == cid)
    if until is not None:
        query = query.where(Call.first_seen_at <= until)
    rows = (await session.execute(query.order_by(Call.first_seen_at.desc()).limit(n))).all()
    wrapups = await _wrapups(session, [r.id for r in rows])
    return [
        {
            "kind": "call",
            "id": r.id,
            "_at": r.first_seen_at,
            "state": r.state,
            "queue": r.queue,
            "agent": r.agent,
            "caller": {
                "e164": r.caller_e164,
                "national": national_format(r.caller_e164),
                "withheld": r.caller_withheld,
            },
            "answered_at": _iso(r.answered_at),
            "ended_at": _iso(r.ended_at),
            # The newest leg's wrap-up, and every leg's (a transferred call has several).
            "wrapup": wrapups[r.id][-1] if wrapups.get(r.id) else None,
            "wrapups": wrapups.get(r.id, []),
        }
        for r in rows
    ]


async def _wrapups(session: AsyncSession, call_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The wrap-ups of these calls, one per agent leg, oldest first."""
    if not call_ids:
        return {}
    rows = await session.execute(
        select(
            Interaction.call_id,
            Interaction.agent,
            Interaction.disposition,
            Interaction.notes,
            Interaction.satisfaction,
            Interaction.satisfaction_kind,
        )
        .where(Interaction.call_id.in_(call_ids))
        .order_by(Interaction.created_at, Interaction.id)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows.all():
        out.setdefault(row.call_id, []).append(_wrapup(row))
    return out


async def _touches(session: AsyncSession, cid: int, until: datetime | None, n: int) -> list[Any]:
    """Touch points that are not a listed call's wrap-up (e-mails, visits, older calls)."""
    has_call = exists().where(Call.id == Interaction.call_id)
    query = select(Interaction).where(
        Interaction.customer_id == cid, or_(Interaction.call_id.is_(None), ~has_call)
    )
    if until is not None:
        query = query.where(Interaction.created_at <= until)
    rows = await session.execute(query.order_by(Interaction.created_at.desc()).limit(n))
    return [
        {
            "kind": "touch",
            "id": t.id,
            "_at": t.created_at,
            "channel": t.channel,
            "agent": t.agent,
            "disposition": t.disposition,
            "notes": t.notes,
            "satisfaction": t.satisfaction,
            "satisfaction_kind": t.satisfaction_kind,
            "offer_outcomes": list(t.offer_outcomes or []),
        }
        for t in rows.scalars()
    ]


async def _orders(session: AsyncSession, cid: int, until: datetime | None, n: int) -> list[Any]:
    lines = select(func.count(OrderLine.id)).where(OrderLine.order_id == Order.id).scalar_subquery()
    query = select(Order, lines.label("item_count")).where(Order.customer_id == cid)
    if until is not None:
        query = query.where(Order.ordered_at <= until)
    rows = await session.execute(query.order_by(Order.ordered_at.desc()).limit(n))
    return [
        {
            "kind": "order",
            "id": o.id,
            "_at": o.ordered_at,
            "invoice_no": o.invoice_no,
            "total": str(o.total),
            "is_return": o.is_return,
            "item_count": int(count or 0),
        }
        for o, count in rows.all()
    ]


async def customer_timeline(
    session: AsyncSession, customer_id: int, *, before: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """``{"customer_id", "items": [...], "next"}``: items newest first (``kind`` call, touch or
    order, each with ``at``); ``next`` is the cursor for the following page, or None."""
    if limit < 1 or limit > MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}")
    if await session.get(Customer, customer_id) is None:
        raise NotFound(f"customer {customer_id} not found")
    cursor = parse_cursor(before)
    until = cursor[0] if cursor else None
    # Items of the cursor's own instant come back too; a little slack keeps the page full.
    n = limit + 10
    items = [
        *await _calls(session, customer_id, until, n),
        *await _touches(session, customer_id, until, n),
        *await _orders(session, customer_id, until, n),
    ]
    if cursor is not None:
        items = [i for i in items if _key(i) < cursor]
    items.sort(key=_key, reverse=True)
    page, more = items[:limit], len(items) > limit
    last = page[-1] if page else None
    next_cursor = (
        f"{last['_at'].isoformat()}~{last['kind']}~{last['id']}" if more and last else None
    )
    return {
        "customer_id": customer_id,
        "items": [{"at": i.pop("_at").isoformat(), **i} for i in page],
        "next": next_cursor,
    }
