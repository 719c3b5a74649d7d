"""Per customer, per product and per (customer, product) purchase statistics as of a day.

Everything the next-need candidates and features are computed from: distinct orders, first
and last purchase, purchases in recent windows and in the same weeks a year earlier, and how
many customers bought each product in those windows. Only purchases of products (quantity > 0,
not a return, not postage or fees) strictly before the day count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.insights.habits import Habits, Purchases, compute
from app.insights.history import Bools, Floats, History, Ints

HORIZON_DAYS = 60.0
ACTIVE_DAYS = 90.0
YEAR_DAYS = 364.0  # 52 weeks: the same weekdays last year


@dataclass
class Aggregates:
    """Statistics as of ``day``; pair arrays are sorted by ``pair_key``."""

    day: float
    n_items: int
    pair_c: Ints
    pair_i: Ints
    pair_n: Floats  # distinct orders with the product
    pair_first: Floats
    pair_last: Floats
    pair_recent: Floats  # orders in the last HORIZON_DAYS
    pair_season: Floats  # orders in the same weeks last year (the coming horizon, a year ago)
    pair_qty: Floats
    cust_orders: Floats
    cust_recent: Floats  # orders in the last HORIZON_DAYS
    cust_first: Floats
    cust_last: Floats
    cust_items: Floats
    cust_new_recent: Floats  # products first bought in the last HORIZON_DAYS
    cust_items_recent: Floats  # distinct products bought in the last HORIZON_DAYS
    item_pop_recent: Floats  # distinct customers in the last HORIZON_DAYS
    item_pop_season: Floats  # distinct customers in the coming horizon a year ago
    item_pop_all: Floats
    item_pop_month: Floats  # distinct customers in the last 30 days
    item_pop_prior: Floats  # distinct customers in the HORIZON_DAYS before the last ones
    item_adopters: Floats  # distinct customers who first bought it in the last HORIZON_DAYS
    item_repeaters: Floats  # distinct customers who bought it in two orders or more
    item_first: Floats
    item_last: Floats
    habits: Habits  # repeat and price statistics (habits.py)
    basket_order: Ints  # one row per (order, product): the baskets
    basket_item: Ints

    @property
    def pair_key(self) -> Ints:
        return self.pair_c * self.n_items + self.pair_i

    @property
    def n_customers(self) -> int:
        return len(self.cust_orders)

    def active_items(self) -> Bools:
        """Products someone bought in the last ``ACTIVE_DAYS`` (the rest are likely gone)."""
        return np.isfinite(self.item_last) & (self.item_last >= self.day - ACTIVE_DAYS)

    def pair_index(self, c: Ints, i: Ints) -> Ints:
        """Position of each (customer, product) among the pairs, -1 when never bought."""
        keys = self.pair_key
        want = c * self.n_items + i
        pos = np.searchsorted(keys, want)
        pos = np.minimum(pos, max(len(keys) - 1, 0))
        found = (keys[pos] == want) if len(keys) else np.zeros(len(want), dtype=np.bool_)
        return np.where(found, pos, -1).astype(np.int64)


def product_purchases(history: History, day: float) -> Bools:
    """Lines that are purchases of products (not returns, fees or postage) before ``day``."""
    return (
        (history.line_day < day)
        & (history.line_qty > 0)
        & ~history.line_return
        & history.is_product[history.line_item]
    )


def _per_pair(values: Floats, starts: Ints, how: np.ufunc) -> Floats:
    return how.reduceat(values, starts) if len(values) else np.zeros(0)


def aggregate(history: History, day: float) -> Aggregates:
    """Count what each customer bought, and when, before ``day``."""
    n_c, n_i = history.n_customers, history.n_items
    m = product_purchases(history, day)
    c, i = history.line_customer[m], history.line_item[m]
    o, d, q = history.line_order[m], history.line_day[m], history.line_qty[m]
    n_orders = int(history.line_order.max()) + 1 if len(history.line_order) else 1
    key = c * n_i + i
    # One row per (pair, order): several lines of one product on one invoice count once.
    po, first_line = np.unique(key * n_orders + o, return_index=True)
    po_key, po_day = po // n_orders, d[first_line]
    po_qty = np.bincount(np.searchsorted(po, key * n_orders + o), weights=q, minlength=len(po))
    pair_key, starts, pair_n = np.unique(po_key, return_index=True, return_counts=True)

    def window(lo: float, hi: float) -> Floats:
        return _per_pair(((po_day >= lo) & (po_day < hi)).astype(np.float64), starts, np.add)

    pair_recent = window(day - HORIZON_DAYS, day)
    pair_season = window(day - YEAR_DAYS, day - YEAR_DAYS + HORIZON_DAYS)
    pair_month = window(day - 30.0, day)
    pair_prior = window(day - 2 * HORIZON_DAYS, day - HORIZON_DAYS)
    pair_c, pair_i = pair_key // n_i, pair_key % n_i
    pair_first = _per_pair(po_day, starts, np.minimum)
    adopted = pair_first >= day - HORIZON_DAYS

    _, order_first = np.unique(o, return_index=True)
    order_c, order_d = c[order_first], d[order_first]
    cust_first = np.full(n_c, np.inf)
    cust_last = np.full(n_c, -np.inf)
    np.minimum.at(cust_first, order_c, order_d)
    np.maximum.at(cust_last, order_c, order_d)
    recent_orders = order_d >= day - HORIZON_DAYS

    def customers_per_item(mask: Bools) -> Floats:
        return np.bincount(pair_i[mask], minlength=n_i).astype(np.float64)

    item_first = np.full(n_i, np.inf)
    item_last = np.full(n_i, -np.inf)
    np.minimum.at(item_first, i, d)
    np.maximum.at(item_last, i, d)
    purchases = Purchases(
        line_pair=np.searchsorted(pair_key, key),
        line_price=history.line_price[m],
        po_pair=np.repeat(np.arange(len(pair_key)), pair_n),
        po_day=po_day,
        pair_c=pair_c,
        pair_i=pair_i,
        pair_n=pair_n.astype(np.float64),
        pair_first=pair_first,
        order_c=order_c,
        order_d=order_d,
        n_customers=n_c,
        n_items=n_i,
    )
    return Aggregates(
        day=day,
        n_items=n_i,
        pair_c=pair_c,
        pair_i=pair_i,
        pair_n=pair_n.astype(np.float64),
        pair_first=pair_first,
        pair_last=_per_pair(po_day, starts, np.maximum),
        pair_recent=pair_recent,
        pair_season=pair_season,
        pair_qty=_per_pair(po_qty.astype(np.float64), starts, np.add),
        cust_orders=np.bincount(order_c, minlength=n_c).astype(np.float64),
        cust_recent=np.bincount(order_c[recent_orders], minlength=n_c).astype(np.float64),
        cust_first=cust_first,
        cust_last=cust_last,
        cust_items=np.bincount(pair_c, minlength=n_c).astype(np.float64),
        cust_new_recent=np.bincount(pair_c[adopted], minlength=n_c).astype(np.float64),
        cust_items_recent=np.bincount(pair_c[pair_recent > 0], minlength=n_c).astype(np.float64),
        item_pop_recent=customers_per_item(pair_recent > 0),
        item_pop_season=customers_per_item(pair_season > 0),
        item_pop_all=customers_per_item(np.ones(len(pair_c), dtype=np.bool_)),
        item_pop_month=customers_per_item(pair_month > 0),
        item_pop_prior=customers_per_item(pair_prior > 0),
        item_adopters=customers_per_item(adopted),
        item_repeaters=customers_per_item(pair_n > 1),
        item_first=item_first,
        item_last=item_last,
        habits=compute(purchases, day, HORIZON_DAYS),
        basket_order=po % n_orders,
        basket_item=po_key % n_i,
    )
