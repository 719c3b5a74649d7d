"""Loyalty: a customer's programme membership, stored from a system of record, and the
``loyalty`` object of the profile and the pop.

Records (``customer_ref``, ``programme`` and optionally ``tier``, ``points``, ``since``,
``as_of``, ``deleted``), imported (``entity = "loyalty"``) or synced (``loyalty`` query):
one membership per customer, the latest record wins; ``deleted`` true removes it.

The profile's ``loyalty`` is, in order: the stored membership; else the frequency programme
``screenpop train`` computed from purchases (``app.insights.loyalty``, kept in the insight's
``details``); else None. A live ``loyalty`` part from a source replaces both
(``app.sources.pop_parts``). Shape::

    {"programme", "tier", "points", "since" (ISO date), "computed": bool,
     "source": {"name", "as_of"} | None, "basis": {...} (computed only)}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.models import LoyaltyMembership
from app.customers.records import RecordReport, customer_ids, customer_of, where
from app.customers.values import text_or_none, to_bool, to_decimal, to_utc
from app.db import utcnow

LOYALTY_COLUMNS = ("customer_ref", "programme", "tier", "points", "since", "as_of", "deleted")
# The programme name screenpop gives the membership it computes from purchases.
COMPUTED_PROGRAMME = "frequency"


def _points(value: Any) -> int | None:
    number = to_decimal(value, "points")
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueError(f"points {value!r} is not a whole number")
    return int(number)


def membership_values(row: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The ``loyalty_memberships`` columns a record gives (``ValueError`` names the column)."""
    programme = text_or_none(row.get("programme"), 64, "programme")
    if programme is None:
        raise ValueError("programme is empty")
    return {
        "programme": programme,
        "tier": text_or_none(row.get("tier"), 32, "tier"),
        "points": _points(row.get("points")),
        "since": to_utc(row.get("since"), "since"),
        "source": source,
        "as_of": to_utc(row.get("as_of"), "as_of"),
    }


async def store_loyalty(
    conn: AsyncConnection, source: str, rows: Sequence[Mapping[str, Any]], report: RecordReport
) -> None:
    """Store loyalty records (see the module docstring); bad ones land in ``report.bad``."""
    known = await customer_ids(conn, source, rows, "customer_ref")
    for row in rows:
        try:
            customer_id = customer_of(known, source, row)
            deleted = to_bool(row.get("deleted"), "deleted")
            values = None if deleted else membership_values(row, source)
        except ValueError as exc:
            report.bad.append((where(row), str(exc)))
            continue
        mine = LoyaltyMembership.customer_id == customer_id
        if values is None:
            gone = await conn.execute(delete(LoyaltyMembership).where(mine))
            report.deleted += int(bool(gone.rowcount))
            continue
        cols = [getattr(LoyaltyMembership, k) for k in values]
        current = (await conn.execute(select(*cols).where(mine))).first()
        if current is None:
            await conn.execute(
                insert(LoyaltyMembership).values(
                    customer_id=customer_id, updated_at=utcnow(), **values
                )
            )
            report.added += 1
        elif any(v != old for v, old in zip(values.values(), current, strict=True)):
            await conn.execute(
                update(LoyaltyMembership).where(mine).values(updated_at=utcnow(), **values)
            )
            report.updated += 1
        else:
            report.unchanged += 1


def _date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    try:
        parsed = to_utc(value, "since")
    except ValueError:
        return str(value)  # a source's own wording: shown as given
    return parsed.date().isoformat() if parsed is not None else None


def membership(
    programme: str,
    tier: str | None,
    points: Any,
    since: Any,
    source: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``loyalty`` object for a membership a system of record gives."""
    try:
        whole = _points(points)
    except ValueError:
        whole = None
    return {
        "programme": programme,
        "tier": tier,
        "points": whole,
        "since": _date(since),
        "computed": False,
        "source": source,
    }


def profile_loyalty(row: Any) -> dict[str, Any] | None:
    """``loyalty`` from a profile identity row: the stored membership, else the computed
    frequency programme in the insight's details, else None."""
    if row.loyalty_programme is not None:
        as_of = row.loyalty_as_of or row.loyalty_updated_at
        source = {"name": row.loyalty_source, "as_of": as_of.isoformat() if as_of else None}
        return membership(
            row.loyalty_programme, row.loyalty_tier, row.loyalty_points, row.loyalty_since, source
        )
    computed = (row.details or {}).get("loyalty") if row.insight_customer_id else None
    if not isinstance(computed, dict) or not computed.get("tier"):
        return None
    return {
        "programme": COMPUTED_PROGRAMME,
        "tier": computed["tier"],
        "points": computed.get("points"),
        "since": computed.get("since"),
        "computed": True,
        "source": None,
        "basis": {
            "orders_12m": computed.get("orders_12m"),
            "spend_12m": computed.get("spend_12m"),
            "window_end": computed.get("window_end"),
        },
    }
