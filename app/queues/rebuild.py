"""Rebuild today's ``QueueStats`` from the database: calls, the journal, pops, presence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call
from app.queues import repository
from app.queues.service import Roster
from app.queues.stats import CallView, QueueStats


def view_of_call(call: Call, customer_name: str | None, value_tier: str | None) -> CallView:
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
        customer_name=customer_name,
        value_tier=value_tier,
        match_kind=match.get("kind"),
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
    for call, customer_name, value_tier in await repository.calls_since(session, start):
        stats.load_call(view_of_call(call, customer_name, value_tier))
    for call_id, event, occurred_at in await repository.answers_since(session, start):
        raw_agent = (event or {}).get("agent")
        view = stats.calls.get(call_id)
        # The journal holds the agent as the provider named it (extension, worker id, ...).
        agent = roster.username_for(str(raw_agent)) if raw_agent else (view.agent if view else None)
        if agent:
            stats.credit_answer(call_id, agent, occurred_at)
    for call_id, username, queue, latency_ms in await repository.pops_since(session, start):
        if latency_ms is not None:
            stats.record_pop(call_id, username, queue, float(latency_ms))
    stats.dirty_agents.clear()
    return stats
