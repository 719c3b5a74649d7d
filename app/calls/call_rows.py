"""The row each call's last event wrote in this process, for its next event (PostgreSQL).

An event's first statement reads the call's row (``one_trip.read``); the write that follows
returns the row as written, in the same shape, so the call's next event can plan on it and
skip the read: the pop on offer then costs one round trip to the database, not two.

Nothing here has to be right for the outcome to be right. The write is conditional on the
version the plan was made on, so a row that changed since (another instance took an event
of the call, a pop update, the agent chose a match) makes the write change nothing; the event
then reads the row and plans again (``CallService._optimistic``). Rows are dropped when a
``call.change`` from another instance reports a newer version, so instances sharing the load
through Redis rarely try a stale one. A row is taken out when an event uses it: two events of
one call at once never plan on the same copy. A call that ended or was abandoned is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

# Calls whose rows are kept: the calls of the last few minutes of a busy centre.
MAX_ROWS = 4096


class CallRows:
    """At most ``size`` rows, the least recently written dropped first."""

    def __init__(self, size: int = MAX_ROWS) -> None:
        self.size = size
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, call_id: str) -> dict[str, Any] | None:
        """The call's row as this process last wrote it, removed; None if not kept."""
        return self._rows.pop(call_id, None)

    def put(self, call_id: str, row: dict[str, Any]) -> None:
        self._rows[call_id] = row
        self._rows.move_to_end(call_id)
        if len(self._rows) > self.size:
            self._rows.popitem(last=False)

    def changed(self, call_id: str, version: int) -> None:
        """The call is at ``version`` now (reported by a ``call.change``): drop an older row."""
        row = self._rows.get(call_id)
        if row is not None and row["version"] < version:
            del self._rows[call_id]
