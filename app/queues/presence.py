"""Agent presence: the states an agent can be in and the rules that move them.

States: ``logged_out`` (no agent screen open for ``SCREENPOP_AGENT_OFFLINE_S``, or chosen),
``available``, ``away`` (set by the agent),
``ringing`` (a call is offered to them), ``on_call`` (talking or holding), ``wrap_up`` (after a
call, until the agent says they are available again, the next call rings, or the queue's
``wrap_up_s`` has passed). ``app.queues.timeouts`` ends wrap-ups and logs out agents with no
open page for ``SCREENPOP_AGENT_OFFLINE_S``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PRESENCE_STATES = ("logged_out", "available", "away", "ringing", "on_call", "wrap_up")
# What an agent may set for themselves; ringing and on_call come only from call events.
SETTABLE_STATES = ("available", "away", "wrap_up", "logged_out")
# States an offer may interrupt and that a withdrawn offer returns to.
_RESTORABLE = ("available", "away", "logged_out")


@dataclass(slots=True)
class AgentView:
    """One agent's presence: state, since when, the call it concerns, and open screens."""

    username: str
    state: str = "logged_out"
    since: datetime | None = None
    call_id: str | None = None
    # The state to go back to when a ringing offer is withdrawn (ring-no-answer).
    before_ring: str = "available"
    connections: int = 0
    # The last moment any instance knew of an open page of theirs (a heartbeat or the close).
    page_seen_at: datetime | None = None
    # The queue of the call being wrapped up (its wrap_up_s bounds the wrap-up).
    wrap_queue: str | None = None

    def move(self, state: str, at: datetime, call_id: str | None = None) -> bool:
        """Enter ``state`` at ``at``; returns True when anything visible changed."""
        if self.state == state and self.call_id == call_id:
            return False
        if state == "ringing" and self.state in _RESTORABLE:
            self.before_ring = self.state
        self.state = state
        self.call_id = call_id
        self.since = at
        return True

    def ring(self, call_id: str, at: datetime) -> bool:
        """A call is offered to this agent; an agent already talking keeps talking."""
        if self.state == "on_call" or (self.state == "ringing" and self.call_id == call_id):
            return False
        return self.move("ringing", at, call_id)

    def ring_over(self, call_id: str, at: datetime) -> bool:
        """The offer of ``call_id`` ended without this agent answering."""
        if self.state != "ringing" or self.call_id != call_id:
            return False
        return self.move(self.before_ring, at)

    def talk(self, call_id: str, at: datetime) -> bool:
        return self.move("on_call", at, call_id)

    def hang_up(self, call_id: str, at: datetime) -> bool:
        """This agent's part in ``call_id`` ended (the call ended or was transferred away)."""
        if self.state != "on_call" or self.call_id != call_id:
            return False
        return self.move("wrap_up", at, call_id)

    def connect(self, at: datetime) -> bool:
        self.connections += 1
        return self.state == "logged_out" and self.move("available", at)

    def disconnect(self, at: datetime) -> bool:
        """A screen closed. The state stays (a reload or a dropped connection keeps ``away``);
        with no screen left the clock of ``SCREENPOP_AGENT_OFFLINE_S`` starts
        (``app.queues.timeouts`` logs the agent out when it runs out)."""
        self.connections = max(0, self.connections - 1)
        self.page_seen_at = at if self.page_seen_at is None else max(self.page_seen_at, at)
        return False

    def time_out(self, state: str, since: datetime | None, to: str, at: datetime) -> bool:
        """A sweep's verdict (``app.queues.timeouts``): leave ``state`` for ``to``, unless the
        agent has moved since the sweep looked (``since`` no longer the same)."""
        if self.state != state or self.since != since:
            return False
        return self.move(to, at)

    def set_status(self, state: str, at: datetime) -> bool:
        """The agent's own choice; ignored while a call rings or is live (the router says 409)."""
        if self.state in ("ringing", "on_call"):
            return False
        return self.move(state, at)
