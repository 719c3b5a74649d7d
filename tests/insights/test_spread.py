"""Spreading a ranked list: products bought together do not fill the first places."""

from __future__ import annotations

import numpy as np
import pytest

from app.insights import spread

# Products 0 and 1 are always bought together; 2 and 3 are unrelated to anything.
SIM = np.asarray(
    [[0.0, 0.9, 0.0, 0.0], [0.9, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1], [0.0, 0.0, 0.1, 0.0]],
    dtype=np.float32,
)


def _lists(c: list[int], items: list[int], score: list[float], keep: int) -> list[list[int]]:
    cs, its = np.asarray(c), np.asarray(items)
    rows, values = spread.spread(cs, its, np.asarray(score), SIM, keep)
    out: dict[int, list[int]] = {}
    for r in rows.tolist():
        out.setdefault(int(cs[r]), []).append(int(its[r]))
    for cust in np.unique(cs[rows]).tolist():  # the values never rise down a customer's list
        mine = values[cs[rows] == cust]
        assert list(mine) == sorted(mine, reverse=True)
    return [out[k] for k in sorted(out)]


def test_a_product_bought_with_one_already_placed_yields_to_an_unrelated_one() -> None:
    # By score alone: 0, 1, 2. Product 1 loses 2 x 0.9 for going with 0; 2 loses nothing.
    assert _lists([5, 5, 5], [0, 1, 2], [3.0, 2.9, 2.0], keep=3) == [[0, 2, 1]]
    # A clear enough lead still wins its place.
    assert _lists([5, 5, 5], [0, 1, 2], [3.0, 2.9, 0.5], keep=3) == [[0, 1, 2]]


def test_each_customer_is_spread_on_its_own_and_keep_bounds_the_list() -> None:
    found = _lists([1, 1, 1, 2, 2, 2, 2], [0, 1, 2, 3, 2, 1, 0], [3, 2.9, 2, 4, 3.9, 1, 0.9], 2)
    assert found == [[0, 2], [3, 2]]
    assert _lists([7], [3], [1.0], keep=10) == [[3]]
    rows, values = spread.spread(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), SIM, 3)
    assert len(rows) == 0 and len(values) == 0


def test_blocks_give_the_same_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    c = np.repeat(np.arange(40), 6)
    items = rng.integers(0, 4, size=len(c))
    score = rng.normal(size=len(c))
    whole = spread.spread(c, items, score, SIM, 4)
    monkeypatch.setattr(spread, "BLOCK", 7)
    blocked = spread.spread(c, items, score, SIM, 4)
    assert np.array_equal(whole[0], blocked[0]) and np.allclose(whole[1], blocked[1])
