"""Agents whose state ends on its own: a wrap-up past its queue's ``wrap_up_s``, an agent
with no open page for ``SCREENPOP_AGENT_OFFLINE_S``, and an offer ringing an agent with no open
page for longer than its queue's ``ring_timeout_s``.

Every ``SCREENPOP_SWEEP_INTERVAL_S`` each instance

* publishes ``agent.pages`` on ``presence``: the agents with a page open on this instance (so
  every instance, including one started after those pages connected, knows they are there);
* looks at its figures for overdue states and publishes one ``agent.timeout`` per agent
  (``from`` and ``since`` say which state it judged). Every instance folds it only if the
  agent is still in that very state (``AgentView.time_out``), so the same verdict sent by
  several instances, or one overtaken by the agent's own choice, changes nothing twice.

After a wrap-up the agent is ``available``; a wrap-up posted late is still accepted.

An offer that rang out (``rung_out``) is no presence verdict: the call changes (the PBX would
have said ``unanswered``), so the sweep sends a ``rang_out`` event through the normal ingest
path (``app.calls.expiry.ring_out``): the journal, the call (back to ``queued`` when nobody else
rings) and the agent (back to the state before the ring) follow from it, and its derived id
makes the same verdict from several instances one journal entry. An agent whose page is open
keeps ringing: the PBX decides.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from app.queues.presence import AgentView
from app.queues.service import Roster
from app.queues.stats import QueueStats
from app.state import State

DEFAULT_WRAP_UP_S = 60
DEFAULT_RING_TIMEOUT_S = 30
# States an agent with no page is logged out of (ringing and on_call end with their call).
_IDLE = ("available", "away", "wrap_up")


def local_pages(state: State) -> Counter[str]:
    """Open agent pages on this instance, by username (kept by ``WS /ws/agent``)."""
    pages: Counter[str] = state["services"].setdefault("agent_pages", Counter())
    return pages


def pages_message(state: State, now: datetime) -> dict[str, Any] | None:
    """The heartbeat naming the agents with a page open here; None when there are none."""
    usernames = sorted(u for u, n in local_pages(state).items() if n > 0)
    if not usernames:
        return None
    return {"type": "agent.pages", "usernames": usernames, "at": now.isoformat()}


def _timeout(view: AgentView, to: str, now: datetime) -> dict[str, Any]:
    assert view.since is not None
    return {
        "type": "agent.timeout",
        "username": view.username,
        "from": view.state,
        "since": view.since.isoformat(),
        "state": to,
        "at": now.isoformat(),
    }


def _wrap_up_over(view: AgentView, roster: Roster, now: datetime) -> bool:
    assert view.since is not None
    limit = roster.wrap_ups.get(view.wrap_queue or "", DEFAULT_WRAP_UP_S)
    return now - view.since >= timedelta(seconds=limit)


def _offline(view: AgentView, offline_s: int, now: datetime) -> bool:
    assert view.since is not None
    if view.connections > 0:
        return False
    heard = max(view.since, view.page_seen_at or view.since)
    return now - heard >= timedelta(seconds=offline_s)


def overdue(
    stats: QueueStats, roster: Roster, offline_s: int, now: datetime
) -> list[dict[str, Any]]:
    """One ``agent.timeout`` message per agent whose state is over at ``now``."""
    messages = []
    for view in stats.agents.values():
        if view.since is None or view.state not in _IDLE:
            continue
        if _offline(view, offline_s, now):
            messages.append(_timeout(view, "logged_out", now))
        elif view.state == "wrap_up" and _wrap_up_over(view, roster, now):
            messages.append(_timeout(view, "available", now))
    return messages


def rung_out(stats: QueueStats, roster: Roster, now: datetime) -> list[tuple[str, str, datetime]]:
    """``(call id, username, ringing since)`` for every agent an offer has rung for at least
    its queue's ``ring_timeout_s`` with no page of theirs open (nor seen) for as long."""
    offers = []
    for view in stats.agents.values():
        if view.state != "ringing" or view.since is None or view.call_id is None:
            continue
        call = stats.calls.get(view.call_id)
        queue = call.queue if call is not None else ""
        limit = roster.ring_timeouts.get(queue, DEFAULT_RING_TIMEOUT_S)
        if _offline(view, limit, now):
            offers.append((view.call_id, view.username, view.since))
    return offers
