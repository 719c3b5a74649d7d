"""The computed frequency programme on a small hand-made history; every number worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from app.insights import segments
from app.insights.history import History, to_day
from app.insights.loyalty import frequency_programme

NOW_AT = datetime(2011, 12, 10, tzinfo=UTC)
NOW = to_day(NOW_AT)
# (customer, days before NOW, [(qty, unit price)]): one order each; a negative qty is a return.
ORDERS: list[tuple[int, float, list[tuple[int, float]]]] = [
    # 0: the docs' example: 600 and 500 in the window, 100 returned, 2,000 thirteen months ago.
    (0, 395, [(20, 100.0)]),
    (0, 300, [(6, 100.0)]),
    (0, 60, [(3, 100.0), (2, 100.0)]),  # two lines, one order
    (0, 30, [(-1, 100.0)]),
    # 1: twelve orders of 10: gold by frequency, only 120 points.
    *[(1, 10.0 + 20 * k, [(1, 10.0)]) for k in range(12)],
    # 2: one order of 5,000.50: gold by spend.
    (2, 100, [(1, 5000.5)]),
    # 3: three orders of 100 (one of them two lines): bronze.
    (3, 200, [(1, 100.0)]),
    (3, 150, [(1, 60.0), (1, 40.0)]),
    (3, 5, [(2, 50.0)]),
    # 4: bought only 400 days ago: no tier.
    (4, 400, [(1, 999.0)]),
    # 5: one order of 10 and a 50 return: bronze, spend floored at 0.
    (5, 40, [(1, 10.0)]),
    (5, 20, [(-1, 50.0)]),
    # 6: exactly 365 days ago (in), and 365.5 days ago (out).
    (6, 365.5, [(1, 7.0)]),
    (6, 365.0, [(1, 3.0)]),
]
N_CUSTOMERS = 7


def _history() -> History:
    rows = [
        (cust, n, NOW - ago, qty, price)
        for n, (cust, ago, lines) in enumerate(ORDERS)
        for qty, price in lines
    ]
    c, o, d, q, p = (list(column) for column in zip(*rows, strict=True))
    return History(
        customer_ids=np.arange(N_CUSTOMERS) + 1,
        external_refs=[str(k) for k in range(N_CUSTOMERS)],
        consent=np.ones(N_CUSTOMERS, dtype=bool),
        skus=["10000"], names=["A THING"], is_product=np.ones(1, dtype=bool),
        line_customer=np.asarray(c), line_item=np.zeros(len(rows), dtype=np.int64),
        line_order=np.asarray(o), line_day=np.asarray(d, dtype=float), line_qty=np.asarray(q),
        line_price=np.asarray(p, dtype=float), line_return=np.asarray(q) < 0,
    )  # fmt: skip


def _day(ago: float) -> str:
    return (NOW_AT - timedelta(days=ago)).date().isoformat()


def test_the_rule_customer_by_customer() -> None:
    programme = frequency_programme(_history(), NOW)
    got = {c: programme.details(c) for c in range(N_CUSTOMERS)}
    figures = {c: (d["tier"], d["orders_12m"], d["spend_12m"], d["points"]) for c, d in got.items()}
    assert figures == {
        0: ("silver", 2, 1000.0, 1000),  # 600 + 500 - 100; the 2,000 order is 13 months old
        1: ("gold", 12, 120.0, 120),
        2: ("gold", 1, 5000.5, 5000),
        3: ("bronze", 3, 300.0, 300),
        4: (None, 0, 0.0, 0),
        5: ("bronze", 1, 0.0, 0),  # 10 - 50 is below 0: floored
        6: ("bronze", 1, 3.0, 3),
    }
    # Member since the first purchase ever, in or out of the window.
    assert got[0]["since"] == _day(395)
    assert got[4]["since"] == _day(400)
    assert got[5]["since"] == _day(40)  # a return is not a purchase
    assert got[0]["window_end"] == NOW_AT.isoformat()


def test_eleven_orders_and_4999_stay_silver() -> None:
    orders = [(0, 10.0 + k, [(1, 4999.0 / 11)]) for k in range(11)]
    c = [cust for cust, _, _ in orders]
    history = History(
        customer_ids=np.asarray([1]), external_refs=["1"], consent=np.ones(1, dtype=bool),
        skus=["10000"], names=["A THING"], is_product=np.ones(1, dtype=bool),
        line_customer=np.asarray(c), line_item=np.zeros(11, dtype=np.int64),
        line_order=np.arange(11), line_day=np.asarray([NOW - ago for _, ago, _ in orders]),
        line_qty=np.ones(11, dtype=np.int64), line_price=np.full(11, 4999.0 / 11),
        line_return=np.zeros(11, dtype=bool),
    )  # fmt: skip
    details = frequency_programme(history, NOW).details(0)
    assert (details["tier"], details["orders_12m"], details["points"]) == ("silver", 11, 4999)


def test_train_keeps_the_programme_in_the_insight_details() -> None:
    insights, _ = segments.compute(_history(), NOW, np.arange(N_CUSTOMERS, dtype=np.int64))
    assert insights[0].details["loyalty"]["tier"] == "silver"
    assert insights[2].details["loyalty"]["points"] == 5000
    assert insights[4].details["loyalty"]["tier"] is None
