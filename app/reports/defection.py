"""Retention and defection per month and segment, from customers' purchase days (pure NumPy).

The rule (written out in docs/reports.md, "Retention and defection"): after each purchase day
the customer's usual interval is the mean gap between their purchase days so far
(``segments.usual_interval``: at least ``MIN_INTERVAL_DAYS``, ``DEFAULT_INTERVAL_DAYS`` after
the first); they defect on the day ``N`` usual intervals (rounded up to whole days) have
passed since that purchase, unless they bought again before that day. A purchase on or after
it wins them back. Days are whole UTC days numbered from 1970-01-01; months are numbered from
1970-01 (``month_of``).

Every step is a sort or a group-by over one row per (customer, purchase day), so a million
customers with several million purchase days take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from app.insights.history import Ints
from app.insights.segments import DEFAULT_INTERVAL_DAYS, usual_interval

# A rounding guard: 1.1 x 10 days is 11.000000000000002 in floating point; it rounds up to 11.
ROUNDING_SLACK = 1e-9
NEVER = np.int64(2**40)  # "no next purchase": a day after any real one
DAY_BITS = 21


def month_of(days: Ints) -> Ints:
    """Months since 1970-01 of day numbers."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_date(month: int) -> date:
    """The first day of a month number."""
    return date(1970 + month // 12, month % 12 + 1, 1)


def first_day_of(months: Ints) -> Ints:
    """Day number of each month's first day."""
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class PurchaseDays:
    """One row per customer and distinct purchase day, sorted by customer then day."""

    customer: Ints  # any integer id, e.g. the database id
    day: Ints
    segment: Ints  # the customer's segment code, on each of their rows

    @property
    def customers(self) -> int:
        """How many customers have a purchase day."""
        return int(np.count_nonzero(self.customer[1:] != self.customer[:-1])) + (len(self.day) > 0)

    @classmethod
    def of(cls, customer: Ints, day: Ints, segment: Ints) -> PurchaseDays:
        """Sort and keep one row per (customer, day) from unordered purchases."""
        # One int64 key (customer, then day within 2**21 days) sorts faster than a lexsort.
        key = (customer << DAY_BITS) | (day - (day.min() if len(day) else 0))
        order = np.argsort(key)
        key = key[order]
        keep = np.ones(len(key), dtype=np.bool_)
        keep[1:] = key[1:] != key[:-1]
        rows = order[keep]
        return cls(customer[rows], day[rows], segment[rows])


@dataclass(frozen=True)
class MonthFigures:
    """Counts per (segment code, month): arrays of shape (segments, months)."""

    first_month: int  # month number of column 0
    active_start: Ints
    defected: Ints
    new: Ints
    won_back: Ints

    def rows(self) -> list[tuple[int, int, int, int, int, int]]:
        """(segment code, month number, active_start, defected, new, won_back), non-empty only."""
        out = []
        stacked = np.stack([self.active_start, self.defected, self.new, self.won_back])
        for s, m in zip(*np.nonzero(stacked.any(axis=0)), strict=True):
            a, d, n, w = (int(x) for x in stacked[:, s, m])
            out.append((int(s), self.first_month + int(m), a, d, n, w))
        return out


def defection_days(purchases: PurchaseDays, intervals: float) -> Ints:
    """For each purchase row: the day the customer defects if they do not buy again before it."""
    c, d = purchases.customer, purchases.day
    first = np.ones(len(d), dtype=np.bool_)
    first[1:] = c[1:] != c[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    gaps = np.arange(len(d)) - starts[group]  # purchase days so far, minus one
    span = (d - d[starts][group]).astype(np.float64)
    usual = usual_interval(span, gaps, DEFAULT_INTERVAL_DAYS)
    return d + np.ceil(intervals * usual - ROUNDING_SLACK).astype(np.int64)


def month_figures(
    purchases: PurchaseDays, n_segments: int, last_day: int, intervals: float
) -> MonthFigures:
    """Active at each month's start, defected, new and won back, per segment and month, for the
    months from the first purchase to ``last_day``'s (a defection after ``last_day`` has not
    happened yet)."""
    c, d, seg = purchases.customer, purchases.day, purchases.segment
    last_month = int(month_of(np.asarray([last_day], dtype=np.int64))[0])
    month = month_of(d)
    first_month = int(month.min()) if len(d) else last_month
    month -= first_month
    n_months = last_month - first_month + 1
    shape = _Shape(n_segments, n_months)
    last = np.ones(len(d), dtype=np.bool_)
    last[:-1] = c[1:] != c[:-1]
    first = np.ones(len(d), dtype=np.bool_)
    first[1:] = last[:-1]
    next_day = np.where(last, NEVER, np.roll(d, -1))
    defect_on = defection_days(purchases, intervals)
    # Defects: no purchase before the defection day, and that day has come.
    defects = (next_day >= defect_on) & (defect_on <= last_day)
    # The purchase after a defection (row + 1) wins the customer back, in its month.
    won = np.flatnonzero(defects & ~last)
    return MonthFigures(
        first_month=first_month,
        active_start=_active_at_start(purchases, next_day, defect_on, last_day, first_month, shape),
        defected=_defected(purchases, month, defect_on, defects, first_month, shape),
        new=shape.count(seg[first], month[first]),
        won_back=shape.distinct(c[won], seg[won], month[won + 1]),
    )


@dataclass(frozen=True)
class _Shape:
    segments: int
    months: int

    def count(self, segment: Ints, month: Ints) -> Ints:
        """How many rows fall in each (segment, month)."""
        flat = np.bincount(segment * self.months + month, minlength=self.segments * self.months)
        return flat.astype(np.int64).reshape(self.segments, self.months)

    def distinct(self, customer: Ints, segment: Ints, month: Ints) -> Ints:
        """How many distinct customers in each (segment, month)."""
        _, once = np.unique(customer * self.months + month, return_index=True)
        return self.count(segment[once], month[once])


def _active_at_start(
    purchases: PurchaseDays,
    next_day: Ints,
    defect_on: Ints,
    last_day: int,
    first_month: int,
    shape: _Shape,
) -> Ints:
    """Customers who bought before each month and had not defected by its first day.

    A purchase day ``d`` speaks for the months whose first day ``m0`` has ``d < m0``, no
    purchase since (``m0 <= next``) and no defection yet (``m0 <= defection day``): one range
    of months per row, summed with a difference array.
    """
    d, seg = purchases.day, purchases.segment
    until = np.minimum(np.minimum(next_day, defect_on), last_day)
    lo = month_of(d) - first_month + 1
    hi = month_of(until) - first_month  # inclusive
    keep = lo <= hi
    width = shape.months + 1
    size = shape.segments * width
    steps = np.bincount(seg[keep] * width + lo[keep], minlength=size) - np.bincount(
        seg[keep] * width + hi[keep] + 1, minlength=size
    )
    return np.cumsum(steps.reshape(shape.segments, width), axis=1)[:, : shape.months]


def _defected(
    purchases: PurchaseDays,
    month: Ints,
    defect_on: Ints,
    defects: np.ndarray,
    first_month: int,
    shape: _Shape,
) -> Ints:
    """Customers active at a month's start who defected during it (each counted once).

    A defection after a purchase in an earlier month: that purchase made them active at the
    start. After a purchase in the same month (a short usual interval): they count only if the
    purchase before that month left them active at its start.
    """
    c, seg = purchases.customer, purchases.segment
    rows = np.flatnonzero(defects)
    event_month = month_of(defect_on[rows]) - first_month
    # The customer's last purchase before the month of each row: one before its month's first.
    opens = np.ones(len(c), dtype=np.bool_)
    opens[1:] = (c[1:] != c[:-1]) | (month[1:] != month[:-1])
    group_start = np.maximum.accumulate(np.where(opens, np.arange(len(c)), 0))
    before = group_start[rows] - 1
    has_before = (before >= 0) & (c[np.maximum(before, 0)] == c[rows])
    month_start = first_day_of(event_month + first_month)
    active_then = has_before & (defect_on[np.maximum(before, 0)] >= month_start)
    counted = (month[rows] < event_month) | active_then
    rows, event_month = rows[counted], event_month[counted]
    return shape.distinct(c[rows], seg[rows], event_month)
