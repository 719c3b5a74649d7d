"""The defection rule on arrays (no database): defection days, rounding, one row per day."""

from __future__ import annotations

import numpy as np

from app.reports.defection import PurchaseDays, defection_days, month_figures


def _days(*rows: tuple[int, int]) -> PurchaseDays:
    customer = np.asarray([c for c, _ in rows], dtype=np.int64)
    day = np.asarray([d for _, d in rows], dtype=np.int64)
    return PurchaseDays.of(customer, day, np.zeros(len(rows), dtype=np.int64))


def test_purchase_days_are_sorted_and_distinct() -> None:
    days = _days((7, 30), (3, 12), (7, 10), (7, 30), (3, 12))
    assert days.customer.tolist() == [3, 7, 7] and days.day.tolist() == [12, 10, 30]
    assert days.customers == 2


def test_defection_days_follow_the_usual_interval() -> None:
    # Customer 1: one day (60 d default) -> 100 + 180; then 110 (gap 10 -> 30 d); then 111
    # (11 / 2 = 5.5 d, at least 7 -> 21 d). Customer 2: 0, 10, 20, 31: 31 / 3 d x 3 = 31 d.
    days = _days((1, 100), (1, 110), (1, 111), (2, 0), (2, 10), (2, 20), (2, 31))
    assert defection_days(days, 3).tolist() == [280, 140, 132, 180, 40, 50, 62]
    # 1.1 x 10 days is 11 days (not 12 through floating point).
    assert defection_days(_days((1, 0), (1, 10)), 1.1).tolist() == [66, 21]


def test_nothing_to_count() -> None:
    figures = month_figures(_days(), 1, 15_000, 3)
    assert figures.rows() == [] and figures.active_start.shape == (1, 1)
