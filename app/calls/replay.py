"""Rebuild call state from the journal, through the live path's own planner.

The journal holds every accepted event as it arrived. Folding a call's events through
``Planner.plan`` in arrival order, from an empty call, gives what the live path computes:
state, caller, queue, the match (re-resolved when an IVR account number arrives), the pop and
its transfer section. This is how a call whose processing failed after its event was journaled
(``applied = false``) is repaired at start-up, and how a damaged or deleted row is rebuilt.
Nothing is pushed to agents (their screens replay on connect).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import repository as repo
from app.calls.directory import Directory
from app.calls.planning import CallRow, Planner
from app.settings import get_settings
from telephony.events import REFUSED, CallEvent, malformed

log = logging.getLogger(__name__)

CALL_COLUMNS = tuple(c.name for c in repo.CALLS.c)
# Kept from the row as it stands when its match is a single customer: the pop agents may
# have seen (and a choice an agent made) is not replaced by a recomputed one.
KEPT_WHEN_MATCHED = ("match", "customer_id", "pop", "pop_version")


def event_of(record: Any) -> CallEvent | None:
    """The journaled event, or None (logged) when it does not fit today's limits: a row
    journaled by an older version that let it in is skipped rather than stopping the replay."""
    try:
        return CallEvent.model_validate({**record.event, "raw": record.raw})
    except REFUSED as exc:
        detail = malformed(exc).detail
        log.warning("journal event %s of %s skipped: %s", record.event_id, record.call_id, detail)
        return None


def default_planner() -> Planner:
    return Planner(get_settings(), Directory())


async def replay_journal(
    session_factory: async_sessionmaker[AsyncSession],
    planner: Planner | None = None,
    call_id: str | None = None,
) -> int:
    """Rebuild one call (or every journaled call) from its events; returns how many."""
    planner = planner or default_planner()
    async with session_factory() as session:
        call_ids = [call_id] if call_id else await repo.journal_call_ids(session)
    rebuilt = 0
    for cid in call_ids:
        async with session_factory() as session:
            if await _replay_one(session, cid, planner):
                rebuilt += 1
            await session.commit()
    return rebuilt


async def replay_unapplied(
    session_factory: async_sessionmaker[AsyncSession], planner: Planner | None = None
) -> int:
    """Replay every call with an event whose processing failed; returns how many."""
    planner = planner or default_planner()
    async with session_factory() as session:
        call_ids = await repo.unapplied_call_ids(session)
    count = 0
    for cid in call_ids:
        count += await replay_journal(session_factory, planner, cid)
    if count:
        log.info("replayed %d call(s) with events that had not been applied", count)
    return count


async def fold(session: AsyncSession, planner: Planner, records: list[Any]) -> CallRow | None:
    """The call as the live path would have written it after these journal rows (None when
    not one of them fits today's limits)."""
    folded: CallRow | None = None
    for record in records:
        event = event_of(record)
        if event is None:
            continue
        plan = await planner.plan(
            session,
            event,
            folded,
            received_at=record.received_at,
            started=time.perf_counter(),
            publish=False,
        )
        folded = {**dict.fromkeys(CALL_COLUMNS), **plan.applied.call}
    return folded


async def _replay_one(session: AsyncSession, call_id: str, planner: Planner) -> bool:
    row = await repo.lock_call(session, call_id)
    records = list(await repo.journal_for_calls(session, [call_id]))
    if not records:
        return False
    folded = await fold(session, planner, records)
    if folded is None:
        return False
    values = {k: folded[k] for k in CALL_COLUMNS if k not in ("id", "version")}
    if row is None:
        await repo.insert_call(session, {**values, "id": call_id, "version": 1})
    else:
        values["first_seen_at"] = row["first_seen_at"]
        if (row["match"] or {}).get("kind") == "single":
            values.update({k: row[k] for k in KEPT_WHEN_MATCHED})
        elif values["pop"] != row["pop"]:
            values["pop_version"] = row["pop_version"] + 1
        else:
            values["pop_version"] = row["pop_version"]
        if not await repo.update_call(session, call_id, row["version"], values):
            raise RuntimeError(f"call {call_id} changed under its lock")
    await repo.mark_applied(session, call_id)
    return True
