"""``QueueStats``: today's figures per queue, agents and pop health, updated in O(1) per change.

Every figure is a sum over calls of what one call contributes (offered, answered within the
threshold, wait and handle time in whole milliseconds, ...). A change to a call subtracts the
call's previous contribution and adds its new one, so live updates never rescan the day and a
rebuild from the ``calls`` rows gives exactly the same sums: both fold the same per-call values
(the ``call.change`` message carries the call row as committed).

A call belongs to the local day (``settings.timezone``) on which it entered the queue
(``queued_at``, or ``answered_at`` for a call answered without queueing); everything it does
later (answer, abandon, hang up) counts for that day. At local midnight the figures restart.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.queues.call_view import (
    FINISHED,
    CallView,
    Contribution,
    contribution_of,
    parse_ts,
)
from app.queues.latency import LatencyHistogram, bucket_of
from app.queues.models import DEFAULT_SERVICE_LEVEL_S
from app.queues.names import lane_of
from app.queues.presence import AgentView

TALKING = ("answered", "held")
MATCH_KINDS = ("single", "multiple", "none", "withheld")
CHANNEL_FIGURES = ("offered", "answered", "abandoned")
# How long a finished call is remembered (a late event for it then still diffs exactly).
FORGET_AFTER = timedelta(minutes=10)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class QueueFigures:
    """Running sums for one queue and today."""

    __slots__ = (
        "abandoned",
        "abandoned_late",
        "answered",
        "channels",
        "handle_ms",
        "handled",
        "latency",
        "matches",
        "offered",
        "wait_ms",
        "waiting",
        "within_sl",
    )

    def __init__(self) -> None:
        # Calls waiting now (of any day), by call id.
        self.waiting: dict[str, CallView] = {}
        self.reset_day()

    def reset_day(self) -> None:
        """Zero the day's sums; the calls waiting now stay."""
        self.offered = 0
        self.answered = 0
        self.abandoned = 0
        self.abandoned_late = 0
        self.within_sl = 0
        self.wait_ms = 0
        self.handled = 0
        self.handle_ms = 0
        self.matches: dict[str, int] = {}
        # Per channel (phone, chat, email, ...): {"offered", "answered", "abandoned"}.
        self.channels: dict[str, dict[str, int]] = {}
        self.latency = LatencyHistogram()

    def add(self, c: Contribution, sign: int) -> None:
        self.offered += sign
        self.answered += sign * c.answered
        self.abandoned += sign * c.abandoned
        self.abandoned_late += sign * c.abandoned_late
        self.within_sl += sign * c.within_sl
        self.wait_ms += sign * c.wait_ms
        self.handled += sign * c.handled
        self.handle_ms += sign * c.handle_ms
        if c.match_kind:
            self.matches[c.match_kind] = self.matches.get(c.match_kind, 0) + sign
        channel = self.channels.setdefault(c.channel, dict.fromkeys(CHANNEL_FIGURES, 0))
        channel["offered"] += sign
        channel["answered"] += sign * c.answered
        channel["abandoned"] += sign * c.abandoned


def _add_channels(total: dict[str, dict[str, int]], part: dict[str, dict[str, int]]) -> None:
    for channel, figures in part.items():
        into = total.setdefault(channel, dict.fromkeys(CHANNEL_FIGURES, 0))
        for key in CHANNEL_FIGURES:
            into[key] += figures[key]


def _ratio(part: int, whole: int, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


class QueueStats:
    """Today's queue, agent and pop-health figures of one process, fed change by change."""

    def __init__(
        self,
        timezone: str = "UTC",
        service_levels: Mapping[str, int] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self.service_levels: dict[str, int] = dict(service_levels or {})
        self.day = self.local_day(now or datetime.now(UTC))
        self.queues: dict[str, QueueFigures] = {}
        self.calls: dict[str, CallView] = {}
        self.agents: dict[str, AgentView] = {}
        self.handled: dict[str, int] = {}
        # Per call: the agents already credited with it, and its pops by agent (queue, bucket).
        self._credited: dict[str, set[str]] = {}
        # A re-push of a call to the same agent replaces its latency, never double counts.
        self._pops: dict[str, dict[str, tuple[str, int]]] = {}
        # Finished calls, oldest first: forgotten FORGET_AFTER later so memory stays bounded
        # by the calls in progress, not by the day.
        self._finished: deque[tuple[datetime, str]] = deque()
        # Presence changes not yet written to the database (drained by the runtime).
        self.dirty_agents: dict[str, AgentView] = {}
        self.version = 0
        self.queue_versions: dict[str, int] = {}
        self.agent_versions: dict[str, int] = {}
        self._changed: asyncio.Event | None = None

    # -- time --------------------------------------------------------------------------------

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def day_start(self, day: date | None = None) -> datetime:
        """Local midnight of ``day`` (default today) as UTC."""
        d = day or self.day
        return datetime(d.year, d.month, d.day, tzinfo=self.tz).astimezone(UTC)

    def advance(self, now: datetime) -> None:
        """Start a new day when local midnight has passed: O(calls kept), once a day."""
        today = self.local_day(now)
        if today <= self.day:
            return
        self.day = today
        for figures in self.queues.values():
            figures.reset_day()
        for view in list(self.calls.values()):
            view.contribution = None
            if view.state in FINISHED or not view.state:
                del self.calls[view.call_id]
        self._finished.clear()
        self.handled.clear()
        self._credited.clear()
        self._pops.clear()
        self._touch_all()

    # -- configuration -----------------------------------------------------------------------

    def service_level_s(self, queue: str) -> int:
        return self.service_levels.get(queue, DEFAULT_SERVICE_LEVEL_S)

    def figures(self, queue: str) -> QueueFigures:
        figures = self.queues.get(queue)
        if figures is None:
            figures = self.queues[queue] = QueueFigures()
        return figures

    # -- change notification -----------------------------------------------------------------

    def _touch(self, queues: Iterable[str | None], agents: Iterable[str] = ()) -> None:
        self.version += 1
        for q in queues:
            if q:
                self.queue_versions[q] = self.queue_versions.get(q, 0) + 1
        for a in agents:
            self.agent_versions[a] = self.agent_versions.get(a, 0) + 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _touch_all(self) -> None:
        self._touch(list(self.queues), list(self.agents))

    def scope_version(self, queues: Iterable[str], agents: Iterable[str]) -> int:
        """A number that grows whenever anything in this scope changes."""
        qv, av = self.queue_versions, self.agent_versions
        return sum(qv.get(q, 0) for q in queues) + sum(av.get(a, 0) for a in agents)

    def changed(self) -> asyncio.Event:
        """An event set at the next change (wait on it with a timeout)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    # -- calls -------------------------------------------------------------------------------

    def _forget_finished(self, now: datetime) -> None:
        """Drop calls finished more than FORGET_AFTER ago (amortised O(1) per change)."""
        horizon = now - FORGET_AFTER
        finished = self._finished
        while finished and finished[0][0] < horizon:
            _, call_id = finished.popleft()
            view = self.calls.get(call_id)
            if view is not None and view.state in FINISHED:
                del self.calls[call_id]
                self._credited.pop(call_id, None)
                self._pops.pop(call_id, None)

    def _store(self, new: CallView, now: datetime) -> CallView | None:
        """Replace a call's view and its contribution; returns the previous view."""
        old = self.calls.get(new.call_id)
        if new.state in FINISHED and (old is None or old.state not in FINISHED):
            self._finished.append((now, new.call_id))
        if old is not None:
            if old.contribution is not None:
                self.figures(old.contribution.queue).add(old.contribution, -1)
            self.figures(old.queue).waiting.pop(old.call_id, None)
        entered = new.entered_at
        if entered is not None and self.local_day(entered) == self.day:
            new.contribution = contribution_of(new, self.service_level_s(new.queue))
            if new.contribution is not None:
                self.figures(new.queue).add(new.contribution, +1)
        if new.waiting:
            self.figures(new.queue).waiting[new.call_id] = new
        self.calls[new.call_id] = new
        return old

    def load_call(self, view: CallView, now: datetime) -> None:
        """Rebuild: take a call as the database holds it now."""
        self._store(view, now)
        self._touch([view.queue])

    def credit_answer(self, call_id: str, agent: str, answered_at: datetime) -> None:
        """Count ``call_id`` once among the calls ``agent`` handled (was connected to) today."""
        credited = self._credited.setdefault(call_id, set())
        if self.local_day(answered_at) != self.day or agent in credited:
            return
        credited.add(agent)
        self.handled[agent] = self.handled.get(agent, 0) + 1
        self._touch((), [agent])

    def apply_call_change(self, msg: Mapping[str, Any], now: datetime | None = None) -> None:
        """Fold one ``call.change`` message: figures, waiting list and agents' presence."""
        if not msg.get("call_id"):
            return
        now = now or datetime.now(UTC)
        self.advance(now)
        self._forget_finished(now)
        call_id = str(msg["call_id"])
        if call_id not in self.calls and msg.get("old_state") in FINISHED:
            # A late event for a call finished and forgotten a while ago: it was counted then.
            return
        new = CallView.from_message(msg)
        at = parse_ts(msg.get("occurred_at")) or now
        old = self._store(new, now)
        touched_agents = self._follow_agents(old, new, msg, at)
        if new.state in TALKING and new.agent and (old is None or old.agent != new.agent):
            # Newly connected (an answer, or a transfer of a connected call to this agent):
            # the same rule as the calls state machine's ``answered_by``, which the rebuild uses.
            self.credit_answer(new.call_id, new.agent, at)
        self._touch({old.queue if old else None, new.queue}, touched_agents)

    def _follow_agents(
        self, old: CallView | None, new: CallView, msg: Mapping[str, Any], at: datetime
    ) -> list[str]:
        call_id = new.call_id
        talking = new.state in TALKING
        talker = new.agent if talking else None
        offered = set(new.offered_to) if new.state not in FINISHED else set()
        ring_ended = set(msg.get("withdrawn_from") or ())
        if old is not None:
            ring_ended.update(old.offered_to)
        changed: list[str] = []
        for username in ring_ended - offered - {talker}:
            if self.agent(username).ring_over(call_id, at):
                changed.append(username)
        for username in offered - {talker}:
            if self.agent(username).ring(call_id, at):
                changed.append(username)
        # Whoever was on this call and no longer is (hung up, transferred away) wraps up.
        for username in {old.agent if old else None, new.agent} - {talker, None}:
            assert username is not None
            if self.agent(username).hang_up(call_id, at):
                self.agents[username].wrap_queue = new.queue
                changed.append(username)
        if talker is not None and self.agent(talker).talk(call_id, at):
            changed.append(talker)
        for username in changed:
            self.dirty_agents[username] = self.agents[username]
        return changed

    # -- pops --------------------------------------------------------------------------------

    def record_pop(self, call_id: str, agent: str, queue: str | None, latency_ms: float) -> None:
        """One pop pushed to an agent; a later push of the same call to them replaces it.
        ``queue`` None: the call's lane as known, else ``unrouted`` (it names no queue)."""
        if queue is None:
            view = self.calls.get(call_id)
            queue = lane_of(view.queue if view else None)
        pops = self._pops.setdefault(call_id, {})
        previous = pops.get(agent)
        if previous is not None:
            self.figures(previous[0]).latency.add_bucket(previous[1], -1)
        bucket = bucket_of(latency_ms)
        self.figures(queue).latency.add_bucket(bucket)
        pops[agent] = (queue, bucket)
        self._touch([queue])

    def apply_pop_pushed(self, msg: Mapping[str, Any], now: datetime | None = None) -> None:
        latency = msg.get("latency_ms")
        if not msg.get("call_id") or not msg.get("agent") or not isinstance(latency, int | float):
            return
        self.advance(now or datetime.now(UTC))
        self.record_pop(str(msg["call_id"]), str(msg["agent"]), msg.get("queue"), float(latency))

    # -- presence ----------------------------------------------------------------------------

    def agent(self, username: str) -> AgentView:
        view = self.agents.get(username)
        if view is None:
            view = self.agents[username] = AgentView(username)
        return view

    def load_agent(
        self,
        username: str,
        state: str,
        since: datetime | None,
        call_id: str | None,
        call_queue: str | None = None,
    ) -> None:
        """Rebuild: an agent's presence as persisted (``call_queue``: the queue of its call,
        whose ``wrap_up_s`` bounds a wrap-up)."""
        view = self.agent(username)
        view.state, view.since, view.call_id = state, since, call_id
        view.wrap_queue = call_queue if state == "wrap_up" else None
        self._touch((), [username])

    def apply_presence(self, msg: Mapping[str, Any], now: datetime | None = None) -> None:
        """Fold ``agent.connection``, ``agent.status``, ``agent.timeout`` and ``agent.pages``
        messages from channel ``presence``."""
        if msg.get("type") == "agent.pages":
            self._pages_seen(msg.get("usernames"), parse_ts(msg.get("at")) or now)
            return
        username = msg.get("username")
        if not username:
            return
        at = parse_ts(msg.get("at")) or now or datetime.now(UTC)
        self.advance(now or datetime.now(UTC))
        view = self.agent(str(username))
        kind = msg.get("type")
        if kind == "agent.connection":
            changed = view.connect(at) if msg.get("connected") else view.disconnect(at)
        elif kind == "agent.status":
            changed = view.set_status(str(msg.get("state")), at)
        elif kind == "agent.timeout":
            since = parse_ts(msg.get("since"))
            changed = view.time_out(str(msg.get("from")), since, str(msg.get("state")), at)
        else:
            return
        if changed:
            self.dirty_agents[view.username] = view
            self._touch((), [view.username])

    def _pages_seen(self, usernames: object, at: datetime | None) -> None:
        """An instance's heartbeat: these agents have a page open on it at ``at``."""
        if not isinstance(usernames, list) or at is None:
            return
        for username in usernames:
            view = self.agent(str(username))
            if view.page_seen_at is None or at > view.page_seen_at:
                view.page_seen_at = at

    # -- reading -----------------------------------------------------------------------------

    def snapshot(
        self,
        queues: Iterable[str] | None = None,
        agents: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Figures for ``queues`` and ``agents`` (None: all), in the ``GET /api/queues`` shape."""
        now = now or datetime.now(UTC)
        self.advance(now)
        names = sorted(self.queues if queues is None else set(queues))
        if agents is None:
            # Every agent whose presence ever changed or who handled a call today.
            known = {u for u, v in self.agents.items() if v.since is not None}
            usernames = sorted(known | set(self.handled))
        else:
            usernames = sorted(set(agents))
        health = {kind: 0 for kind in MATCH_KINDS}
        latency = LatencyHistogram()
        channels: dict[str, dict[str, int]] = {}
        rows = []
        for name in names:
            figures = self.queues.get(name) or QueueFigures()
            _add_channels(channels, figures.channels)
            for kind, n in figures.matches.items():
                health[kind] = health.get(kind, 0) + n
            latency.merge(figures.latency)
            rows.append(self._queue_row(name, figures, now))
        calls = sum(health.values())
        return {
            "day": self.day.isoformat(),
            "queues": rows,
            "channels": dict(sorted(channels.items())),
            "agents": [self._agent_row(u, now) for u in usernames],
            "pop_health": {
                "calls": calls,
                "match_rate": _ratio(health["single"] + health["multiple"], calls),
                "multi_match_rate": _ratio(health["multiple"], calls),
                "unmatched": health["none"],
                "withheld": health["withheld"],
                "pops": latency.total,
                "pop_p50_ms": latency.percentile(0.50),
                "pop_p95_ms": latency.percentile(0.95),
            },
        }

    def _queue_row(self, name: str, f: QueueFigures, now: datetime) -> dict[str, Any]:
        waiting = sorted(
            f.waiting.values(),
            key=lambda v: (v.entered_at or now, v.call_id),
        )
        waits: list[dict[str, Any]] = [
            {
                "call_id": v.call_id,
                "channel": v.channel,
                "caller": v.caller,
                "customer_name": v.customer_name,
                "value_tier": v.value_tier,
                "waiting_s": round(max(0.0, (now - (v.entered_at or now)).total_seconds()), 1),
            }
            for v in waiting
        ]
        threshold = self.service_level_s(name)
        over = sum(1 for w in waits if w["waiting_s"] > threshold)
        return {
            "name": name,
            "waiting": waits,
            "longest_wait_s": waits[0]["waiting_s"] if waits else 0.0,
            "offered": f.offered,
            "answered": f.answered,
            "abandoned": f.abandoned,
            "abandon_rate": _ratio(f.abandoned, f.offered),
            "channels": {k: dict(v) for k, v in sorted(f.channels.items())},
            # Answered within the threshold / (answered + abandoned after it + waiting past it).
            "service_level": _ratio(f.within_sl, f.answered + f.abandoned_late + over),
            "service_level_s": threshold,
            "waiting_over_threshold": over,
            "asa_s": round(f.wait_ms / f.answered / 1000, 1) if f.answered else None,
            "aht_s": round(f.handle_ms / f.handled / 1000, 1) if f.handled else None,
        }

    def _agent_row(self, username: str, now: datetime) -> dict[str, Any]:
        view = self.agents.get(username) or AgentView(username)
        return {
            "username": username,
            "state": view.state,
            "since": _iso(view.since),
            "in_state_s": round((now - view.since).total_seconds(), 1) if view.since else None,
            "call_id": view.call_id,
            "handled": self.handled.get(username, 0),
        }
