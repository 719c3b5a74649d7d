"""The learned next-need ranker on small synthetic shops (in memory, seconds)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from app.insights import next_needs, ranker
from app.insights.history import to_day
from tests.insights.data import GROUP_A, GROUP_B, NOW, Line, history_of, shop

NEW_LINE = "10009"  # a product group-A customers adopt in the last weeks


def _adoption_shop() -> list[Line]:
    """The usual shop, plus: most group-A customers took up a new product lately."""
    lines = shop()
    for n in range(1, 10):
        at = NOW - timedelta(days=40 - 3 * n)
        lines.append(Line(f"1{n:04d}", f"7{n:05d}", at, NEW_LINE))
    return lines


def test_rankers_learn_and_survive_a_round_trip() -> None:
    history = history_of(_adoption_shop())
    now = to_day(NOW)
    fitted = ranker.fit_rankers(history, now)
    again = ranker.Rankers.from_dict(fitted.as_dict())
    everyone = np.arange(history.n_customers, dtype=np.int64)
    first, _, _ = next_needs.suggest(history, now, fitted, everyone)
    second, _, _ = next_needs.suggest(history, now, again, everyone)
    assert np.array_equal(first.i, second.i) and np.allclose(first.score, second.score)
    # The trees split on something: not every score is the same.
    assert len(np.unique(np.round(first.score, 6))) > 5


def test_lists_follow_the_rules_and_neighbours_drive_cross_sells() -> None:
    history = history_of(_adoption_shop())
    now = to_day(NOW)
    everyone = np.arange(history.n_customers, dtype=np.int64)
    found, _, _ = next_needs.suggest(history, now, ranker.fit_rankers(history, now), everyone)
    skus = np.asarray(history.skus)
    for c in range(history.n_customers):
        mine = found.c == c
        assert list(found.rank[mine]) == list(range(1, int(mine.sum()) + 1))
        assert list(found.score[mine]) == sorted(found.score[mine], reverse=True)
        for kind in ("reorder", "cross_sell"):
            assert int((found.kind[mine] == kind).sum()) <= next_needs.MAX_PER_KIND
        bought = set(skus[history.line_item[history.line_customer == c]])
        for sku, kind in zip(skus[found.i[mine]], found.kind[mine], strict=True):
            assert (sku in bought) == (kind == "reorder")
            assert sku in GROUP_A + GROUP_B + [NEW_LINE]
    # The one group-A regular who did not take up the new line gets it as its first cross-sell,
    # driven by what similar customers bought lately.
    holdout = history.external_refs.index("10000")
    cross = (found.c == holdout) & (found.kind == "cross_sell")
    assert skus[found.i[cross]][0] == NEW_LINE
    assert found.driver[cross][0] in {"neighbours", "popular", "trending", "new_line", "goes_with"}


def test_declined_products_are_left_out() -> None:
    history = history_of(shop())
    now = to_day(NOW)
    rankers = ranker.fit_rankers(history, now)
    c = history.external_refs.index("10003")
    everyone = np.arange(history.n_customers, dtype=np.int64)
    before, _, _ = next_needs.suggest(history, now, rankers, everyone)
    top = int(before.i[before.c == c][0])
    after, _, _ = next_needs.suggest(history, now, rankers, everyone, exclude={c: {top}})
    assert top not in after.i[after.c == c]
    assert top in after.i[after.c != c]  # others still get it
