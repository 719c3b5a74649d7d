"""Features per (customer, candidate product): what the rankers learn from.

Groups (``FEATURES`` names every column; ``REASON_GROUP`` maps each to the spoken reason it
supports):
- the customer's history with the product: orders with it, recency, usual interval and how
  due it is, share of the customer's orders, bought in the same weeks last year, quantity;
- the product: buyers lately / last 30 days / same weeks last year / ever, trend, seasonal
  lift, age and last sale;
- the customer: orders (ever, lately), distinct products, recency, tenure, usual gap;
- the generators: co-purchase and neighbour scores and ranks, popularity ranks, and the
  similarity of the product's name to what the customer buys.
Missing values (a never-bought product has no recency) are NaN, which the trees handle.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import sparse

from app.insights import habits
from app.insights.aggregates import Aggregates
from app.insights.candidates import Candidates
from app.insights.history import Floats, Ints

FEATURES: tuple[str, ...] = (
    "pair_orders", "pair_since", "pair_interval", "pair_due", "pair_share", "pair_recent",
    "pair_season", "pair_qty", "pair_age",
    "item_recent", "item_month", "item_season", "item_all", "item_trend", "item_lift",
    "item_age", "item_idle", "item_adopters", "item_repeat_share",
    "cust_orders", "cust_recent", "cust_items", "cust_since", "cust_tenure", "cust_gap",
    "cust_explore", "cust_new_recent",
    "cf", "cf_rank", "cf_share", "knn", "knn_rank", "knn_new", "knn_season", "knn_tifu",
    "knn_wide", "pop_rank", "season_rank", "words", "sibling",
    "is_new",
    "pair_orders_since", "pair_decay", "pair_price", "item_price", "item_rebuy",
    "item_rebuy_n", "cust_repeat", "cust_basket", "price_fit", "als", "als_rank", "basket",
)  # fmt: skip

REASON_GROUP: dict[str, str] = {
    **dict.fromkeys(("pair_orders", "pair_share", "pair_qty", "pair_age", "pair_decay"), "habit"),
    **dict.fromkeys(
        ("pair_since", "pair_interval", "pair_due", "pair_recent", "pair_orders_since"), "due"
    ),
    **dict.fromkeys(
        ("pair_season", "season_rank", "item_season", "item_lift", "knn_season"), "season"
    ),
    **dict.fromkeys(("cf", "cf_rank", "cf_share", "words", "sibling", "basket"), "goes_with"),
    **dict.fromkeys(("knn", "knn_rank", "knn_new", "knn_tifu", "knn_wide"), "neighbours"),
    **dict.fromkeys(("als", "als_rank"), "taste"),
    **dict.fromkeys(
        ("item_recent", "item_month", "item_all", "pop_rank", "item_adopters"), "popular"
    ),
    **dict.fromkeys(("item_trend",), "trending"),
    **dict.fromkeys(("item_age", "item_idle"), "new_line"),
}

STOP_WORDS = frozenset(
    "SET OF AND THE WITH IN FOR BOX PACK SMALL LARGE MINI JUMBO DESIGN ASSORTED".split()
    + "COLOUR COLOURS".split()
)


def word_matrix(names: list[str]) -> sparse.csr_matrix:
    """Items x words of their names (IDF-weighted, rows L2-normalised): the product's category."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for item, name in enumerate(names):
        words = {
            w for w in re.split(r"[^A-Z]+", name.upper()) if len(w) >= 3 and w not in STOP_WORDS
        }
        for word in words:
            rows.append(item)
            cols.append(vocab.setdefault(word, len(vocab)))
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(names), max(len(vocab), 1))
    )
    df = np.asarray((m > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + len(names)) / (1.0 + df)).astype(np.float32)
    m = m @ sparse.diags(idf)
    norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norm[norm == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norm) @ m)


def sibling_groups(skus: list[str]) -> Ints:
    """Group id of each product code by its first five characters: the variants of a line
    (``85123A`` and ``85123B``, colours and sizes) share a group."""
    index: dict[str, int] = {}
    return np.asarray([index.setdefault(s[:5], len(index)) for s in skus], dtype=np.int64)


def siblings_bought(agg: Aggregates, groups: Ints, c: Ints, i: Ints) -> Floats:
    """How many other variants of the product's line the customer bought."""
    n_g = int(groups.max()) + 1 if len(groups) else 1
    keys, counts = np.unique(agg.pair_c * n_g + groups[agg.pair_i], return_counts=True)
    want = c * n_g + groups[i]
    pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    found = keys[pos] == want if len(keys) else np.zeros(len(want), dtype=np.bool_)
    own = agg.pair_index(c, i) >= 0
    return np.where(found, counts[pos] - own, 0).astype(np.float64)


def _log(x: Floats) -> Floats:
    return np.log1p(np.maximum(x, 0.0))


def _pair(agg: Aggregates, values: Floats, pos: Ints, missing: float = 0.0) -> Floats:
    return (
        np.where(pos >= 0, values[np.maximum(pos, 0)], missing)
        if len(values)
        else np.full(len(pos), missing)
    )


def _habit_columns(agg: Aggregates, c: Ints, i: Ints, pos: Ints, n: Floats) -> list[Floats]:
    """Orders since the last purchase, decayed purchases, price paid and the product's price,
    re-buy shares (within the horizon; after the customer's n-th purchase), the customer's
    repeat share and basket size, and how the price sits in the customer's range."""
    h = agg.habits
    k = np.minimum(n, habits.MAX_COUNT - 1).astype(np.int64)
    after_n = (h.item_ge[i, k + 1] + 1.0) / (h.item_ge[i, k] + 2.0)
    log_price = np.log(np.maximum(h.item_price[i], 0.01))
    return [
        _pair(agg, h.pair_orders_since, pos, np.nan),
        _pair(agg, h.pair_decay, pos),
        _pair(agg, h.pair_price, pos, np.nan) / h.item_price[i],
        log_price,
        h.item_rebuy[i],
        np.where(n > 0, after_n, np.nan),
        h.cust_repeat[c],
        h.cust_basket[c],
        log_price - h.cust_price[c],
    ]


def build(agg: Aggregates, cand: Candidates, skus: list[str] | None = None) -> Floats:
    """The feature matrix (float32-sized values in float64), one row per candidate;
    ``skus``: the products' codes (for the sibling counts; none: zero)."""
    t = agg.day
    c, i = cand.c, cand.i
    pos = agg.pair_index(c, i)
    n = _pair(agg, agg.pair_n, pos)
    last = _pair(agg, agg.pair_last, pos, np.nan)
    first = _pair(agg, agg.pair_first, pos, np.nan)
    since = t - last
    interval = np.where(n > 1, (last - first) / np.maximum(n - 1, 1), np.nan)
    due = np.log((since + 1.0) / (interval + 1.0))
    tenure = t - agg.cust_first[c]
    cust_gap = tenure / np.maximum(agg.cust_orders[c] - 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = [
            n,
            since,
            interval,
            due,
            n / np.maximum(agg.cust_orders[c], 1.0),
            _pair(agg, agg.pair_recent, pos),
            _pair(agg, agg.pair_season, pos),
            _pair(agg, agg.pair_qty, pos) / np.maximum(n, 1.0),
            t - first,
            agg.item_pop_recent[i],
            agg.item_pop_month[i],
            agg.item_pop_season[i],
            agg.item_pop_all[i],
            _log(agg.item_pop_recent[i]) - _log(agg.item_pop_prior[i]),
            _log(agg.item_pop_season[i]) - _log(agg.item_pop_all[i]),
            t - agg.item_first[i],
            t - agg.item_last[i],
            agg.item_adopters[i],
            agg.item_repeaters[i] / np.maximum(agg.item_pop_all[i], 1.0),
            agg.cust_orders[c],
            agg.cust_recent[c],
            agg.cust_items[c],
            t - agg.cust_last[c],
            tenure,
            cust_gap,
            agg.cust_new_recent[c] / np.maximum(agg.cust_items_recent[c], 1.0),
            agg.cust_new_recent[c],
            cand.cf,
            cand.cf_rank,
            cand.cf / np.maximum(agg.cust_items[c], 1.0),
            cand.knn,
            cand.knn_rank,
            cand.knn_new,
            cand.knn_season,
            cand.knn_tifu,
            cand.knn_wide,
            cand.pop_rank,
            cand.season_rank,
            cand.words,
            siblings_bought(agg, sibling_groups(skus), c, i) if skus else np.zeros(len(c)),
            cand.is_new.astype(np.float64),
            *_habit_columns(agg, c, i, pos, n),
            cand.als,
            cand.als_rank,
            cand.basket,
        ]
    x = np.column_stack(columns) if len(c) else np.zeros((0, len(FEATURES)))
    x[~np.isfinite(x)] = np.nan
    return np.asarray(x, dtype=np.float64)
