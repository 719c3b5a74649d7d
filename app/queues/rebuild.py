"""Rebuild today's ``QueueStats`` from the database: calls, the journal, pops, presence.

Queue figures come from the ``calls`` rows (a ``call.change`` message carries the row as
committed, so the same fold gives the same sums). Calls handled per agent come from the
journal, replayed through the calls domain's own state machine: an agent is credited when a
step connects them to the call (``answered_by``), exactly when the live path credits them.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import state_machine as call_machine
from app.calls.pop import change_message
from app.queues import repository
from app.queues.call_view import CallView
from app.queues.service import Roster
from app.queues.stats import QueueStats


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def view_of_row(row: repository.CallRow, now: datetime) -> CallView:
    """The statistics' view of a call row: read through the ``call.change`` message the calls
    domain would send for it, so a rebuild and the live fold see the same fields."""
    call = row._asdict()
    call["match"] = {"kind": call.pop("match_kind")}
    for key in ("pop_customer_name", "pop_value_tier"):
        call[key] = _text(call[key])
    message = change_message(
        call, event_kind="rebuild", occurred_at=now, received_at=now, old_state=None
    )
    return CallView.from_message(message)


def step_of(roster: Roster, entry: repository.JournalRow) -> call_machine.Step:
    """A journaled event as the state machine's step, agents resolved to usernames."""
    agent, transfer_to = entry.agent, entry.transfer_to
    return call_machine.Step(
        kind=entry.kind,
        occurred_at=entry.occurred_at,
        agent=roster.username_for(str(agent)) if agent else None,
        withdrawn=bool(entry.offer_withdrawn),
        transfer_to=roster.username_for(str(transfer_to)) if transfer_to else None,
    )


async def rebuild(
    session: AsyncSession, roster: Roster, timezone: str, now: datetime | None = None
) -> QueueStats:
    """Today's statistics as the database tells them (one query per table, no per-call query)."""
    now = now or datetime.now(UTC)
    stats = QueueStats(timezone, roster.service_levels, now)
    start = stats.day_start()
    for presence, queue in await repository.presences(session):
        stats.load_agent(presence.username, presence.state, presence.since, presence.call_id, queue)
    # Each query is streamed: memory follows the figures, not the number of rows read.
    async with aclosing(repository.calls_since(session, start)) as calls:
        async for call in calls:
            stats.load_call(view_of_row(call, now), now)
    facts: dict[str, call_machine.CallFacts] = defaultdict(call_machine.CallFacts)
    async with aclosing(repository.journal_since(session, start)) as journal:
        async for entry in journal:
            try:
                outcome = call_machine.apply(facts[entry.call_id], step_of(roster, entry))
            except ValueError:
                continue  # a kind the machine does not know changed nothing live either
            facts[entry.call_id] = outcome.facts
            if outcome.answered_by:
                stats.credit_answer(entry.call_id, outcome.answered_by, entry.occurred_at)
    async with aclosing(repository.pops_since(session, start)) as pops:
        async for call_id, username, queue, latency_ms in pops:
            if latency_ms is not None:
                stats.record_pop(call_id, username, queue, float(latency_ms))
    stats.dirty_agents.clear()
    return stats
