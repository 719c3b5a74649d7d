"""Pop latency percentiles from a fixed log-bucket histogram: O(1) add and remove, mergeable."""

from __future__ import annotations

import math

# Buckets grow by 5 % from 0.1 ms: a percentile is exact to within 5 %, which is far finer
# than anyone reads a wallboard, and two histograms fed the same values are always equal
# whatever the order (a sampled reservoir would not be, and replay must equal live).
_BASE_MS = 0.1
_RATIO = 1.05
_BUCKETS = 300  # 0.1 ms * 1.05**300 ≈ 2.3e5 s: nothing real falls beyond the last bucket
_LOG_RATIO = math.log(_RATIO)


def bucket_of(latency_ms: float) -> int:
    """The bucket index that holds ``latency_ms``."""
    if latency_ms <= _BASE_MS:
        return 0
    index = math.ceil(math.log(latency_ms / _BASE_MS) / _LOG_RATIO - 1e-9)
    return min(index, _BUCKETS - 1)


def bucket_upper_ms(index: int) -> float:
    """The upper bound of bucket ``index`` in milliseconds: what a percentile reports."""
    return _BASE_MS * _RATIO**index


class LatencyHistogram:
    """Counts of latencies per bucket."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.total = 0

    def add_bucket(self, index: int, n: int = 1) -> None:
        self.counts[index] += n
        self.total += n

    def merge(self, other: LatencyHistogram) -> None:
        """Add every count of ``other`` into this one."""
        if other.total == 0:
            return
        counts = self.counts
        for i, n in enumerate(other.counts):
            if n:
                counts[i] += n
        self.total += other.total

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) as a bucket upper bound, rounded to 0.1 ms; None if empty."""
        if self.total == 0:
            return None
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return round(bucket_upper_ms(i), 1)
        return round(bucket_upper_ms(_BUCKETS - 1), 1)
