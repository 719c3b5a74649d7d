"""The scenario day's own book: what the simulated PBX sent, and the supervisor figures counted
from it by hand, with the definitions of docs/supervisors.md, not with the app's code.

Each call's facts follow from the events the PBX sent in order (first queue event, first
answer, the end) and, for a call whose end was lost, from the ``expired`` entry the journal
holds for it (its time is the sweeper's to choose).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MS = timedelta(milliseconds=1)


def whole_ms(later: datetime, earlier: datetime) -> int:
    """Durations are counted in whole milliseconds (docs/supervisors.md)."""
    return max(0, (later - earlier) // MS)


@dataclass
class CallRecord:
    """One call as the PBX played it."""

    call_id: str  # the provider's id; screenpop's is ``generic:<call_id>``
    queue: str
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    # The end was never sent: the call must be closed by expiry.
    lost: bool = False
    # Agents connected to the call (answered it, or a connected call transferred to them).
    connected: list[str] = field(default_factory=list)
    # Agents the call rang or was transferred to: the only ones who may get its pop.
    reached: set[str] = field(default_factory=set)

    @property
    def full_id(self) -> str:
        return f"generic:{self.call_id}"

    @property
    def entered_at(self) -> datetime | None:
        return self.queued_at or self.answered_at


@dataclass
class Book:
    """Every call the PBX started, and the wrap-ups agents posted."""

    calls: dict[str, CallRecord] = field(default_factory=dict)
    wrapups: dict[str, int] = field(default_factory=dict)

    def record(self, rec: CallRecord) -> CallRecord:
        self.calls[rec.call_id] = rec
        return rec

    def sent(
        self, rec: CallRecord, kind: str, at: datetime, agent: str | None = None,
        withdrawn: bool = False,
    ) -> None:  # fmt: skip
        """Book an event screenpop accepted (202)."""
        if kind in ("queued", "offered") and not withdrawn:
            rec.queued_at = rec.queued_at or at
        if kind == "offered" and agent:
            rec.reached.add(agent)
        if kind == "answered":
            rec.answered_at = rec.answered_at or at
            if agent and (not rec.connected or rec.connected[-1] != agent):
                rec.connected.append(agent)
            if agent:
                rec.reached.add(agent)
        if kind == "transferred" and agent:
            # A connected call transferred: the new agent is connected at once.
            rec.connected.append(agent)
            rec.reached.add(agent)
        if kind == "ended":
            rec.ended_at = at

    def lost_calls(self) -> set[str]:
        return {r.full_id for r in self.calls.values() if r.lost}

    def final_states(self) -> dict[str, str]:
        """Every call's state at the end of the day: ended, or abandoned (never answered and
        ended by the PBX; an expired call is ``ended`` either way)."""
        return {
            r.full_id: "abandoned" if r.answered_at is None and not r.lost else "ended"
            for r in self.calls.values()
        }

    def handled(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.calls.values():
            for agent in set(rec.connected):
                out[agent] = out.get(agent, 0) + 1
        return out


@dataclass
class Sums:
    """One queue's (or interval's) counts, from the calls that entered it."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    abandoned_late: int = 0
    within: int = 0
    wait_ms: int = 0
    handled: int = 0
    handle_ms: int = 0
    waiting: list[tuple[datetime, str]] = field(default_factory=list)

    def add(self, rec: CallRecord, end: datetime | None, level_s: int) -> None:
        entered = rec.entered_at
        assert entered is not None
        self.offered += 1
        if rec.answered_at is not None:
            self.answered += 1
            wait = whole_ms(rec.answered_at, entered)
            self.wait_ms += wait
            self.within += wait <= level_s * 1000
            if end is not None:
                self.handled += 1
                self.handle_ms += whole_ms(end, rec.answered_at)
        elif end is not None:
            self.abandoned += 1
            self.abandoned_late += whole_ms(end, entered) > level_s * 1000
        else:
            self.waiting.append((entered, rec.full_id))

    def over(self, level_s: int, now: datetime) -> int:
        """Callers waiting at ``now`` for longer than the threshold."""
        return sum(1 for entered, _ in self.waiting if now - entered > timedelta(seconds=level_s))

    def level(self, over: int) -> float | None:
        counted = self.answered + self.abandoned_late + over
        return round(self.within / counted, 4) if counted else None

    def figures(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "abandon_rate": round(self.abandoned / self.offered, 4) if self.offered else None,
            "asa_s": round(self.wait_ms / self.answered / 1000, 1) if self.answered else None,
            "aht_s": round(self.handle_ms / self.handled / 1000, 1) if self.handled else None,
        }


@dataclass
class HandCount:
    """The book counted for one local day, given the expiries the journal holds."""

    book: Book
    expiries: dict[str, datetime]
    tz: ZoneInfo
    day: date
    levels: dict[str, int]

    def _end(self, rec: CallRecord) -> datetime | None:
        return rec.ended_at or self.expiries.get(rec.full_id)

    def _today(self) -> list[CallRecord]:
        return [
            r
            for r in self.book.calls.values()
            if r.entered_at is not None and r.entered_at.astimezone(self.tz).date() == self.day
        ]

    def queues(self) -> dict[str, Sums]:
        sums: dict[str, Sums] = {q: Sums() for q in self.levels}
        for rec in self._today():
            sums.setdefault(rec.queue, Sums()).add(rec, self._end(rec), self.levels[rec.queue])
        return sums

    def history(self, interval_min: int, now: datetime) -> list[dict[str, Any]]:
        """``GET /api/queues/history`` rows for the day, by interval and queue."""
        start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=self.tz)
        step = timedelta(minutes=interval_min)
        sums: dict[tuple[int, str], Sums] = {}
        for rec in self._today():
            assert rec.entered_at is not None
            n = (rec.entered_at - start) // step
            sums.setdefault((n, rec.queue), Sums()).add(rec, self._end(rec), self.levels[rec.queue])
        rows = []
        for (n, queue), s in sorted(sums.items()):
            over = s.over(self.levels[queue], now)
            rows.append(
                {
                    "start": (start + n * step).isoformat(),
                    "queue": queue,
                    **{k: v for k, v in s.figures().items() if k != "abandon_rate"},
                    "service_level": s.level(over),
                }
            )
        return rows


def check_queue(name: str, got: dict[str, Any], want: Sums, level_s: int,
                between: tuple[datetime, datetime]) -> None:  # fmt: skip
    """``got`` (a queue of ``GET /api/queues``) agrees with the hand count.

    Who waits past the threshold depends on the moment the server looked, somewhere in
    ``between`` (a request's send and its answer): the count must lie within what the hand
    count gives at either end, and the service level must be the one that count gives.
    """
    expected = {**want.figures(), "service_level_s": level_s}
    assert {k: got[k] for k in expected} == expected, name
    assert [w["call_id"] for w in got["waiting"]] == [c for _, c in sorted(want.waiting)], name
    # waiting_s is rounded to 0.1 s before it is compared with the threshold.
    lo = want.over(level_s, between[0] - timedelta(milliseconds=50))
    hi = want.over(level_s, between[1] + timedelta(milliseconds=50))
    over = got["waiting_over_threshold"]
    assert lo <= over <= hi, (name, lo, over, hi)
    assert got["service_level"] == want.level(over), name


def utc(moment: datetime) -> datetime:
    """A moment to whole milliseconds, in UTC (what the PBX stamps its events with)."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
