"""A circuit breaker per source: after N failures in a row the source is skipped for a while.

Closed: every call goes through. After ``failures`` consecutive failures it opens: calls are
refused at once for ``open_s`` seconds. Then one trial call goes through (half-open): success
closes it, failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    def __init__(
        self, failures: int, open_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.open_s = open_s
        self.clock = clock
        self.failed = 0
        self.opened_at: float | None = None
        self.trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.open_s else "open"

    def allow(self) -> bool:
        """True when a call may go out now (in half-open, only one at a time)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self.trial:
            self.trial = True
            return True
        return False

    def success(self) -> None:
        self.failed = 0
        self.opened_at = None
        self.trial = False

    def failure(self) -> None:
        self.failed += 1
        self.trial = False
        if self.opened_at is not None or self.failed >= self.failures:
            self.opened_at = self.clock()
