"""Rebuild today's ``QueueStats`` from the database: calls, the journal, pops, presence.

Queue figures come from the ``calls`` rows (a ``call.change`` message carries the row as
committed, so the same fold gives the same sums). Calls handled per agent come from the
journal, replayed through the calls domain's own state machine: an agent is credited when a
step connects them to the call (``answered_by``), exactly when the live path credits them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import state_machine as call_machine
from app.calls.models import Call
from app.queues import repository
from app.queues.service import Roster
from app.queues.stats import CallView, QueueStats


def _name(document: dict[str, Any] | None, part: str, key: str) -> str | None:
    section = (document or {}).get(part)
    value = section.get(key) if isinstance(section, dict) else None
    return str(value) if value is not None else None


def view_of_call(call: Call) -> CallView:
    """The statistics' view of a call row: the same fields a ``call.change`` message carries."""
    match: dict[str, Any] = call.match or {}
    return CallView(
        call_id=call.id,
        queue=call.queue,
        state=call.state,
        queued_at=call.queued_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        agent=call.agent,
        offered_to=tuple(call.offered_to or ()),
        caller={"raw": call.caller_raw, "e164": call.caller_e164, "withheld": call.caller_withheld},
        # As the calls domain fills the message: from the pop document built at first sight.
        customer_name=_name(call.pop, "customer", "name"),
        value_tier=_name(call.pop, "insights", "value_tier"),
        match_kind=match.get("kind"),
    )


def step_of(
    roster: Roster, kind: str, occurred_at: datetime, event: dict[str, Any]
) -> call_machine.Step:
    """A journaled event as the state machine's step, agents resolved to usernames."""
    attributes = event.get("attributes") or {}
    agent = event.get("agent")
    transfer_to = attributes.get("transfer_to")
    return call_machine.Step(
        kind=kind,
        occurred_at=occurred_at,
        agent=roster.username_for(str(agent)) if agent else None,
        withdrawn=bool(attributes.get("offer_withdrawn")),
        transfer_to=roster.username_for(str(transfer_to)) if transfer_to else None,
    )


async def rebuild(
    session: AsyncSession, roster: Roster, timezone: str, now: datetime | None = None
) -> QueueStats:
    """Today's statistics as the database tells them (one query per table, no per-call query)."""
    now = now or datetime.now(UTC)
    stats = QueueStats(timezone, roster.service_levels, now)
    start = stats.day_start()
    for presence in await repository.presences(session):
        stats.load_agent(presence.username, presence.state, presence.since, presence.call_id)
    for call in await repository.calls_since(session, start):
        stats.load_call(view_of_call(call), now)
    facts: dict[str, call_machine.CallFacts] = defaultdict(call_machine.CallFacts)
    for call_id, kind, occurred_at, event in await repository.journal_since(session, start):
        try:
            outcome = call_machine.apply(
                facts[call_id], step_of(roster, kind, occurred_at, event or {})
            )
        except ValueError:
            continue  # a kind the machine does not know changed nothing live either
        facts[call_id] = outcome.facts
        if outcome.answered_by:
            stats.credit_answer(call_id, outcome.answered_by, occurred_at)
    for call_id, username, queue, latency_ms in await repository.pops_since(session, start):
        if latency_ms is not None:
            stats.record_pop(call_id, username, queue, float(latency_ms))
    stats.dirty_agents.clear()
    return stats
