"""A day's queue figures by interval, read from the ``calls`` table (``GET /api/queues/history``).

Each call counts in the interval and queue it entered (``queued_at``, else ``answered_at``),
with the same rules as the live figures (``app.queues.call_view.contribution_of``): offered,
answered, abandoned, service level (answered within the threshold / answered + abandoned after
it + still waiting past it), ASA and AHT. Only intervals in which a call entered are listed.
Calls that name no queue count under ``unrouted`` (``app.queues.names``), as they do live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import csv_export
from app.calls.models import Call
from app.errors import Invalid
from app.queues.call_view import CallView, contribution_of
from app.queues.models import DEFAULT_SERVICE_LEVEL_S
from app.queues.names import in_lanes, lane_of

COLUMNS = (
    "start",
    "queue",
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "asa_s",
    "aht_s",
)


@dataclass(slots=True)
class _Sums:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    counted: int = 0  # the service level's denominator
    within_sl: int = 0
    wait_ms: int = 0
    handled: int = 0
    handle_ms: int = 0

    def row(self, start: datetime, queue: str) -> dict[str, Any]:
        return {
            "start": start.isoformat(),
            "queue": queue,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "service_level": round(self.within_sl / self.counted, 4) if self.counted else None,
            "asa_s": round(self.wait_ms / self.answered / 1000, 1) if self.answered else None,
            "aht_s": round(self.handle_ms / self.handled / 1000, 1) if self.handled else None,
        }


def check_interval(interval_min: int) -> timedelta:
    """The interval, if it divides a day into whole intervals of 1 minute to 24 hours."""
    if not 1 <= interval_min <= 1440 or 1440 % interval_min:
        raise Invalid(
            f"interval_min must divide a day (1440 minutes) evenly, e.g. 15, 30 or 60; "
            f"not {interval_min}"
        )
    return timedelta(minutes=interval_min)


async def day_history(
    session: AsyncSession,
    *,
    day: date,
    timezone: str,
    service_levels: dict[str, int],
    queues: frozenset[str] | None,
    interval_min: int = 15,
    now: datetime | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """``{"date", "intervals": [...]}`` for ``day`` in ``timezone``; ``queues`` None: all;
    ``channel`` (phone, chat, email, ...) only that channel's contacts, None: every one."""
    interval = check_interval(interval_min)
    tz = ZoneInfo(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    end = (datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)).astimezone(UTC)
    now = now or datetime.now(UTC)
    stmt = select(
        Call.id, Call.queue, Call.state, Call.queued_at, Call.answered_at, Call.ended_at
    ).where(
        # first_seen_at (when the event arrived) is indexed; a day either side covers calls
        # that began before midnight and events delivered late.
        Call.first_seen_at >= start - timedelta(days=1),
        Call.first_seen_at < end + timedelta(days=1),
    )
    if channel is not None:
        stmt = stmt.where(Call.channel == channel)
    if queues is not None:
        stmt = stmt.where(in_lanes(Call.queue, queues))
    sums: dict[tuple[int, str], _Sums] = {}
    for call_id, column, state, queued_at, answered_at, ended_at in await session.execute(stmt):
        queue = lane_of(column)
        view = CallView(call_id, queue, state, queued_at, answered_at, ended_at)
        entered = view.entered_at
        if entered is None or not start <= entered < end:
            continue
        level = service_levels.get(queue, DEFAULT_SERVICE_LEVEL_S)
        c = contribution_of(view, level)
        if c is None:
            continue
        s = sums.setdefault(((entered - start) // interval, queue), _Sums())
        waiting_over = view.waiting and (now - entered) > timedelta(seconds=level)
        s.offered += 1
        s.answered += c.answered
        s.abandoned += c.abandoned
        s.counted += c.answered + c.abandoned_late + waiting_over
        s.within_sl += c.within_sl
        s.wait_ms += c.wait_ms
        s.handled += c.handled
        s.handle_ms += c.handle_ms
    intervals = [
        s.row((start + n * interval).astimezone(tz), queue)
        for (n, queue), s in sorted(sums.items())
    ]
    return {"date": day.isoformat(), "intervals": intervals}


def as_csv(history: dict[str, Any]) -> str:
    """The intervals as CSV with a header row (empty cells for null figures)."""
    return csv_export.as_csv(COLUMNS, history["intervals"])
