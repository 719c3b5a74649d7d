"""Repeat and price statistics (habits.py) and the ALS and same-basket signals (latent.py)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import sparse

from app.insights import features, latent
from app.insights.aggregates import aggregate
from app.insights.history import to_day
from app.insights.reasons import Reasons
from tests.insights.data import NOW, Line, history_of


def _lines() -> list[Line]:
    day = timedelta(days=1)
    return [
        # Customer 10001: A on three orders (re-bought 10 and 20 days later), B once, C last.
        Line("10001", "1", NOW - 100 * day, "11111", price=2.0),
        Line("10001", "1", NOW - 100 * day, "22222", price=5.0),
        Line("10001", "2", NOW - 90 * day, "11111", price=2.0),
        Line("10001", "3", NOW - 70 * day, "11111", price=1.0),
        Line("10001", "4", NOW - 10 * day, "33333", price=4.0),
        # Customer 10002: A once, then B and C together.
        Line("10002", "5", NOW - 95 * day, "11111", price=3.0),
        Line("10002", "6", NOW - 20 * day, "22222", price=5.0),
        Line("10002", "6", NOW - 20 * day, "33333", price=4.0),
    ]


def test_orders_since_decay_price_and_rebuy_shares() -> None:
    history = history_of(_lines())
    agg = aggregate(history, to_day(NOW))
    h = agg.habits
    c1, c2 = history.external_refs.index("10001"), history.external_refs.index("10002")
    a, b = history.skus.index("11111"), history.skus.index("22222")
    pa, pb = agg.pair_index(np.asarray([c1, c1]), np.asarray([a, b]))
    # A last on order 3, then one order (4) after it; B on order 1, three orders after it.
    assert h.pair_orders_since[pa] == 1.0 and h.pair_orders_since[pb] == 3.0
    assert np.isclose(h.pair_decay[pa], 0.8**1 + 0.8**2 + 0.8**3)
    assert np.isclose(h.pair_price[pa], 5.0 / 3.0)
    assert h.item_price[a] == 2.0  # median of 2, 2, 1, 3
    # Of A's four purchases old enough to see 60 days after them, two were re-bought in time:
    # the share sits between the population's and 2/4, pulled towards 2/4 by the evidence.
    assert h.item_rebuy[a] > h.item_rebuy[b]
    # Customer 10001: after the first order, 2 of 3 (pair, order) rows were re-buys.
    assert h.cust_repeat[c1] > h.cust_repeat[c2]
    assert h.item_ge[a, 1] == 2 and h.item_ge[a, 2] == 1 and h.item_ge[a, 3] == 1
    assert h.cust_basket[c2] == 1.5


def test_basket_similarity_counts_products_on_the_same_order() -> None:
    history = history_of(_lines())
    agg = aggregate(history, to_day(NOW))
    sim = latent.basket_similarity(agg.basket_order, agg.basket_item, agg.n_items)
    a, b, c = (history.skus.index(s) for s in ("11111", "22222", "33333"))
    assert sim[b, c] > 0 and sim[a, b] > 0  # 10002's B and C; 10001's first order A and B
    assert sim[a, c] == 0.0  # never on one order
    assert np.allclose(np.diag(sim), 0.0) and np.allclose(sim, sim.T)


def test_als_factors_are_reproducible_and_rank_a_neighbours_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(latent, "FACTORS", 2)  # two groups: two factors (more would memorise)
    rng = np.random.default_rng(3)
    # Two groups of customers with their own products; customer 0 lacks one of its group's.
    dense = np.zeros((40, 10), dtype=np.float32)
    dense[:20, :5] = rng.random((20, 5)) > 0.2
    dense[20:, 5:] = rng.random((20, 5)) > 0.2
    dense[0, :5] = [1, 1, 1, 1, 0]
    weights = sparse.csr_matrix(dense)
    u1, v1 = latent.als_factors(weights)
    u2, v2 = latent.als_factors(weights)
    assert np.array_equal(u1, u2) and np.array_equal(v1, v2)
    scores = u1[0] @ v1.T
    assert scores[4] > scores[5:].max()  # its group's missing product before the others'


def test_a_cross_sell_driven_by_the_als_factors_says_so() -> None:
    history = history_of(_lines())
    agg = aggregate(history, to_day(NOW))
    said = Reasons(history, agg, set()).reason(0, 1, "cross_sell", "taste", -1, np.zeros(3))
    assert said == "customers who buy the same kinds of products as them buy this"
    assert features.REASON_GROUP["als"] == "taste"
