"""Segment, stage, churn, satisfaction and treatment rules on hand-made customers (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from app.insights import segments
from app.insights.history import History, is_product_code, to_day

NOW = to_day(datetime(2011, 11, 1, tzinfo=UTC))
TH = segments.Thresholds(tier_high=5000, tier_medium=1000, spread_median=10, interval_median=30)


def _history(
    orders: list[tuple[int, float, list[tuple[int, int, float]]]], n_customers: int
) -> History:
    """orders: (customer, days before NOW, [(item, qty, price)]); a negative qty is a return."""
    c, i, o, d, q, p, r = [], [], [], [], [], [], []
    for n, (cust, ago, lines) in enumerate(orders):
        for item, qty, price in lines:
            c.append(cust), i.append(item), o.append(n), d.append(NOW - ago)
            q.append(qty), p.append(price), r.append(qty < 0)
    skus = [f"{10000 + k}" for k in range(40)]
    return History(
        customer_ids=np.arange(n_customers) + 1,
        external_refs=[str(k) for k in range(n_customers)],
        consent=np.ones(n_customers, dtype=bool),
        skus=skus,
        names=skus,
        is_product=np.ones(len(skus), dtype=bool),
        line_customer=np.asarray(c), line_item=np.asarray(i), line_order=np.asarray(o),
        line_day=np.asarray(d, dtype=float), line_qty=np.asarray(q),
        line_price=np.asarray(p, dtype=float), line_return=np.asarray(r, dtype=bool),
    )  # fmt: skip


def test_hand_made_customers_land_in_their_segments() -> None:
    orders: list[tuple[int, float, list[tuple[int, int, float]]]] = []
    # 0 loyal: every 14 days for a year, the same three products at the usual price.
    orders += [(0, 7 + 14 * k, [(1, 12, 2.0), (2, 12, 3.0), (3, 6, 1.0)]) for k in range(26)]
    # 1 wandering: a single order long ago.
    orders += [(1, 200, [(4, 2, 5.0)])]
    # 2 discount: regular, but always below the price everybody else pays.
    orders += [(2, 10 + 30 * k, [(1, 100, 1.0), (2, 100, 1.5)]) for k in range(6)]
    # 3 impulsive: wide baskets of products never bought again, and many returns.
    orders += [(3, 5 + 20 * k, [(10 + 4 * k + j, 1, 4.0) for j in range(4)]) for k in range(5)]
    orders += [(3, 4, [(10, -1, 4.0), (11, -1, 4.0), (14, -1, 4.0)])]
    # 4 need-based: comes back every two months for the same two things.
    orders += [(4, 20 + 60 * k, [(5, 10, 2.0), (6, 10, 2.0)]) for k in range(5)]
    insights, th = segments.compute(_history(orders, 5), NOW, np.arange(5))

    assert insights[0].segment == "loyal"
    assert insights[1].segment == "wandering"
    assert insights[2].segment == "discount"
    assert insights[3].segment == "impulsive"
    assert insights[4].segment == "need-based"
    assert insights[0].stage == "commitment" and insights[0].churn_risk < 0.2
    assert insights[1].stage == "dissolution" and insights[1].churn_risk > 0.9
    assert "Retention" in insights[1].treatment
    # CLV: historic is the net spend; the loyal customer has the largest forward value.
    assert insights[1].clv_historic == 10.0
    assert insights[1].clv_forecast < 1.0  # lapsed: hardly any forward value
    assert insights[0].clv_forecast > 1000
    # The discount buyer spends the most per year: top of the five (top 20%).
    assert insights[2].value_tier == "high" and insights[1].value_tier == "low"
    assert insights[0].details["repeat_share"] == 1.0
    assert th.tier_high >= th.tier_medium


def test_rules_one_by_one() -> None:
    seg = segments.segment_of
    assert seg(1, 10, 30, 0, 3, 0, 0, TH) == "wandering"
    assert seg(4, 200, 30, 0.5, 3, 0, 0, TH) == "wandering"  # lapsed, few orders
    assert seg(8, 10, 30, 0.5, 3, 0, 0.9, TH) == "discount"
    assert seg(8, 10, 30, 0.5, 3, 0, 0.1, TH) == "loyal"
    assert seg(4, 10, 30, 0.1, 20, 0, 0.1, TH) == "impulsive"
    assert seg(4, 10, 30, 0.5, 20, 0.2, 0.1, TH) == "impulsive"  # returns a lot
    assert seg(4, 10, 30, 0.6, 3, 0, 0.1, TH) == "need-based"

    assert segments.stage_of(1, 20, 0.1, False) == "exploration"
    assert segments.stage_of(3, 200, 0.1, False) == "awareness"
    assert segments.stage_of(9, 400, 0.1, True) == "expansion"
    assert segments.stage_of(9, 400, 0.1, False) == "commitment"
    assert segments.stage_of(9, 400, 0.8, True) == "dissolution"


def test_churn_risk_grows_with_missed_intervals() -> None:
    risk = segments.churn_risk(np.array([0.0, 30.0, 60.0, 120.0]), np.array([30.0] * 4))
    assert risk[0] == 0.0
    assert abs(risk[2] - 0.5) < 1e-9  # twice the usual gap
    assert list(risk) == sorted(risk) and risk[3] > 0.9


def test_satisfaction_trend() -> None:
    assert segments.satisfaction_trend([]) == "none"
    assert segments.satisfaction_trend([4]) == "steady"
    assert segments.satisfaction_trend([2, 2, 4, 5]) == "improving"
    assert segments.satisfaction_trend([5, 5, 3, 2]) == "declining"
    assert segments.satisfaction_trend([4, 3, 3, 4, 4]) == "steady"


def test_treatments_an_agent_can_act_on() -> None:
    t = segments.treatment_for
    assert t("high", "commitment", False, "loyal", "declining", True, 5, 30).startswith(
        "Priority handling"
    )
    assert t("high", "commitment", False, "loyal", "steady", True, 5, 30).startswith(
        "Priority service"
    )
    assert t("low", "dissolution", False, "loyal", "none", True, 90, 14).startswith(
        "Retention: no order for 13 weeks, usually every 2 weeks"
    )
    assert t("medium", "expansion", True, "loyal", "none", True, 5, 30).startswith("Up-sell")
    assert t("low", "awareness", False, "loyal", "none", False, 5, 30).endswith(
        "No marketing permission: do not make offers."
    )


def test_non_product_codes() -> None:
    codes = "POST DOT M C2 D S B CRUK AMAZONFEE PADS TEST001 TEST002 ADJUST ADJUST2 GIFT_0001_20"
    for code in [*codes.split(), "BANK CHARGES", "NOCODE"]:
        assert not is_product_code(code), code
    for code in ("85123A", "22423", "47566B", "84406B"):
        assert is_product_code(code), code
