"""The call state machine: a pure function from (what we know, one event) to what we know next.

States: ``queued`` (waiting), ``ringing`` (offered to one or more agents), ``answered``,
``held``, and the final ``ended`` and ``abandoned`` (ended without ever being answered).

Providers deliver late, twice and out of order, so the rules are chosen to converge:

* an ``answered`` that arrives before its ``offered`` answers the call; the late offer is
  then ignored (the call is no longer ringing anyone);
* ``ended`` before ``answered`` gives ``abandoned``; if the ``answered`` then arrives with an
  ``occurred_at`` no later than the end, the call becomes ``ended`` (it was answered after
  all). Anything else arriving after a final state changes nothing but missing timestamps;
* ``held``/``resumed`` older than the last event we applied do not move the state back;
* ring-all: every ``offered`` adds the agent to ``offered_to``; an offer withdrawal (a
  ``queued`` event naming an agent with ``offer_withdrawn``) removes that agent, and the call
  goes back to ``queued`` when nobody is left; ``answered`` by one withdraws all the others;
  ``rang_out`` (screenpop's own: an offer past its queue's ``ring_timeout_s`` to an agent with
  no open page) withdraws the offer to the agent it names in the same way;
* ``expired`` (screenpop's own, no event for ``SCREENPOP_CALL_MAX_IDLE_S``) closes a live call
  as ``ended``; like every end, it changes nothing on a call already over;
* ``transferred`` of a connected call moves it to the new agent (the caller is untouched);
  of a call still ringing, it becomes an offer to the new agent.

Agents are usernames, resolved by the caller of ``apply``; the machine never looks anything up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

LIVE_STATES = ("queued", "ringing", "answered", "held")
FINAL_STATES = ("ended", "abandoned")
# States in which an agent holds a pop that is still relevant.
AGENT_LIVE_STATES = ("ringing", "answered", "held")
CONNECTED_STATES = ("answered", "held")


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the call's row says about its progress; ``state`` None for a call never seen."""

    state: str | None = None
    agent: str | None = None
    offered_to: tuple[str, ...] = ()
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    last_event_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One event, reduced to what the machine needs; agents already resolved to usernames."""

    kind: str
    occurred_at: datetime
    agent: str | None = None
    withdrawn: bool = False
    transfer_to: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The facts after the step, and who is affected."""

    facts: CallFacts
    offered: tuple[str, ...] = ()  # agents newly offered the call
    withdrawn: tuple[str, ...] = ()  # agents whose offer/pop ended without them having it
    answered_by: str | None = None  # the agent newly connected by this step
    transferred_from: str | None = None
    transferred_to: str | None = None


def _earliest(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment < current else current


def _latest(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment > current else current


def apply(facts: CallFacts, step: Step) -> Outcome:
    """The call after ``step``; see the module docstring for the rules."""
    kind = step.kind
    if kind == "queued":
        return _queued(facts, step)
    if kind == "rang_out":
        return _queued(facts, replace(step, withdrawn=True))
    if kind == "offered":
        return _offered(facts, step)
    if kind == "answered":
        return _answered(facts, step)
    if kind in ("held", "resumed"):
        return _hold(facts, step)
    if kind == "transferred":
        return _transferred(facts, step)
    if kind in ("ended", "abandoned"):
        return _ended(facts, step)
    if kind == "expired":
        return _expired(facts, step)
    raise ValueError(f"unknown event kind {kind!r}")


def _touch(facts: CallFacts, step: Step, **changes: object) -> CallFacts:
    return replace(facts, last_event_at=_latest(facts.last_event_at, step.occurred_at), **changes)  # type: ignore[arg-type]


def _queued(facts: CallFacts, step: Step) -> Outcome:
    queued_at = _earliest(facts.queued_at, step.occurred_at)
    if facts.state in FINAL_STATES:
        return Outcome(replace(facts, queued_at=queued_at))
    if step.withdrawn and step.agent:
        offered = tuple(a for a in facts.offered_to if a != step.agent)
        withdrawn = (step.agent,) if step.agent in facts.offered_to else ()
        state = facts.state or "queued"
        if state == "ringing" and not offered:
            state = "queued"
        return Outcome(
            _touch(facts, step, state=state, offered_to=offered, queued_at=queued_at),
            withdrawn=withdrawn,
        )
    # A plain queue event never moves a ringing or connected call back.
    return Outcome(_touch(facts, step, state=facts.state or "queued", queued_at=queued_at))


def _offered(facts: CallFacts, step: Step) -> Outcome:
    if facts.state in FINAL_STATES or facts.state in CONNECTED_STATES:
        # Late: someone already has the call (or it is over); a ring-all leg that lost.
        return Outcome(facts)
    offered = facts.offered_to
    new: tuple[str, ...] = ()
    if step.agent and step.agent not in offered:
        offered = (*offered, step.agent)
        new = (step.agent,)
    return Outcome(
        _touch(
            facts,
            step,
            state="ringing",
            offered_to=offered,
            queued_at=_earliest(facts.queued_at, step.occurred_at),
        ),
        offered=new,
    )


def _answered(facts: CallFacts, step: Step) -> Outcome:
    if facts.state in FINAL_STATES:
        ended_at = facts.ended_at
        if facts.state == "abandoned" and ended_at is not None and step.occurred_at <= ended_at:
            # The answer happened before the end we saw first: it was a normal call.
            return Outcome(
                replace(
                    facts,
                    state="ended",
                    answered_at=step.occurred_at,
                    agent=step.agent or facts.agent,
                )
            )
        return Outcome(facts)
    return _connect(facts, step, facts.state if facts.state in CONNECTED_STATES else "answered")


def _connect(facts: CallFacts, step: Step, state: str) -> Outcome:
    """The call is connected to an agent (the one named, or the only one offered)."""
    who = step.agent or facts.agent
    if who is None and len(facts.offered_to) == 1:
        who = facts.offered_to[0]
    withdrawn = tuple(a for a in facts.offered_to if a != who)
    answered_by = who if who is not None and who != facts.agent else None
    return Outcome(
        _touch(
            facts,
            step,
            state=state,
            agent=who,
            offered_to=(),
            answered_at=_earliest(facts.answered_at, step.occurred_at),
        ),
        withdrawn=withdrawn,
        answered_by=answered_by,
    )


def _hold(facts: CallFacts, step: Step) -> Outcome:
    if facts.state in FINAL_STATES:
        return Outcome(facts)
    target = "held" if step.kind == "held" else "answered"
    stale = facts.last_event_at is not None and step.occurred_at < facts.last_event_at
    if stale and facts.state in CONNECTED_STATES:
        # An older hold/resume overtaken by a newer event: keep what is newer.
        return Outcome(facts)
    # Holding or resuming implies the call was answered (its answer may still be on its way).
    return _connect(facts, step, target)


def _transferred(facts: CallFacts, step: Step) -> Outcome:
    if facts.state in FINAL_STATES:
        return Outcome(facts)
    target = step.transfer_to
    if facts.state in CONNECTED_STATES:
        old = facts.agent
        withdrawn = tuple(a for a in (old, *facts.offered_to) if a and a != target)
        return Outcome(
            _touch(facts, step, state="answered", agent=target, offered_to=()),
            withdrawn=withdrawn,
            answered_by=target if target != old else None,
            transferred_from=old,
            transferred_to=target,
        )
    # Not connected yet (an IVR or queue transfer): it now rings the new agent.
    withdrawn = tuple(a for a in facts.offered_to if a != target)
    offered = (target,) if target else ()
    return Outcome(
        _touch(
            facts,
            step,
            state="ringing" if target else facts.state or "queued",
            offered_to=offered,
            queued_at=_earliest(facts.queued_at, step.occurred_at),
        ),
        offered=tuple(a for a in offered if a not in facts.offered_to),
        withdrawn=withdrawn,
        transferred_to=target,
    )


def _ended(facts: CallFacts, step: Step) -> Outcome:
    if facts.state in FINAL_STATES:
        return Outcome(facts)
    answered = facts.answered_at is not None
    withdrawn = tuple(a for a in facts.offered_to if a != facts.agent)
    return Outcome(
        _touch(
            facts,
            step,
            state="ended" if answered else "abandoned",
            offered_to=(),
            ended_at=step.occurred_at,
        ),
        withdrawn=withdrawn,
    )


def _expired(facts: CallFacts, step: Step) -> Outcome:
    """No event for too long (``app.calls.expiry``): the call is closed as ``ended``, nobody
    rings any more and its agent is released."""
    if facts.state in FINAL_STATES:
        return Outcome(facts)
    withdrawn = tuple(a for a in facts.offered_to if a != facts.agent)
    return Outcome(
        _touch(facts, step, state="ended", offered_to=(), ended_at=step.occurred_at),
        withdrawn=withdrawn,
    )


def fold(steps: list[Step], facts: CallFacts | None = None) -> CallFacts:
    """The facts after applying ``steps`` in order (used by replay and tests)."""
    current = facts or CallFacts()
    for step in steps:
        current = apply(current, step).facts
    return current
