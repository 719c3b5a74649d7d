"""A call's legs: the agents who were connected to it, in order.

A transferred call has two (or more): the agent who answered and transferred it, and the one
who took it. Each wraps up their own leg (``AgentActions.wrapup``) and keeps their own draft
(``app.calls.drafts``). The legs are read from the journal through the live path's own state
machine, so they are exactly who the call's row named as its agent, one event after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import repository as repo
from app.calls.planning import Planner
from app.calls.replay import event_of
from app.calls.state_machine import FINAL_STATES, CallFacts, apply


@dataclass(frozen=True, slots=True)
class Leg:
    """One agent's part of a call; ``ended_at`` None while they still have it."""

    username: str
    ended_at: datetime | None


async def legs_of(session: AsyncSession, planner: Planner, call_id: str) -> list[Leg]:
    """The agents ever connected to ``call_id``, first first, and when their part ended
    (transferred away, or the call ended)."""
    facts = CallFacts()
    ends: dict[str, datetime | None] = {}
    for record in await repo.journal_for_calls(session, [call_id]):
        event = event_of(record)
        if event is None:
            continue
        step, _ = await planner.step(session, event)
        before = facts.agent
        facts = apply(facts, step).facts
        if facts.agent != before:
            if before is not None:
                ends[before] = step.occurred_at
            if facts.agent is not None:
                ends[facts.agent] = None
    if facts.state in FINAL_STATES and facts.agent is not None:
        ends[facts.agent] = facts.ended_at or facts.last_event_at
    return [Leg(username, ended_at) for username, ended_at in ends.items()]


async def had_leg(
    session: AsyncSession, planner: Planner, call_id: str, username: str, current: str | None
) -> bool:
    """Whether ``username`` was connected to the call (``current``: its agent now)."""
    if username == current:
        return True
    return any(leg.username == username for leg in await legs_of(session, planner, call_id))
