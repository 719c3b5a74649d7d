"""The demo's floor: its timing, its calls as the PBX holds them, and who gets the next call.

``choose_agent`` is the demo PBX's one rule for offering a call (``app.calls.demo_centre``):
only an agent with an agent page open who is ``available`` and free of any other demo call,
people first, the simulated agents after them.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from app.queues.presence import AgentView
from app.queues.service import Roster
from app.queues.stats import QueueStats

# The demo's own agents: clearly not people, never signed in by anyone (random password).
SIM_AGENTS = ("sim-amy", "sim-ben", "sim-cat", "sim-dan")
SOURCE = "generic"
CALL_PREFIX = "demo-"
# How often waiting calls look for a free agent.
DISPATCH_S = 0.2
SIM_DISPOSITION = "resolved"
_EPOCH = datetime.min.replace(tzinfo=UTC)

Span = tuple[float, float]


@dataclass(frozen=True)
class DemoTiming:
    """Seconds of the simulated world, before ``SCREENPOP_DEMO_SPEED`` divides them."""

    between_calls_s: float = 5.0  # the mean gap between two calls (Poisson arrivals)
    ivr_s: Span = (0.5, 2.0)  # in the queue before the first offer can go out
    patience_s: Span = (30.0, 120.0)  # a caller nobody answered hangs up after this
    sim_ring_s: Span = (1.0, 3.0)
    talk_s: Span = (5.0, 15.0)
    sim_wrap_up_s: Span = (2.0, 5.0)
    person_talk_max_s: float = 600.0
    transfer_share: float = 0.1  # of simulated agents' calls

    def faster(self, speed: float) -> DemoTiming:
        def span(value: Span) -> Span:
            return (value[0] / speed, value[1] / speed)

        return replace(
            self,
            between_calls_s=self.between_calls_s / speed,
            ivr_s=span(self.ivr_s),
            patience_s=span(self.patience_s),
            sim_ring_s=span(self.sim_ring_s),
            talk_s=span(self.talk_s),
            sim_wrap_up_s=span(self.sim_wrap_up_s),
            person_talk_max_s=self.person_talk_max_s / speed,
        )


@dataclass(eq=False)
class Line:
    """One demo call on the PBX: its state there, who it rings or is connected to."""

    provider_id: str
    caller: dict[str, Any]
    dialed: str
    queue: str | None
    # waiting (in the queue), ringing (an agent), answered, over
    state: str = "waiting"
    agent: str | None = None
    rings_out_at: float | None = None  # time.time() when an unanswered offer rings out
    rang: set[str] = field(default_factory=set)  # agents who declined it or let it ring out
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set when the agent's phone did something (answer, decline, hang up).
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    assigned: asyncio.Event = field(default_factory=asyncio.Event)
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    arrived: float = field(default_factory=time.monotonic)

    @property
    def call_id(self) -> str:
        return f"{SOURCE}:{self.provider_id}"


def _idle_order(view: AgentView) -> tuple[datetime, str]:
    return (view.since or _EPOCH, view.username)


def takes_calls(roster: Roster, username: str, queue: str | None) -> bool:
    """A person who may be offered a call of ``queue``: an agent (or a supervisor with an
    extension or worker id) in that queue."""
    user = roster.users.get(username)
    if user is None or (queue is not None and queue not in user.queues):
        return False
    return user.role == "agent" or username in roster.aliases.values()


def choose_agent(
    stats: QueueStats,
    roster: Roster,
    queue: str | None,
    sims: Collection[str],
    busy: Collection[str] = (),
    *,
    people: bool = True,
) -> str | None:
    """Who a call of ``queue`` rings next, or None: an agent with a page open, ``available``
    and not in ``busy``; a person in that queue first, else a simulated agent; among them the
    one available the longest."""
    persons: list[AgentView] = []
    simulated: list[AgentView] = []
    for username, view in stats.agents.items():
        if view.state != "available" or view.connections <= 0 or username in busy:
            continue
        if username in sims:
            simulated.append(view)
        elif people and takes_calls(roster, username, queue):
            persons.append(view)
    for group in (persons, simulated):
        if group:
            return min(group, key=_idle_order).username
    return None


# How the simulated agents' callers feel (the agent's impression) and take an offer.
SIM_GRADES = (1, 2, 3, 4, 5)
SIM_GRADE_WEIGHTS = (0.04, 0.06, 0.2, 0.4, 0.3)
SIM_TAKE_SHARE = 0.25


def sim_wrap_up(rng: random.Random, agent: str, pop: dict[str, Any] | None) -> dict[str, Any]:
    """A simulated agent's wrap-up: their impression of the caller (mostly 4 or 5) and, when
    the pop suggested a product the caller may be offered, that first one offered (taken about
    one time in four), so the demo's reports have offers and grades to count."""
    body: dict[str, Any] = {
        "disposition": SIM_DISPOSITION,
        "notes": f"Simulated call, handled by {agent} (demo).",
        "satisfaction": rng.choices(SIM_GRADES, SIM_GRADE_WEIGHTS)[0],
        "satisfaction_kind": "agent",
    }
    offerable = [n for n in (pop or {}).get("next_needs") or () if n.get("may_offer", True)]
    if offerable and offerable[0].get("sku"):
        taken = rng.random() < SIM_TAKE_SHARE
        body["offers"] = [
            {"sku": offerable[0]["sku"], "outcome": "accepted" if taken else "declined"}
        ]
    return body
