"""``screenpop purge --older-than``: delete what is past its retention, in small batches.

What can be purged (``--only`` picks some):

- ``journal``: finished calls (ended or abandoned) whose last event is older than the cutoff,
  with their journaled events and pop receipts. Live calls are never touched, however old.
- ``audit``: profile views (who saw which customer, when) older than the cutoff.
- ``deliveries``: pop receipts (delivered / seen) pushed before the cutoff.

Each batch is one short transaction, so a purge can run beside a serving instance.
Customers, orders and touch points are records, not logs: they are never purged here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.calls.models import Call, CallEventRecord, PopDelivery
from app.customers.models import ProfileView

BATCH = 2000
FINISHED = ("ended", "abandoned")
_AGE = re.compile(r"^(\d+)([dhw])$")


class BadAge(ValueError):
    """``--older-than`` is neither ``<N>d``, ``<N>h``, ``<N>w`` nor an ISO date."""


def cutoff(older_than: str, now: datetime | None = None) -> datetime:
    """``90d`` / ``12h`` / ``4w`` before ``now``, or an ISO date or datetime (UTC if naive)."""
    now = now or datetime.now(UTC)
    match = _AGE.match(older_than.strip())
    if match:
        n, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "w": "weeks"}[unit]: n})
    try:
        at = datetime.fromisoformat(older_than.strip())
    except ValueError:
        raise BadAge(
            f"--older-than {older_than!r}: give an age like 90d, 12h or 4w, or a date"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _journal(conn: AsyncConnection, before: datetime) -> int:
    last = func.coalesce(Call.last_event_at, Call.ended_at, Call.first_seen_at)
    ids = list(
        await conn.scalars(
            select(Call.id).where(Call.state.in_(FINISHED), last < before).limit(BATCH)
        )
    )
    if ids:
        await conn.execute(delete(CallEventRecord).where(CallEventRecord.call_id.in_(ids)))
        await conn.execute(delete(PopDelivery).where(PopDelivery.call_id.in_(ids)))
        await conn.execute(delete(Call).where(Call.id.in_(ids)))
    return len(ids)


async def _audit(conn: AsyncConnection, before: datetime) -> int:
    ids = list(
        await conn.scalars(
            select(ProfileView.id).where(ProfileView.viewed_at < before).limit(BATCH)
        )
    )
    if ids:
        await conn.execute(delete(ProfileView).where(ProfileView.id.in_(ids)))
    return len(ids)


async def _deliveries(conn: AsyncConnection, before: datetime) -> int:
    calls = list(
        await conn.scalars(
            select(PopDelivery.call_id)
            .where(PopDelivery.pushed_at < before)
            .group_by(PopDelivery.call_id)
            .limit(BATCH)
        )
    )
    if not calls:
        return 0
    result = await conn.execute(
        delete(PopDelivery).where(PopDelivery.call_id.in_(calls), PopDelivery.pushed_at < before)
    )
    return int(result.rowcount)


Purger = Callable[[AsyncConnection, datetime], Awaitable[int]]
# One line per kind of data; the count is of calls (journal), views (audit) or receipts.
TARGETS: dict[str, Purger] = {"journal": _journal, "audit": _audit, "deliveries": _deliveries}


async def purge(
    engine: AsyncEngine, before: datetime, only: list[str] | None = None
) -> dict[str, int]:
    """Delete everything of the chosen kinds older than ``before``; returns counts by kind."""
    unknown = set(only or ()) - set(TARGETS)
    if unknown:
        raise ValueError(f"cannot purge {sorted(unknown)}; choose from {sorted(TARGETS)}")
    counts: dict[str, int] = {}
    for name, target in TARGETS.items():
        if only and name not in only:
            continue
        counts[name] = 0
        while True:
            async with engine.begin() as conn:
                n = await target(conn, before)
            counts[name] += n
            if n < BATCH:
                break
    return counts


async def count(engine: AsyncEngine, before: datetime) -> dict[str, int]:
    """What ``purge`` would delete, without deleting (``--dry-run``)."""
    last = func.coalesce(Call.last_event_at, Call.ended_at, Call.first_seen_at)
    async with engine.connect() as conn:
        journal = await conn.scalar(
            select(func.count()).where(Call.state.in_(FINISHED), last < before)
        )
        audit = await conn.scalar(select(func.count()).where(ProfileView.viewed_at < before))
        deliveries = await conn.scalar(select(func.count()).where(PopDelivery.pushed_at < before))
    return {"journal": journal or 0, "audit": audit or 0, "deliveries": deliveries or 0}
