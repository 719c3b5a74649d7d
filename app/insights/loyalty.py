"""The seed's frequency programme, computed from purchases by ``screenpop train`` for customers
no loyalty programme knows (docs/customers.md, "Loyalty").

The rule, over the 12 months (``WINDOW_DAYS``) before the training's "as of" (just after the
newest order):

* ``orders_12m``: distinct purchase invoices (lines with a positive quantity, not returns);
* ``spend_12m``: the net value of every line in the window (purchases minus returns), never
  below 0; ``points`` = ``spend_12m`` rounded down (one point per unit of currency);
* ``tier``: ``gold`` with at least 12 orders or 5,000 spent, ``silver`` with at least 4 orders
  or 1,000 spent, ``bronze`` with at least 1 order; no order in the window: no tier;
* ``since``: the date of the customer's first purchase ever.

Vectorised over every customer (three ``bincount``s), so it costs next to nothing beside the
rest of a training run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.insights.history import Floats, History, from_day

WINDOW_DAYS = 365.0
# (tier, minimum orders, minimum spend) best first: a customer reaching either gets the tier.
TIERS = (("gold", 12, 5000.0), ("silver", 4, 1000.0), ("bronze", 1, float("inf")))


@dataclass(frozen=True)
class FrequencyProgramme:
    """Per-customer figures of the rule, as arrays indexed by customer index."""

    window_end: float
    orders: Floats
    spend: Floats
    first: Floats  # day of the first purchase ever, NaN when none

    def tier(self, c: int) -> str | None:
        for name, min_orders, min_spend in TIERS:
            if self.orders[c] >= min_orders or self.spend[c] >= min_spend:
                return name
        return None

    def details(self, c: int) -> dict[str, Any]:
        """What ``insights.details["loyalty"]`` keeps for one customer."""
        first = float(self.first[c])
        return {
            "tier": self.tier(c),
            "points": int(np.floor(self.spend[c])),
            "since": None if np.isnan(first) else from_day(first).date().isoformat(),
            "orders_12m": int(self.orders[c]),
            "spend_12m": round(float(self.spend[c]), 2),
            "window_end": from_day(self.window_end).isoformat(),
        }


def frequency_programme(history: History, now: float) -> FrequencyProgramme:
    """The rule's figures for every customer from the lines before ``now``."""
    n_c = history.n_customers
    before = history.line_day < now
    c, day = history.line_customer[before], history.line_day[before]
    value = history.line_qty[before] * history.line_price[before]
    buy = ~history.line_return[before] & (history.line_qty[before] > 0)
    recent = day >= now - WINDOW_DAYS

    spend = np.bincount(c[recent], weights=value[recent], minlength=n_c).astype(np.float64)
    # One entry per purchase invoice: its customer and day (the order's lines share both).
    _, first_line = np.unique(history.line_order[before][buy], return_index=True)
    order_c, order_day = c[buy][first_line], day[buy][first_line]
    in_window = order_day >= now - WINDOW_DAYS
    counts = np.bincount(order_c[in_window], minlength=n_c).astype(np.float64)
    first = np.full(n_c, np.inf)
    np.minimum.at(first, order_c, order_day)
    return FrequencyProgramme(
        window_end=now,
        orders=counts,
        spend=np.maximum(np.round(spend, 2), 0.0),
        first=np.where(np.isfinite(first), first, np.nan),
    )
