"""Predicted next needs: ranked re-orders and cross-sells for each customer, with their drivers.

For each customer: candidates from the generators (``candidates.py``), features
(``features.py``), then the two rankers (``ranker.py``):
- **re-orders** (products bought before) are picked from the "any" ranker's best
  ``REORDER_POOL`` and spread (``spread.py``: not ten products always bought together);
- **cross-sells** (never bought) are picked from the best ``CROSS_POOL`` by the "any" ranker's
  score plus the cross-sell ranker's log-odds, spread the same way, and placed in the one list
  where the "any" ranker puts the best new products: the j-th cross-sell takes the "any" score
  of the j-th best new product. So the first k of the list are the "any" ranker's choice of how
  many new products to show, and the cross-sell ranking's choice of which;
- the one list is spread once more, across both kinds.

Each suggestion also carries its **driver**: the feature group (``features.REASON_GROUP``)
whose features, left out, lower its score the most; the spoken reason is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.insights import features
from app.insights.aggregates import Aggregates, aggregate
from app.insights.candidates import Signals, anchors, build_signals, generate
from app.insights.history import F32, Floats, History, Ints
from app.insights.ranker import Ensemble, Rankers
from app.insights.spread import spread

MAX_PER_KIND = 10
# Re-orders and cross-sells considered for the MAX_PER_KIND places of each kind.
REORDER_POOL = 20
CROSS_POOL = 30
# Added to the scores of never-bought products that go with one the customer took on a call.
ACCEPT_LIFT = 2.0
# Cross-sells are ordered by the cross-sell ranker's log-odds plus this share of the "any" score.
ANY_WEIGHT = 1.0
GROUPS = tuple(sorted(set(features.REASON_GROUP.values())))


@dataclass
class Suggestions:
    """Ranked next needs: parallel arrays, grouped by customer, best first."""

    c: Ints
    i: Ints
    kind: npt.NDArray[np.str_]
    score: Floats
    rank: Ints
    anchor: Ints  # the bought product a suggestion most goes with (-1: none)
    driver: npt.NDArray[np.str_]  # the feature group that drove it (features.REASON_GROUP)
    x: Floats  # the features of each suggestion (for its reason)


def top_per_customer(c: Ints, score: Floats, k: int) -> Ints:
    """Indexes of the ``k`` best rows of each customer, grouped by customer, best first."""
    order = np.lexsort((-score, c))
    sc = c[order]
    start = np.searchsorted(sc, sc)
    return order[(np.arange(len(sc)) - start) < k]


def _drivers(model: Ensemble, x: npt.NDArray[np.float32], new: bool) -> npt.NDArray[np.str_]:
    """The reason group whose features, left out (as missing), lower each row's score most.

    For never-bought products the customer's own history with it (``habit``, ``due``) is
    empty, so it is not a candidate reason.
    """
    if not len(x):
        return np.zeros(0, dtype=np.str_)
    full = np.asarray(model.predict(x), dtype=np.float64)
    drop = np.zeros((len(x), len(GROUPS)))
    for g, group in enumerate(GROUPS):
        cols = [
            n
            for n, name in enumerate(features.FEATURES)
            if features.REASON_GROUP.get(name) == group
        ]
        without = x.copy()
        without[:, cols] = np.nan
        drop[:, g] = full - np.asarray(model.predict(without), dtype=np.float64)
        if new and group in ("habit", "due"):
            drop[:, g] = -np.inf
    names: npt.NDArray[np.str_] = np.asarray(GROUPS, dtype=np.str_)
    best: npt.NDArray[np.str_] = names[np.argmax(drop, axis=1)]
    return best


def _goes_with_accepted(sig: Signals, boost: dict[int, list[int]], c: Ints, i: Ints) -> Floats:
    """1.0 for (customer, product) pairs co-purchased with a product the customer accepted."""
    out = np.zeros(len(c))
    for cust, items in boost.items():
        rows = np.flatnonzero(c == cust)
        if len(rows):
            out[rows] = (sig.sim[np.asarray(items)][:, i[rows]].max(axis=0) > 0).astype(float)
    return out


def _log_odds(model: Ensemble, x: npt.NDArray[np.float32]) -> Floats:
    if not len(x):
        return np.zeros(0)
    p = np.clip(np.asarray(model.predict(x), dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.asarray(np.log(p / (1.0 - p)), dtype=np.float64)


def _pick(c: Ints, i: Ints, score: Floats, sim: F32, pool: int) -> Ints:
    """Rows of the ``MAX_PER_KIND`` picks per customer: spread among the best ``pool``."""
    best = top_per_customer(c, score, pool)
    chosen, _ = spread(c[best], i[best], score[best], sim, MAX_PER_KIND)
    return best[chosen]


def _place(c: Ints, i: Ints, any_s: Floats, cross_s: Floats, sim: F32) -> tuple[Ints, Floats]:
    """Cross-sell picks (rows, in pick order) with the slots "any" gives new ones."""
    picks = _pick(c, i, cross_s, sim, CROSS_POOL)
    slots = top_per_customer(c, any_s, MAX_PER_KIND)
    # Both keep min(MAX_PER_KIND, new candidates) rows per customer, grouped the same way.
    return picks, any_s[slots]


def suggest(
    history: History,
    now: float,
    rankers: Rankers,
    customers: Ints,
    *,
    exclude: dict[int, set[int]] | None = None,
    boost: dict[int, list[int]] | None = None,
) -> tuple[Suggestions, Aggregates, Signals]:
    """Up to ``MAX_PER_KIND`` re-orders and cross-sells per customer in one ranked list."""
    agg = aggregate(history, now)
    sig = build_signals(agg, features.word_matrix(history.names), boost)
    cand = generate(agg, sig, np.sort(customers), exclude)
    x = features.build(agg, cand, history.skus)
    x32 = x.astype(np.float32)
    any_s = _log_odds(rankers.any, x32)
    old = np.flatnonzero(~cand.is_new)
    new = np.flatnonzero(cand.is_new)
    re_rows = old[_pick(cand.c[old], cand.i[old], any_s[old], sig.sim, REORDER_POOL)]
    # Cross-sells are ordered by both models' scores together (better than either alone).
    cross_s = ANY_WEIGHT * any_s[new] + _log_odds(rankers.cross, x32[new])
    if boost:
        lift = ACCEPT_LIFT * _goes_with_accepted(sig, boost, cand.c[new], cand.i[new])
        any_s[new] += lift
        cross_s += lift
    picks, slot_scores = _place(cand.c[new], cand.i[new], any_s[new], cross_s, sig.sim)
    cs_rows = new[picks]
    rows = np.concatenate([re_rows, cs_rows])
    score = np.concatenate([any_s[re_rows], slot_scores])
    kind = np.concatenate(
        [np.full(len(re_rows), "reorder"), np.full(len(cs_rows), "cross_sell")]
    ).astype(np.str_)
    driver = np.concatenate(
        [_drivers(rankers.any, x32[re_rows], False), _drivers(rankers.cross, x32[cs_rows], True)]
    ).astype(np.str_)
    order = top_per_customer(cand.c[rows], score, 2 * MAX_PER_KIND)
    chosen, score = spread(
        cand.c[rows[order]], cand.i[rows[order]], score[order], sig.sim, 2 * MAX_PER_KIND
    )
    order = order[chosen]
    rows, kind, driver = rows[order], kind[order], driver[order]
    c, i = cand.c[rows], cand.i[rows]
    anchor, _ = anchors(sig.weights, sig.sim, c, i)
    rank = (np.arange(len(c)) - np.searchsorted(c, c) + 1).astype(np.int64)
    probability = 1.0 / (1.0 + np.exp(-np.clip(score, -30.0, 30.0)))
    return Suggestions(c, i, kind, probability, rank, anchor, driver, x[rows]), agg, sig
