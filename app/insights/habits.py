"""How customers re-buy and what they pay, as of a day: the repeat and price statistics.

- per (customer, product): orders the customer placed since they last bought it, a decayed
  count of their orders with it (each order weighs ``ORDER_DECAY`` to the power of the number
  of the customer's orders after it: TIFU-KNN's personal vector), the mean unit price they paid;
- per product: median unit price, the share of its purchases followed by another purchase of
  it by the same customer within the horizon (only purchases old enough for that horizon to be
  seen), and how many customers bought it in at least k orders (the chance of one more
  purchase after the n-th);
- per customer: the share of their purchases (after their first order) that were re-buys, the
  products per order, and the mean log price of what they buy (their price range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.insights.history import Floats, Ints

ORDER_DECAY = 0.8
MAX_COUNT = 6
# Smoothing of the re-buy shares towards the population's (pseudo-purchases).
PRIOR_WEIGHT = 5.0
_SPAN = 100_000.0  # days: separates customers in one sorted key (customer * span + day)


@dataclass
class Habits:
    """Repeat and price statistics; pair arrays align with ``Aggregates.pair_key``."""

    pair_orders_since: Floats
    pair_decay: Floats
    pair_price: Floats
    item_price: Floats
    item_rebuy: Floats
    item_ge: Floats  # items x (MAX_COUNT + 1): customers who bought it in >= k orders
    cust_repeat: Floats
    cust_basket: Floats
    cust_price: Floats


@dataclass
class Purchases:
    """Product purchase lines before the day and their (pair, order) rows, indexed."""

    line_pair: Ints  # pair index of each line
    line_price: Floats
    po_pair: Ints  # pair index of each (pair, order) row, sorted by pair
    po_day: Floats
    pair_c: Ints
    pair_i: Ints
    pair_n: Floats
    pair_first: Floats
    order_c: Ints  # one entry per order
    order_d: Floats
    n_customers: int
    n_items: int


def _orders_after(order_c: Ints, order_d: Floats, c: Ints, d: Floats) -> Floats:
    """For each (customer, day): how many of the customer's orders fall on a later day."""
    d0 = float(order_d.min()) if len(order_d) else 0.0
    keys = np.sort(order_c * _SPAN + (order_d - d0))
    end = np.searchsorted(keys, c * _SPAN + (_SPAN - 1.0), side="right")
    return (end - np.searchsorted(keys, c * _SPAN + (d - d0), side="right")).astype(np.float64)


def _item_median(i: Ints, values: Floats, n_items: int) -> Floats:
    out = np.full(n_items, np.nan)
    if not len(i):
        return out
    order = np.lexsort((values, i))
    si, sv = i[order], values[order]
    items, start, count = np.unique(si, return_index=True, return_counts=True)
    out[items] = (sv[start + (count - 1) // 2] + sv[start + count // 2]) / 2.0
    return out


def _smoothed(hits: Floats, total: Floats) -> Floats:
    prior = hits.sum() / max(total.sum(), 1.0)
    return np.asarray((hits + PRIOR_WEIGHT * prior) / (total + PRIOR_WEIGHT), dtype=np.float64)


def _rebuy(p: Purchases, day: float, horizon: float) -> Floats:
    """Per product: share of its purchases re-bought by the same customer within ``horizon``."""
    order = np.lexsort((p.po_day, p.po_pair))
    pair, when = p.po_pair[order], p.po_day[order]
    gap = np.full(len(pair), np.inf)
    same = pair[1:] == pair[:-1]
    gap[:-1][same] = when[1:][same] - when[:-1][same]
    seen = when < day - horizon
    item = p.pair_i[pair]
    hits = np.bincount(item[seen & (gap < horizon)], minlength=p.n_items).astype(np.float64)
    total = np.bincount(item[seen], minlength=p.n_items).astype(np.float64)
    return _smoothed(hits, total)


def compute(p: Purchases, day: float, horizon: float) -> Habits:
    """The statistics of ``p`` as of ``day`` (``horizon``: the re-buy window in days)."""
    n_pairs, n_c = len(p.pair_c), p.n_customers
    after = _orders_after(p.order_c, p.order_d, p.pair_c[p.po_pair], p.po_day)
    since = np.full(n_pairs, np.inf)
    np.minimum.at(since, p.po_pair, after)
    line_count = np.bincount(p.line_pair, minlength=n_pairs).astype(np.float64)
    paid = np.bincount(p.line_pair, weights=p.line_price, minlength=n_pairs)
    item_price = _item_median(p.pair_i[p.line_pair], p.line_price, p.n_items)
    ge = np.zeros((p.n_items, MAX_COUNT + 1))
    for k in range(1, MAX_COUNT + 1):
        ge[:, k] = np.bincount(p.pair_i[p.pair_n >= k], minlength=p.n_items)
    cust_first = np.full(n_c, np.inf)
    np.minimum.at(cust_first, p.order_c, p.order_d)
    po_c = p.pair_c[p.po_pair]
    later = p.po_day > cust_first[po_c]
    repeat = later & (p.po_day > p.pair_first[p.po_pair])
    log_price = np.log(np.maximum(item_price, 0.01))
    line_c = p.pair_c[p.line_pair]
    spent = np.bincount(line_c, weights=log_price[p.pair_i[p.line_pair]], minlength=n_c)
    lines = np.bincount(line_c, minlength=n_c).astype(np.float64)
    orders = np.bincount(p.order_c, minlength=n_c).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return Habits(
            pair_orders_since=since,
            pair_decay=np.bincount(p.po_pair, weights=ORDER_DECAY**after, minlength=n_pairs).astype(
                np.float64
            ),
            pair_price=paid / np.maximum(line_count, 1.0),
            item_price=item_price,
            item_rebuy=_rebuy(p, day, horizon),
            item_ge=ge,
            cust_repeat=_smoothed(
                np.bincount(po_c[repeat], minlength=n_c).astype(np.float64),
                np.bincount(po_c[later], minlength=n_c).astype(np.float64),
            ),
            cust_basket=np.bincount(po_c, minlength=n_c) / np.maximum(orders, 1.0),
            cust_price=np.where(lines > 0, spent / np.maximum(lines, 1.0), np.nan),
        )
