"""Failed sign-ins counted per username and per client address, in this process.

A username with ``per_user`` failures in the last ``window_s`` seconds, or an address with
``per_address``, is refused (429 with ``Retry-After``) until its oldest failure in the window
ages out. A successful sign-in clears its username's failures. Counts are per instance:
behind a load balancer with N instances an attacker gets up to N times the budget.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Keys remembered per kind; the least recently failed are forgotten beyond this.
MAX_KEYS = 10_000


class _Window:
    """Failure times per key within a sliding window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        times = self._failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[-self.limit] + self.window_s - now

    def fail(self, key: str, now: float) -> None:
        times = self._failures.pop(key, None) or deque(maxlen=self.limit)
        times.append(now)
        self._failures[key] = times
        if len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginLimiter:
    """``per_user`` failures per username and ``per_address`` per address in ``window_s``."""

    def __init__(
        self,
        per_user: int,
        per_address: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = _Window(per_user, window_s)
        self._addresses = _Window(per_address, window_s)
        self._clock = clock

    def retry_after(self, username: str, address: str) -> int:
        """Whole seconds until this sign-in may be tried (0: it may be tried now)."""
        now = self._clock()
        wait = max(
            self._users.retry_after(username, now), self._addresses.retry_after(address, now)
        )
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        self._users.fail(username, now)
        self._addresses.fail(address, now)

    def succeeded(self, username: str) -> None:
        self._users.clear(username)
