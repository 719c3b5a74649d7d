"""Rebuild call state from the journal.

The journal holds every accepted event as it arrived. Folding a call's events through the
state machine, in arrival order, gives the state the live path computed; this is how a call
whose processing failed after its event was journaled (``applied = false``) is repaired at
start-up, and how a damaged or deleted call row is rebuilt.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import repository as repo
from app.calls.directory import Directory
from app.calls.pop import document_from_profile, empty_document
from app.calls.service import account_ref_of, facts_values, queue_of, resolve_step
from app.calls.state_machine import CallFacts, apply
from app.customers import service as customers
from app.settings import Settings, get_settings
from telephony.events import CallEvent

log = logging.getLogger(__name__)


def _event_of(record: Any) -> CallEvent:
    return CallEvent.model_validate({**record.event, "raw": record.raw})


async def replay_journal(
    session_factory: async_sessionmaker[AsyncSession],
    call_id: str | None = None,
    *,
    settings: Settings | None = None,
    directory: Directory | None = None,
) -> int:
    """Rebuild one call (or every journaled call) from its events; returns how many.

    State columns (state, agent, offered_to, timestamps) are recomputed; the caller, dialed
    number and queue are filled in if missing; the match and pop are kept, or built when the
    call row did not exist. Nothing is pushed to agents (their screens replay on connect).
    """
    settings = settings or get_settings()
    directory = directory or Directory()
    async with session_factory() as session:
        call_ids = [call_id] if call_id else await repo.journal_call_ids(session)
    rebuilt = 0
    for cid in call_ids:
        async with session_factory() as session:
            if await _replay_one(session, cid, settings, directory):
                rebuilt += 1
            await session.commit()
    return rebuilt


async def replay_unapplied(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    settings: Settings | None = None,
    directory: Directory | None = None,
) -> int:
    """Replay every call with an event whose processing failed; returns how many."""
    async with session_factory() as session:
        call_ids = await repo.unapplied_call_ids(session)
    count = 0
    for cid in call_ids:
        count += await replay_journal(session_factory, cid, settings=settings, directory=directory)
    if count:
        log.info("replayed %d call(s) with events that had not been applied", count)
    return count


async def _replay_one(
    session: AsyncSession, call_id: str, settings: Settings, directory: Directory
) -> bool:
    row = await repo.lock_call(session, call_id)
    records = await repo.journal_for_calls(session, [call_id])
    if not records:
        return False
    facts = CallFacts()
    events = [_event_of(r) for r in records]
    for event in events:
        step, _ = await resolve_step(directory, session, event)
        facts = apply(facts, step).facts
    values: dict[str, Any] = facts_values(facts)
    first = events[0]
    caller_event = next((e for e in events if e.caller.raw or e.caller.withheld), first)
    fill: dict[str, Any] = {
        "caller_raw": caller_event.caller.raw[:128],
        "caller_e164": caller_event.caller.e164,
        "caller_withheld": caller_event.caller.withheld,
        "caller_name": next((e.caller_name for e in events if e.caller_name), None),
        "dialed": next((e.dialed for e in events if e.dialed), None),
    }
    queue = None
    for event in events:
        queue = await queue_of(directory, session, event)
        if queue is not None:
            break
    if queue is not None:
        fill["queue"] = queue.name
    if row is None:
        account_ref = next((a for e in events if (a := account_ref_of(e))), None)
        match = await customers.resolve_caller(
            session,
            caller_event.caller,
            account_ref=account_ref,
            default_region=settings.default_region,
        )
        doc = empty_document(complete=True)
        if match.customer_id is not None:
            profile = await customers.assemble_profile(session, match.customer_id)
            doc = document_from_profile(profile, complete=True)
        values.update(
            fill,
            id=call_id,
            source=first.source,
            first_seen_at=records[0].received_at,
            version=1,
            match=match.as_dict(),
            customer_id=match.customer_id,
            pop=doc,
            pop_version=1,
        )
        await repo.insert_call(session, values)
    else:
        for key, value in fill.items():
            if value is not None and not row.get(key):
                values[key] = value
        if not await repo.update_call(session, call_id, row["version"], values):
            raise RuntimeError(f"call {call_id} changed under its lock")
    await repo.mark_applied(session, call_id)
    return True
