"""Who the customer is to us: lifetime value, tier, potential, segment, stage, churn, treatment.

All per-customer figures come from one pass of NumPy group-bys over the history arrays.
The rules are written out in the README ("What is computed"); the thresholds are here, named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.insights.history import Floats, History, Ints, from_day
from app.insights.loyalty import frequency_programme

# Value tiers by lifetime value (historic + 12-month forecast) percentile.
HIGH_TIER_SHARE = 0.20
MEDIUM_TIER_SHARE = 0.30
# Potential: not high value yet, and the last 90 days' spend beats the 90 days before by half.
GROWTH_WINDOW_DAYS = 90.0
GROWTH_FACTOR = 1.5
# Churn: recency measured in the customer's own inter-purchase intervals; risk 0.5 at 2 intervals.
CHURN_HALF_AT_INTERVALS = 2.0
MIN_INTERVAL_DAYS = 7.0
DEFAULT_INTERVAL_DAYS = 60.0
DISSOLUTION_RISK = 0.7
# Segment rules.
LOYAL_MIN_ORDERS = 6
LOYAL_MIN_REPEAT_SHARE = 0.25
DISCOUNT_MIN_BELOW_MEDIAN_SHARE = 0.6
NEED_MIN_REPEAT_SHARE = 0.4
IMPULSIVE_MIN_RETURN_SHARE = 0.1
IMPULSIVE_MAX_REPEAT_SHARE = 0.2
FORECAST_YEARS = 1.0

SEGMENTS = ("loyal", "discount", "impulsive", "need-based", "wandering")
STAGES = ("exploration", "awareness", "expansion", "commitment", "dissolution")


@dataclass(frozen=True)
class Thresholds:
    """Population statistics a run depends on (kept from the last full run for --since runs)."""

    tier_high: float
    tier_medium: float
    spread_median: float
    interval_median: float

    def as_dict(self) -> dict[str, float]:
        return {
            "tier_high": self.tier_high,
            "tier_medium": self.tier_medium,
            "spread_median": self.spread_median,
            "interval_median": self.interval_median,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        return cls(
            float(data["tier_high"]),
            float(data["tier_medium"]),
            float(data["spread_median"]),
            float(data["interval_median"]),
        )


@dataclass
class CustomerFigures:
    """Per-customer figures as parallel arrays indexed by customer index."""

    orders: Floats
    first: Floats
    last: Floats
    spend: Floats  # net: purchases minus returns, every line
    purchases: Floats
    returns: Floats
    spend_recent: Floats
    spend_prior: Floats
    items: Floats  # distinct products
    product_lines: Floats
    repeat_share: Floats  # share of distinct products bought in two orders or more
    below_median_share: Floats  # share of product lines below the product's median price
    gap_cv: Floats  # irregularity of the gaps between orders


def figures(history: History, now: float) -> CustomerFigures:
    """Money and behaviour figures for every customer from the lines before ``now``."""
    n_c = history.n_customers
    before = history.line_day < now
    c, day = history.line_customer[before], history.line_day[before]
    value = history.line_qty[before] * history.line_price[before]
    ret = history.line_return[before] | (history.line_qty[before] < 0)
    buy = ~ret
    order = history.line_order[before]

    def by_customer(weights: Floats, mask: Any = None) -> Floats:
        if mask is None:
            return np.bincount(c, weights=weights, minlength=n_c).astype(np.float64)
        return np.bincount(c[mask], weights=weights[mask], minlength=n_c).astype(np.float64)

    purchases = by_customer(value, buy)
    returns = -by_customer(value, ret)
    recent = day >= now - GROWTH_WINDOW_DAYS
    prior = (day >= now - 2 * GROWTH_WINDOW_DAYS) & ~recent
    spend_recent = by_customer(value, recent)
    spend_prior = by_customer(value, prior)

    # Orders: distinct purchase invoices.
    orders_u, first_idx = np.unique(order[buy], return_index=True)
    oc, od = c[buy][first_idx], day[buy][first_idx]
    n_orders = np.bincount(oc, minlength=n_c).astype(np.float64)
    first = np.full(n_c, np.nan)
    last = np.full(n_c, np.nan)
    if len(oc):
        tmp_first = np.full(n_c, np.inf)
        tmp_last = np.full(n_c, -np.inf)
        np.minimum.at(tmp_first, oc, od)
        np.maximum.at(tmp_last, oc, od)
        first = np.where(np.isfinite(tmp_first), tmp_first, np.nan)
        last = np.where(np.isfinite(tmp_last), tmp_last, np.nan)
    gap_cv = _gap_cv(oc, od, n_c)
    _ = orders_u

    prod = buy & history.is_product[history.line_item[before]] & (history.line_qty[before] > 0)
    pc, pi = c[prod], history.line_item[before][prod]
    price = history.line_price[before][prod]
    product_lines = np.bincount(pc, minlength=n_c).astype(np.float64)
    below = _below_median(pi, price, history.n_items)
    below_share = np.bincount(pc, weights=below, minlength=n_c) / np.maximum(product_lines, 1)
    n_i = history.n_items
    pair_order = np.unique((pc * n_i + pi) * (int(order.max(initial=0)) + 1) + order[prod])
    pair_of = pair_order // (int(order.max(initial=0)) + 1)
    pairs, counts = np.unique(pair_of, return_counts=True)
    pair_c = pairs // n_i
    items = np.bincount(pair_c, minlength=n_c).astype(np.float64)
    repeated = np.bincount(pair_c, weights=(counts > 1).astype(np.float64), minlength=n_c)
    return CustomerFigures(
        orders=n_orders,
        first=first,
        last=last,
        spend=purchases - returns,
        purchases=purchases,
        returns=returns,
        spend_recent=spend_recent,
        spend_prior=spend_prior,
        items=items,
        product_lines=product_lines,
        repeat_share=repeated / np.maximum(items, 1),
        below_median_share=below_share,
        gap_cv=gap_cv,
    )


def _below_median(items: Ints, price: Floats, n_items: int) -> Floats:
    """1.0 for a line priced below its product's median price over all purchase lines."""
    if len(items) == 0:
        return np.zeros(0)
    order = np.lexsort((price, items))
    si, sp = items[order], price[order]
    starts = np.searchsorted(si, np.arange(n_items))
    ends = np.searchsorted(si, np.arange(n_items), side="right")
    lo = np.clip((starts + ends - 1) // 2, 0, len(sp) - 1)
    hi = np.clip((starts + ends) // 2, 0, len(sp) - 1)
    median = (sp[lo] + sp[hi]) / 2.0
    below: Floats = (price < median[items] - 1e-9).astype(np.float64)
    return below


def _gap_cv(order_c: Ints, order_day: Floats, n_c: int) -> Floats:
    """Coefficient of variation of each customer's gaps between orders (0 with < 3 orders)."""
    out = np.zeros(n_c)
    if len(order_c) < 2:
        return out
    idx = np.lexsort((order_day, order_c))
    sc, sd = order_c[idx], order_day[idx]
    same = sc[1:] == sc[:-1]
    gaps, gc = np.diff(sd)[same], sc[1:][same]
    n = np.bincount(gc, minlength=n_c)
    mean = np.bincount(gc, weights=gaps, minlength=n_c) / np.maximum(n, 1)
    sq = np.bincount(gc, weights=gaps**2, minlength=n_c) / np.maximum(n, 1)
    std = np.sqrt(np.maximum(sq - mean**2, 0))
    return np.where((n >= 2) & (mean > 0), std / np.maximum(mean, 1e-9), 0.0)


@dataclass
class Insight:
    """The profile's insight block for one customer."""

    clv_historic: float
    clv_forecast: float
    value_tier: str
    potential: bool
    segment: str
    stage: str
    churn_risk: float
    satisfaction_trend: str
    treatment: str
    details: dict[str, Any]


def usual_interval(span: Floats, gaps: Floats | Ints, fallback: float) -> Floats:
    """The usual interval: ``span / gaps`` days (first to last of ``gaps + 1`` purchases), at
    least ``MIN_INTERVAL_DAYS``; ``fallback`` with no gap yet (one purchase)."""
    own = span / np.maximum(gaps, 1)
    return np.where(gaps >= 1, np.maximum(own, MIN_INTERVAL_DAYS), fallback)


def interval_days(fig: CustomerFigures, fallback: float) -> Floats:
    """Each customer's mean days between orders; ``fallback`` with fewer than two orders."""
    return usual_interval(np.nan_to_num(fig.last - fig.first), fig.orders - 1, fallback)


def churn_risk(recency: Floats, interval: Floats) -> Floats:
    """0..1: 1 - exp(-ln2 (recency / (2 interval))^2). 0.5 when twice the usual gap has passed."""
    ratio = recency / (CHURN_HALF_AT_INTERVALS * np.maximum(interval, MIN_INTERVAL_DAYS))
    return np.asarray(1.0 - np.exp(-np.log(2.0) * ratio**2), dtype=np.float64)


def lifetime_values(fig: CustomerFigures, now: float, churn: Floats) -> tuple[Floats, Floats]:
    """Historic net spend and a 12-month forecast: orders/year x average order x P(still active).

    The yearly rate uses the customer's tenure, at least 90 days so that a brand-new customer's
    single order does not extrapolate to a huge rate.
    """
    tenure = np.nan_to_num(now - fig.first)
    years = np.maximum(tenure, 90.0) / 365.0
    rate = fig.orders / years
    aov = np.where(fig.orders > 0, fig.spend / np.maximum(fig.orders, 1), 0.0)
    forecast = np.maximum(rate * np.maximum(aov, 0.0) * (1.0 - churn) * FORECAST_YEARS, 0.0)
    return fig.spend, forecast


def population_thresholds(fig: CustomerFigures, value: Floats) -> Thresholds:
    """Tier cut-offs and medians over the customers who bought something."""
    buyers = fig.orders > 0
    if not buyers.any():
        return Thresholds(0.0, 0.0, 1.0, DEFAULT_INTERVAL_DAYS)
    v = value[buyers]
    spread = fig.items[buyers] / np.maximum(fig.orders[buyers], 1)
    span = np.nan_to_num(fig.last - fig.first)[buyers]
    repeat = fig.orders[buyers] >= 2
    intervals = span[repeat] / (fig.orders[buyers][repeat] - 1)
    return Thresholds(
        tier_high=float(np.quantile(v, 1 - HIGH_TIER_SHARE)),
        tier_medium=float(np.quantile(v, 1 - HIGH_TIER_SHARE - MEDIUM_TIER_SHARE)),
        spread_median=float(np.median(spread)),
        interval_median=float(np.median(intervals)) if len(intervals) else DEFAULT_INTERVAL_DAYS,
    )


def segment_of(
    orders: float,
    recency: float,
    interval: float,
    repeat_share: float,
    spread: float,
    returns_share: float,
    below_median_share: float,
    th: Thresholds,
) -> str:
    """The behaviour segment; the first rule that matches wins (order matters).

    - wandering: at most two orders (no pattern yet), or lapsed (no order for three usual gaps)
      with fewer than ``LOYAL_MIN_ORDERS`` orders;
    - discount: most lines bought below the product's median price (price/volume-break buyer);
    - loyal: many orders, re-buys a good share of products, and is buying on rhythm;
    - impulsive: wide baskets of things rarely bought again, or many returns;
    - need-based: comes back for the same products (high repeat share), narrow baskets;
    - otherwise wandering (no dominant pattern).
    """
    if orders <= 2 or (recency > 3 * interval and orders < LOYAL_MIN_ORDERS):
        return "wandering"
    if below_median_share >= DISCOUNT_MIN_BELOW_MEDIAN_SHARE:
        return "discount"
    if (
        orders >= LOYAL_MIN_ORDERS
        and repeat_share >= LOYAL_MIN_REPEAT_SHARE
        and recency <= max(2 * interval, 30.0)
    ):
        return "loyal"
    if returns_share >= IMPULSIVE_MIN_RETURN_SHARE or (
        repeat_share < IMPULSIVE_MAX_REPEAT_SHARE and spread > th.spread_median
    ):
        return "impulsive"
    if repeat_share >= NEED_MIN_REPEAT_SHARE or spread <= th.spread_median:
        return "need-based"
    return "wandering"


def stage_of(orders: float, tenure: float, risk: float, growing: bool) -> str:
    """The relationship stage (Dwyer, Schurr and Oh), first match wins:

    dissolution (churn risk >= ``DISSOLUTION_RISK``), exploration (first 90 days, at most two
    orders), awareness (three orders or fewer), expansion (spend growing), else commitment.
    """
    if orders > 0 and risk >= DISSOLUTION_RISK:
        return "dissolution"
    if tenure <= 90 and orders <= 2:
        return "exploration"
    if orders <= 3:
        return "awareness"
    if growing:
        return "expansion"
    return "commitment"


def satisfaction_trends(history: History, now: float) -> list[str]:
    """improving / steady / declining from recorded grades (recent half vs earlier), or none."""
    out = ["none"] * history.n_customers
    ok = (history.touch_day < now) & ~np.isnan(history.touch_satisfaction)
    c, d, s = history.touch_customer[ok], history.touch_day[ok], history.touch_satisfaction[ok]
    idx = np.lexsort((d, c))
    c, s = c[idx], s[idx]
    bounds = np.flatnonzero(np.diff(c)) + 1
    for chunk_c, chunk_s in zip(np.split(c, bounds), np.split(s, bounds), strict=True):
        if len(chunk_c) == 0:
            continue
        out[int(chunk_c[0])] = satisfaction_trend([float(x) for x in chunk_s])
    return out


def satisfaction_trend(grades: list[float]) -> str:
    """Grades oldest first: the mean of the newer half vs the older half, 0.5 points either way."""
    if not grades:
        return "none"
    if len(grades) == 1:
        return "steady"
    half = len(grades) // 2
    older, newer = grades[:half], grades[half:]
    delta = sum(newer) / len(newer) - sum(older) / len(older)
    if delta >= 0.5:
        return "improving"
    if delta <= -0.5:
        return "declining"
    return "steady"


def treatment_for(
    tier: str,
    stage: str,
    potential: bool,
    segment: str,
    satisfaction: str,
    consent: bool,
    recency: float,
    interval: float,
) -> str:
    """One sentence the agent can act on; the most important situation first."""
    if tier == "high" and satisfaction == "declining":
        text = (
            "Priority handling: high-value customer whose satisfaction is slipping; resolve first."
        )
    elif stage == "dissolution":
        text = (
            f"Retention: no order for {_weeks(recency)}, usually every {_weeks(interval)}; "
            "ask what changed and offer a retention incentive."
        )
    elif tier == "high":
        text = "Priority service: high-value customer; fast, senior handling."
    elif potential:
        text = "Up-sell: spending is growing fast; suggest the next needs and volume options."
    elif stage == "exploration":
        text = "Welcome: new customer; make the next order easy and introduce best sellers."
    elif segment == "discount":
        text = "Price-led buyer: mention current offers and volume breaks."
    elif segment == "need-based":
        text = "Need-based: remind them of re-orders that are due."
    else:
        text = "Standard service: offer the top next need."
    if not consent:
        text += " No marketing permission: do not make offers."
    return text


def _weeks(days: float) -> str:
    weeks = max(1, round(days / 7))
    return "1 week" if weeks == 1 else f"{weeks} weeks"


def compute(
    history: History, now: float, customers: Ints, thresholds: Thresholds | None = None
) -> tuple[dict[int, Insight], Thresholds]:
    """Insights for the given customer indexes (population thresholds computed if not given)."""
    fig = figures(history, now)
    recency = np.nan_to_num(now - fig.last, nan=0.0)
    provisional = thresholds or population_thresholds(fig, fig.spend)
    interval = interval_days(fig, provisional.interval_median)
    risk = np.where(fig.orders > 0, churn_risk(recency, interval), 0.0)
    historic, forecast = lifetime_values(fig, now, risk)
    value = historic + forecast
    th = thresholds or population_thresholds(fig, value)
    tenure = np.nan_to_num(now - fig.first, nan=0.0)
    growing = (fig.spend_recent > GROWTH_FACTOR * fig.spend_prior) & (fig.spend_recent > 0)
    sat = satisfaction_trends(history, now)
    programme = frequency_programme(history, now)
    out: dict[int, Insight] = {}
    for c in customers.tolist():
        tier = (
            "high" if value[c] >= th.tier_high and value[c] > 0
            else "medium" if value[c] >= th.tier_medium and value[c] > 0
            else "low"
        )  # fmt: skip
        potential = bool(growing[c] and tier != "high")
        spread = fig.items[c] / max(fig.orders[c], 1.0)
        returns_share = max(0.0, fig.returns[c] / fig.purchases[c]) if fig.purchases[c] > 0 else 0.0
        segment = segment_of(
            fig.orders[c],
            recency[c],
            interval[c],
            fig.repeat_share[c],
            spread,
            returns_share,
            fig.below_median_share[c],
            th,
        )
        stage = stage_of(fig.orders[c], tenure[c], risk[c], bool(growing[c]))
        treatment = treatment_for(
            tier,
            stage,
            potential,
            segment,
            sat[c],
            bool(history.consent[c]),
            recency[c],
            interval[c],
        )
        out[c] = Insight(
            clv_historic=round(float(historic[c]), 2),
            clv_forecast=round(float(forecast[c]), 2),
            value_tier=tier,
            potential=potential,
            segment=segment,
            stage=stage,
            churn_risk=round(float(risk[c]), 4),
            satisfaction_trend=sat[c],
            treatment=treatment,
            details={
                "orders": int(fig.orders[c]),
                "first_order": _iso(fig.first[c]),
                "last_order": _iso(fig.last[c]),
                "recency_days": round(float(recency[c]), 1),
                "tenure_days": round(float(tenure[c]), 1),
                "interval_days": round(float(interval[c]), 1),
                "average_order": round(float(fig.spend[c] / max(fig.orders[c], 1.0)), 2),
                "distinct_products": int(fig.items[c]),
                "items_per_order": round(float(spread), 2),
                "repeat_share": round(float(fig.repeat_share[c]), 3),
                "returns_share": round(float(returns_share), 3),
                "below_median_price_share": round(float(fig.below_median_share[c]), 3),
                "spend_last_90d": round(float(fig.spend_recent[c]), 2),
                "spend_prior_90d": round(float(fig.spend_prior[c]), 2),
                "loyalty": programme.details(c),
            },
        )
    return out, th


def _iso(day: float) -> str | None:
    if np.isnan(day):
        return None
    return from_day(float(day)).isoformat()
