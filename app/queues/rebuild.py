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
from app.queues.call_view import FINISHED, CallView
from app.queues.presence import AgentView
from app.queues.service import Roster
from app.queues.stats import TALKING, QueueStats


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


def _holds(view: AgentView, call: CallView | None) -> bool:
    """Whether ``call`` (as committed) still rings or connects the agent ``view`` says."""
    if call is None or call.state in FINISHED:
        return False
    if view.state == "on_call":
        return call.state in TALKING and call.agent == view.username
    return call.state in ("queued", "ringing") and view.username in call.offered_to


def presence_follows_calls(stats: QueueStats, now: datetime) -> None:
    """Agents' ringing and talking as the calls have them.

    Presence rows are written in batches (``PRESENCE_FLUSH_S``), so an instance that starts
    while others run can read an agent ringing or talking on a call that has since ended or
    moved on, or not yet on the call they took; no message would ever correct the first. A
    stale ring goes back to ``available`` (the state before it is not kept), a stale talk to
    ``wrap_up``; an agent neither ringing nor talking whom a live call connects (else rings)
    since after their row's ``since`` is put on it, the latest such call first.
    """
    for view in stats.agents.values():
        if view.state not in ("ringing", "on_call") or view.call_id is None:
            continue
        call = stats.calls.get(view.call_id)
        if _holds(view, call):
            continue
        if view.state == "ringing":
            view.move("available", now)
        else:
            view.move("wrap_up", (call.ended_at if call else None) or now, view.call_id)
            view.wrap_queue = call.queue if call else None
    live = sorted(
        (c for c in stats.calls.values() if c.state and c.state not in FINISHED),
        key=lambda c: c.answered_at or c.queued_at or now,
        reverse=True,
    )
    # Talking first: a call that rings an agent who is talking does not take them off it.
    ringing = [c for c in live if c.state not in TALKING]
    for call in [c for c in live if c.state in TALKING] + ringing:
        talking = call.state in TALKING
        moment = call.answered_at if talking else call.queued_at
        for username in [call.agent] if talking else list(call.offered_to):
            agent = stats.agent(username) if username else None
            if agent is None or agent.state in ("ringing", "on_call"):
                continue
            if moment is None or (agent.since is not None and moment <= agent.since):
                continue  # the row is newer (a call whose end was lost, say): it stands
            if talking:
                agent.talk(call.call_id, call.answered_at or now)
            else:
                agent.ring(call.call_id, now)


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
    presence_follows_calls(stats, now)
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
