"""Spread a ranked list so its first places are not all one bet.

A list of next needs is judged by whether *any* of its first places is bought. Products that
the same customers buy (``Signals.sim``, the co-purchase cosine) tend to be bought together or
not at all, so ten of them in a row are nearly one guess. Each place therefore goes, in turn,
to the product with the best score minus ``WEIGHT`` times its highest similarity to a product
already placed (maximal marginal relevance, Carbonell and Goldstein, SIGIR 1998).

Measured on two validation splits of the shared data (docs/insights.md): HR@10 +0.009 on both
for "any" and +0.014 / +0.016 for cross-sell; recall@10 lower by 0.01 to 0.017 (products bought
together no longer sit side by side).
"""

from __future__ import annotations

import numpy as np

from app.insights.history import F32, Floats, Ints

WEIGHT = 2.0
# Customers per block: the work arrays are (customers, places), small even for a big shop.
BLOCK = 50_000


def spread(c: Ints, items: Ints, score: Floats, sim: F32, keep: int) -> tuple[Ints, Floats]:
    """Re-rank rows grouped by customer ``c``: the chosen rows (up to ``keep`` per customer),
    grouped the same way in their new order, and the value each was chosen with (its score
    less the penalty; never rising down a customer's list)."""
    if not len(c):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # Where each customer's rows start, and the end: blocks of BLOCK customers cut there.
    bounds = np.r_[np.flatnonzero(np.r_[True, c[1:] != c[:-1]]), len(c)]
    customers = len(bounds) - 1
    rows: list[Ints] = []
    values: list[Floats] = []
    for lo in range(0, customers, BLOCK):
        first, last = bounds[lo], bounds[min(lo + BLOCK, customers)]
        r, v = _spread_block(c[first:last], items[first:last], score[first:last], sim, keep)
        rows.append(r + first)
        values.append(v)
    return np.concatenate(rows), np.concatenate(values)


def _spread_block(c: Ints, items: Ints, score: Floats, sim: F32, keep: int) -> tuple[Ints, Floats]:
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    counts = np.diff(np.r_[starts, len(c)])
    group = np.repeat(np.arange(len(starts)), counts)
    place = np.arange(len(c)) - np.repeat(starts, counts)
    shape = (len(starts), int(counts.max()))
    base = np.full(shape, -np.inf)
    base[group, place] = score
    item = np.zeros(shape, dtype=np.int64)
    item[group, place] = items
    row = np.full(shape, -1, dtype=np.int64)
    row[group, place] = np.arange(len(c))
    taken = np.zeros(shape, dtype=np.bool_)
    penalty = np.zeros(shape)
    every = np.arange(shape[0])
    picked, worth = [], []
    for _ in range(min(keep, shape[1])):
        value = np.where(taken, -np.inf, base - WEIGHT * penalty)
        best = np.argmax(value, axis=1)
        got = value[every, best]
        picked.append(np.where(np.isfinite(got), row[every, best], -1))
        worth.append(got)
        taken[every, best] = True
        penalty = np.maximum(penalty, sim[item, item[every, best][:, None]])
    # Step-major to customer-major: each customer's picks in the order they were made.
    chosen = np.stack(picked, axis=1).ravel()
    value_of = np.stack(worth, axis=1).ravel()
    ok = chosen >= 0
    return chosen[ok], value_of[ok]
