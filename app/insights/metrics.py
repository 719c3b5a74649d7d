"""The next-need scoring protocol (the README, "Evaluation"), for ``evaluate`` and bench.

Per customer who bought products both before and in the holdout:
- ``reorder_or_new``: the first k of the list against every product bought in the holdout;
- ``cross_sell``: the first k suggestions of kind ``cross_sell`` against the products bought
  in the holdout and never before, over the customers who bought at least one such product;
- hit = at least one of the k was bought; recall = hits / min(k, relevant); reciprocal rank =
  1 / position of the first hit (0 without one); each averaged over the customers, with a 95 %
  bootstrap interval (customers resampled ``BOOTSTRAP`` times, fixed seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

BOOTSTRAP = 1000
SEED = 20110809

Lists = Mapping[str, Sequence[tuple[str, str]]]  # customer ref -> [(sku, kind)] best first


def score_lists(
    predictions: Sequence[str], relevant: set[str], k: int
) -> tuple[float, float, float]:
    """(hit, recall, reciprocal rank) of the first ``k`` predictions for one customer."""
    if not relevant:
        return 0.0, 0.0, 0.0
    top = list(predictions)[:k]
    positions = [n for n, sku in enumerate(top, start=1) if sku in relevant]
    if not positions:
        return 0.0, 0.0, 0.0
    return 1.0, len(positions) / min(k, len(relevant)), 1.0 / positions[0]


def summarise(rows: list[tuple[float, float, float]]) -> dict[str, Any]:
    """Means of (hit, recall, rr) with 95 % bootstrap intervals."""
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    out: dict[str, Any] = {"customers": len(arr)}
    if not len(arr):
        return {**out, "hit_rate": 0.0, "recall": 0.0, "mrr": 0.0, "ci95": {}}
    rng = np.random.default_rng(SEED)
    means = arr[rng.integers(0, len(arr), size=(BOOTSTRAP, len(arr)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5], axis=0)
    names = ("hit_rate", "recall", "mrr")
    for n, name in enumerate(names):
        out[name] = round(float(arr[:, n].mean()), 4)
    out["ci95"] = {
        name: [round(float(lo[n]), 4), round(float(hi[n]), 4)] for n, name in enumerate(names)
    }
    return out


def score(
    lists: Lists, before: Mapping[str, set[str]], later: Mapping[str, set[str]], k: int
) -> dict[str, dict[str, Any]]:
    """``reorder_or_new`` and ``cross_sell`` of the lists, by the protocol above."""
    any_rows, cross_rows = [], []
    for ref in sorted(r for r in later if r in before):
        bought = later[ref]
        new = bought - before[ref]
        preds = lists.get(ref, [])
        any_rows.append(score_lists([s for s, _ in preds], bought, k))
        if new:
            cross = [s for s, kind in preds if kind == "cross_sell"]
            cross_rows.append(score_lists(cross, new, k))
    return {"reorder_or_new": summarise(any_rows), "cross_sell": summarise(cross_rows)}
