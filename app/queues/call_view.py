"""One call as the queue statistics see it, and what it adds to its queue's figures.

``CallView.from_message`` reads a ``call.change`` message (``app.calls.pop.change_message``):
the live fold and the start-up rebuild (``app.queues.rebuild``) both come through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.queues.names import lane_of

FINISHED = ("ended", "abandoned")
_MS = timedelta(milliseconds=1)


def parse_ts(value: Any) -> datetime | None:
    """An ISO 8601 text (or datetime) as an aware UTC datetime; None for missing values."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ms(later: datetime, earlier: datetime) -> int:
    return max(0, (later - earlier) // _MS)


@dataclass(slots=True)
class CallView:
    """What the statistics keep of one call: the fields of its row that figures depend on.
    ``queue`` is the call's lane (``app.queues.names.lane_of``): a call that names no queue
    counts under ``unrouted``."""

    call_id: str
    queue: str
    state: str
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    agent: str | None = None
    offered_to: tuple[str, ...] = ()
    caller: dict[str, Any] = field(default_factory=dict)
    customer_name: str | None = None
    value_tier: str | None = None
    match_kind: str | None = None
    contribution: Contribution | None = None
    channel: str = "phone"

    @property
    def entered_at(self) -> datetime | None:
        """When the call entered its queue (answered directly: when it was answered)."""
        return self.queued_at or self.answered_at

    @property
    def waiting(self) -> bool:
        return self.state in ("queued", "ringing") and self.answered_at is None

    @classmethod
    def from_message(cls, msg: Mapping[str, Any]) -> CallView:
        """The view carried by a ``call.change`` message."""
        caller = msg.get("caller") or {}
        return cls(
            call_id=str(msg["call_id"]),
            queue=lane_of(msg.get("queue")),
            state=str(msg.get("state") or ""),
            channel=str(msg.get("channel") or "phone"),
            queued_at=parse_ts(msg.get("queued_at")),
            answered_at=parse_ts(msg.get("answered_at")),
            ended_at=parse_ts(msg.get("ended_at")),
            agent=msg.get("agent") or None,
            offered_to=tuple(msg.get("offered_to") or ()),
            caller={
                "raw": caller.get("raw"),
                "e164": caller.get("e164"),
                "national": caller.get("national"),
                "withheld": bool(caller.get("withheld")),
            },
            customer_name=msg.get("customer_name"),
            value_tier=msg.get("value_tier"),
            match_kind=msg.get("match_kind"),
        )


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one call adds to its queue's figures for the day it entered."""

    queue: str
    answered: bool
    abandoned: bool
    # Abandoned after waiting longer than the queue's threshold (counts against the level).
    abandoned_late: bool
    within_sl: bool
    wait_ms: int
    handled: bool
    handle_ms: int
    match_kind: str | None
    channel: str = "phone"


def contribution_of(view: CallView, service_level_s: int) -> Contribution | None:
    if view.entered_at is None:
        return None
    answered = view.answered_at is not None
    finished = view.state in FINISHED or view.ended_at is not None
    wait_ms = _ms(view.answered_at, view.entered_at) if view.answered_at else 0
    handled = view.answered_at is not None and view.ended_at is not None
    abandoned = finished and not answered
    waited_ms = _ms(view.ended_at, view.entered_at) if view.ended_at else 0
    return Contribution(
        queue=view.queue,
        answered=answered,
        abandoned=abandoned,
        abandoned_late=abandoned and waited_ms > service_level_s * 1000,
        within_sl=answered and wait_ms <= service_level_s * 1000,
        wait_ms=wait_ms,
        handled=handled,
        handle_ms=_ms(view.ended_at, view.answered_at) if view.ended_at and view.answered_at else 0,
        match_kind=view.match_kind,
        channel=view.channel,
    )
