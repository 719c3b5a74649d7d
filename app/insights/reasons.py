"""Sentences an agent can say aloud, built from the features that drove each suggestion.

A re-order always starts with the customer's own history ("bought 6 times, last 3 weeks ago")
and adds what drove it: the usual interval when it is due ("usually every 5 weeks, due now"),
the same weeks last year, or what similar customers are buying. A cross-sell says why it is
there: the product it is most often bought with, similar customers (what they bought lately,
or the shared taste of the ALS factors), last year's season, a best seller, a rising seller or
a new line.
"""

from __future__ import annotations

import numpy as np

from app.insights import features
from app.insights.aggregates import HORIZON_DAYS, Aggregates
from app.insights.history import Floats, History

COL = {name: n for n, name in enumerate(features.FEATURES)}


def _span(days: float) -> str:
    if days < 1.5:
        return "1 day"
    if days < 14:
        return f"{round(days)} days"
    if days < 63:
        return f"{round(days / 7)} weeks"
    months = round(days / 30.4)
    return "1 month" if months == 1 else f"{months} months"


def _ago(days: float) -> str:
    return "today" if days < 1 else f"{_span(days)} ago"


class Reasons:
    """Reason text for one suggestion from its features (``x``), driver and anchor."""

    def __init__(self, history: History, agg: Aggregates, accepted: set[tuple[int, int]]) -> None:
        self.names = history.names
        self.agg = agg
        self.accepted = accepted

    def reason(self, c: int, i: int, kind: str, driver: str, anchor: int, x: Floats) -> str:
        if kind == "reorder":
            return self._reorder(driver, x)
        return self._cross(c, i, driver, anchor)

    def _reorder(self, driver: str, x: Floats) -> str:
        n = int(x[COL["pair_orders"]])
        since = float(x[COL["pair_since"]])
        interval = float(x[COL["pair_interval"]])
        times = "once" if n == 1 else "twice" if n == 2 else f"{n} times"
        clauses = [f"bought {times}, last {_ago(since)}"]
        due = n >= 2 and np.isfinite(interval) and interval >= 1 and since >= 0.8 * interval
        if due:
            clauses.append(f"usually every {_span(interval)}, due now")
        if x[COL["pair_season"]] > 0:
            clauses.append("bought this time last year")
        if driver == "neighbours" and len(clauses) < 3:
            clauses.append("customers who buy the same products are buying it now")
        elif driver in ("popular", "trending") and len(clauses) < 3:
            clauses.append("selling well right now")
        return "; ".join(clauses)

    def _cross(self, c: int, i: int, driver: str, anchor: int) -> str:
        agg = self.agg
        if anchor >= 0 and (c, anchor) in self.accepted:
            return f"goes with {self.names[anchor]}, which they took on a recent call"
        recent = int(agg.item_pop_recent[i])
        days = int(HORIZON_DAYS)
        if driver == "goes_with" and anchor >= 0:
            return f"often bought with {self.names[anchor]}"
        if driver == "season" and agg.item_pop_season[i] >= 3:
            then = int(agg.item_pop_season[i])
            return f"popular this time last year: {then} customers bought it then"
        if driver == "new_line" and agg.day - agg.item_first[i] <= 2 * HORIZON_DAYS:
            return f"new line, already bought by {recent} customers"
        if driver == "trending" and agg.item_pop_recent[i] > agg.item_pop_prior[i]:
            prior = int(agg.item_pop_prior[i])
            return (
                f"selling more lately: {recent} customers in the last {days} days, {prior} before"
            )
        if driver == "popular":
            return f"best seller: bought by {recent} customers in the last {days} days"
        if driver == "taste":
            return "customers who buy the same kinds of products as them buy this"
        return f"customers who buy their usual products bought this in the last {days} days"
