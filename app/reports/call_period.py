"""The local days a call report covers, and local midnights as UTC instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_MONTHS = 12


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of ``day`` in ``tz``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``start`` .. ``end`` (inclusive) in ``tz``."""

    start: date
    end: date
    tz: ZoneInfo

    @classmethod
    def of(cls, start: date | None, end: date | None, timezone: str, now: datetime) -> Period:
        """The days asked for; by default up to today (at ``now``), from the first of the
        month eleven months before the end's (the last twelve months). Check the range first."""
        tz = ZoneInfo(timezone)
        today = now.astimezone(tz).date()
        last = end or max(today, start or today)
        first = start or add_months(last, 1 - DEFAULT_MONTHS)
        return cls(first, last, tz)

    @property
    def after(self) -> date:
        """The day after ``end``."""
        return self.end + timedelta(days=1)

    def bounds(self) -> tuple[datetime, datetime]:
        """``[start, end]`` as UTC instants, the end exclusive (the next local midnight)."""
        return local_midnight(self.start, self.tz), local_midnight(self.after, self.tz)

    def about(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}
