"""Predicted next needs: what a customer will re-order and what they will buy for the first time.

Method (see docs/readme/insights.md for the figures):

1. **Candidates.** Re-order candidates are every product the customer bought. Cross-sell
   candidates are products they never bought, taken from item-item co-occurrence (cosine over
   customers, each customer's items weighted by how recently they bought them) and from what
   sells now and sold in the same weeks last year. Only products sold to someone in the last
   ``ACTIVE_DAYS`` are candidates (the rest are likely discontinued).
2. **Features** per (customer, product): purchase count, recency, share of the customer's
   orders, due-ness against the customer's own repurchase cycle for that product, whether they
   bought it in the same weeks last year, product popularity now / same season last year /
   ever, product age, co-occurrence score and rank, and the customer's own activity.
3. **Ranker.** Two logistic regressions (re-order, cross-sell) are fitted at train time on an
   inner time split of the training data itself: features as of ``now - HORIZON_DAYS``, label
   "bought in the following ``HORIZON_DAYS``", on customers who bought something in that window.
   Both output a probability of purchase in the next ``HORIZON_DAYS`` given the customer buys,
   so the two lists merge into one ranked list by probability: a strong cross-sell candidate
   beats a weak re-order. Nothing after ``now`` is ever read; the fit is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse

from app.insights.history import Bools, Floats, History, Ints

HORIZON_DAYS = 60.0
ACTIVE_DAYS = 90.0
YEAR_DAYS = 364.0  # 52 weeks: the same weekdays last year
CF_CANDIDATES = 60
POP_CANDIDATES = 30
CHUNK_CUSTOMERS = 1024
MAX_PER_KIND = 10
L2 = 1e-3
# Inner time splits the rankers learn from (each one horizon long, newest first).
INNER_SPLITS = 2

F32 = npt.NDArray[np.float32]


@dataclass
class Aggregates:
    """Per customer, per product and per (customer, product) statistics as of ``day``."""

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
    cust_first: Floats
    cust_last: Floats
    cust_items: Floats
    item_pop_recent: Floats  # distinct customers in the last HORIZON_DAYS
    item_pop_season: Floats  # distinct customers in the coming horizon a year ago
    item_pop_all: Floats
    item_pop_month: Floats  # distinct customers in the last 30 days
    item_pop_prior: Floats  # distinct customers in the HORIZON_DAYS before the last ones
    item_first: Floats
    item_last: Floats

    @property
    def pair_key(self) -> Ints:
        return self.pair_c * self.n_items + self.pair_i


def product_purchases(history: History, day: float) -> Bools:
    """Lines that are purchases of products (not returns, fees or postage) before ``day``."""
    return (
        (history.line_day < day)
        & (history.line_qty > 0)
        & ~history.line_return
        & history.is_product[history.line_item]
    )


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
    season_lo, season_hi = day - YEAR_DAYS, day - YEAR_DAYS + HORIZON_DAYS
    in_recent = (po_day >= day - HORIZON_DAYS).astype(np.float64)
    in_month = (po_day >= day - 30.0).astype(np.float64)
    in_prior = ((po_day >= day - 2 * HORIZON_DAYS) & (po_day < day - HORIZON_DAYS)).astype(
        np.float64
    )
    in_season = ((po_day >= season_lo) & (po_day < season_hi)).astype(np.float64)
    if len(po):
        pair_first = np.minimum.reduceat(po_day, starts)
        pair_last = np.maximum.reduceat(po_day, starts)
        pair_recent = np.add.reduceat(in_recent, starts)
        pair_season = np.add.reduceat(in_season, starts)
        pair_month = np.add.reduceat(in_month, starts)
        pair_prior = np.add.reduceat(in_prior, starts)
        pair_qty = np.add.reduceat(po_qty, starts)
    else:
        pair_first = pair_last = pair_recent = pair_season = pair_qty = np.zeros(0)
        pair_month = pair_prior = np.zeros(0)
    pair_c, pair_i = pair_key // n_i, pair_key % n_i

    orders, order_first = np.unique(o, return_index=True)
    order_c, order_d = c[order_first], d[order_first]
    cust_orders = np.bincount(order_c, minlength=n_c).astype(np.float64)
    cust_first = np.full(n_c, np.inf)
    cust_last = np.full(n_c, -np.inf)
    np.minimum.at(cust_first, order_c, order_d)
    np.maximum.at(cust_last, order_c, order_d)
    cust_items = np.bincount(pair_c, minlength=n_c).astype(np.float64)

    def customers_per_item(mask: Bools) -> Floats:
        return np.bincount(pair_i[mask], minlength=n_i).astype(np.float64)

    item_first = np.full(n_i, np.inf)
    item_last = np.full(n_i, -np.inf)
    np.minimum.at(item_first, i, d)
    np.maximum.at(item_last, i, d)
    _ = orders
    return Aggregates(
        day=day,
        n_items=n_i,
        pair_c=pair_c,
        pair_i=pair_i,
        pair_n=pair_n.astype(np.float64),
        pair_first=pair_first,
        pair_last=pair_last,
        pair_recent=pair_recent,
        pair_season=pair_season,
        pair_qty=pair_qty,
        cust_orders=cust_orders,
        cust_first=cust_first,
        cust_last=cust_last,
        cust_items=cust_items,
        item_pop_recent=customers_per_item(pair_recent > 0),
        item_pop_season=customers_per_item(pair_season > 0),
        item_pop_all=customers_per_item(np.ones(len(pair_c), dtype=np.bool_)),
        item_pop_month=customers_per_item(pair_month > 0),
        item_pop_prior=customers_per_item(pair_prior > 0),
        item_first=item_first,
        item_last=item_last,
    )


def item_similarity(agg: Aggregates, n_customers: int) -> F32:
    """Dense item-item cosine over customers (who bought both / sqrt of each's buyers)."""
    b = sparse.csr_matrix(
        (np.ones(len(agg.pair_c), dtype=np.float32), (agg.pair_c, agg.pair_i)),
        shape=(n_customers, agg.n_items),
    )
    co: F32 = np.asarray((b.T @ b).toarray(), dtype=np.float32)
    norm = np.sqrt(np.maximum(np.diag(co), 1.0)).astype(np.float32)
    co /= norm[:, None]
    co /= norm[None, :]
    np.fill_diagonal(co, 0.0)
    return co


STOP_WORDS = frozenset(
    {
        "SET",
        "OF",
        "AND",
        "THE",
        "WITH",
        "IN",
        "FOR",
        "BOX",
        "PACK",
        "SMALL",
        "LARGE",
        "MINI",
        "JUMBO",
        "DESIGN",
        "ASSORTED",
        "COLOUR",
        "COLOURS",
    }
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


def word_affinity(agg: Aggregates, words: sparse.csr_matrix, c: Ints, i: Ints) -> Floats:
    """Cosine between the words of a product and of what the customer bought (recency-weighted)."""
    weight = np.exp(-(agg.day - agg.pair_last) / 180.0)
    x = sparse.csr_matrix(
        (weight, (agg.pair_c, agg.pair_i)), shape=(len(agg.cust_orders), agg.n_items)
    )
    profile = sparse.csr_matrix(x @ words)
    norm = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
    norm[norm == 0] = 1.0
    out = np.asarray(profile[c].multiply(words[i]).sum(axis=1)).ravel() / norm[c]
    return np.asarray(out, dtype=np.float64)


def _finite(x: Floats) -> Floats:
    # Customers without purchases have infinite recencies: cap them (log1p(inf) -> ~60 years).
    return np.nan_to_num(x, nan=0.0, posinf=10.0, neginf=-10.0)


def _log(x: Floats) -> Floats:
    return np.log1p(np.maximum(x, 0.0))


def reorder_features(agg: Aggregates) -> Floats:
    """One row per (customer, product bought before): see the module docstring."""
    t = agg.day
    c, i = agg.pair_c, agg.pair_i
    since = t - agg.pair_last
    n = agg.pair_n
    interval = np.where(n > 1, (agg.pair_last - agg.pair_first) / np.maximum(n - 1, 1), 0.0)
    repeat = (n > 1) & (interval > 0)
    due = np.where(repeat, np.log((since + 1.0) / (interval + 1.0)), 0.0)
    cust_since = t - agg.cust_last[c]
    tenure = t - agg.cust_first[c]
    share = n / np.maximum(agg.cust_orders[c], 1.0)
    return _finite(
        np.column_stack(
            [
                _log(n),
                _log(since),
                np.exp(-since / 30.0),
                np.exp(-since / 120.0),
                share,
                repeat.astype(np.float64),
                np.clip(due, -3, 3),
                np.abs(np.clip(due, -3, 3)),
                (agg.pair_season > 0).astype(np.float64),
                _log(agg.pair_season),
                _log(agg.pair_recent),
                _log(agg.item_pop_recent[i]),
                _log(agg.item_pop_season[i]),
                _log(agg.item_pop_all[i]),
                _log(t - agg.item_last[i]),
                _log(cust_since),
                _log(agg.cust_orders[c]),
                _log(agg.cust_items[c]),
                _log(tenure),
                _log(agg.pair_qty / n),
                _log(agg.item_pop_month[i]),
                _log(agg.item_pop_recent[i]) - _log(agg.item_pop_prior[i]),
                _log(agg.item_pop_season[i]) - _log(agg.item_pop_all[i]),
            ]
        )
    )


@dataclass
class CrossCandidates:
    c: Ints
    i: Ints
    cf: Floats
    cf_rank: Floats
    anchor: Ints  # the bought product that most explains the co-occurrence score (-1: none)
    anchor_sim: Floats  # that product's weighted similarity


def cross_candidates(
    agg: Aggregates,
    sim: F32,
    customers: Ints,
    *,
    boost: dict[int, list[int]] | None = None,
    exclude: dict[int, set[int]] | None = None,
) -> CrossCandidates:
    """Products never bought, by co-occurrence with what the customer bought, plus the sellers.

    ``boost`` maps a customer to products they accepted in a call: their neighbours count as
    if bought yesterday, twice. ``exclude`` maps a customer to products not to suggest.
    """
    n_i = agg.n_items
    t = agg.day
    active = (agg.item_last >= t - ACTIVE_DAYS) & np.isfinite(agg.item_last)
    weight = (np.exp(-(t - agg.pair_last) / 180.0) * np.sqrt(agg.pair_n)).astype(np.float32)
    x = sparse.csr_matrix((weight, (agg.pair_c, agg.pair_i)), shape=(len(agg.cust_orders), n_i))
    bought = sparse.csr_matrix(
        (np.ones(len(agg.pair_c), dtype=np.bool_), (agg.pair_c, agg.pair_i)),
        shape=(len(agg.cust_orders), n_i),
    )
    popular = (_log(agg.item_pop_recent) + 0.5 * _log(agg.item_pop_season)).astype(np.float32)
    popular[~active] = -np.inf
    out_c: list[Ints] = []
    out_i: list[Ints] = []
    out_cf: list[Floats] = []
    out_rank: list[Floats] = []
    out_anchor: list[Ints] = []
    out_best: list[Floats] = []
    for start in range(0, len(customers), CHUNK_CUSTOMERS):
        rows = customers[start : start + CHUNK_CUSTOMERS]
        xr = x[rows]
        if boost:
            xr = xr.tolil()
            for r, cust in enumerate(rows):
                for item in boost.get(int(cust), []):
                    xr[r, item] = xr[r, item] + 2.0
            xr = xr.tocsr()
        scores = np.asarray(xr @ sim, dtype=np.float32)
        blocked = bought[rows].toarray() | ~active[None, :]
        if exclude:
            for r, cust in enumerate(rows):
                for item in exclude.get(int(cust), ()):
                    blocked[r, item] = True
        scores[blocked] = -np.inf
        pop = np.broadcast_to(popular, scores.shape).copy()
        pop[blocked] = -np.inf
        k1 = min(CF_CANDIDATES, n_i - 1)
        k2 = min(POP_CANDIDATES, n_i - 1)
        if k1 <= 0:
            continue
        top_cf = np.argpartition(-scores, k1, axis=1)[:, :k1]
        top_pop = np.argpartition(-pop, k2, axis=1)[:, :k2]
        cand = np.concatenate([top_cf, top_pop], axis=1)
        rr = np.repeat(np.arange(len(rows)), cand.shape[1])
        ci = cand.ravel()
        # Drop duplicates (in both lists) and blocked ones.
        key = np.unique(rr * n_i + ci)
        rr, ci = key // n_i, key % n_i
        cf = scores[rr, ci]
        ok = np.isfinite(cf) | np.isfinite(pop[rr, ci])
        rr, ci, cf = rr[ok], ci[ok], cf[ok]
        cf = np.where(np.isfinite(cf), cf, 0.0)
        # Rank of the co-occurrence score within the customer's row (1 = best).
        order = np.lexsort((-cf, rr))
        group_start = np.searchsorted(rr[order], rr[order])
        rank = np.empty(len(rr), dtype=np.float64)
        rank[order] = np.arange(len(rr)) - group_start + 1
        out_c.append(rows[rr])
        out_i.append(ci)
        out_cf.append(cf.astype(np.float64))
        out_rank.append(rank)
        anchor, best = _anchors(xr, sim, rr, ci)
        out_anchor.append(anchor)
        out_best.append(best)
    if not out_c:
        empty_i = np.zeros(0, np.int64)
        empty_f = np.zeros(0, np.float64)
        return CrossCandidates(empty_i, empty_i, empty_f, empty_f, empty_i, empty_f)
    return CrossCandidates(
        np.concatenate(out_c),
        np.concatenate(out_i),
        np.concatenate(out_cf),
        np.concatenate(out_rank),
        np.concatenate(out_anchor),
        np.concatenate(out_best),
    )


def _anchors(xr: sparse.csr_matrix, sim: F32, rows: Ints, items: Ints) -> tuple[Ints, Floats]:
    """For each (row, item): the row's bought product contributing most to the item's score."""
    indptr, indices, data = xr.indptr, xr.indices, xr.data
    counts = indptr[rows + 1] - indptr[rows]
    if counts.sum() == 0:
        return np.full(len(rows), -1, dtype=np.int64), np.zeros(len(rows))
    pair = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    pos = np.repeat(indptr[rows], counts) + offsets
    bought = indices[pos]
    contrib = sim[bought, items[pair]] * data[pos]
    best = np.full(len(rows), -1.0, dtype=np.float64)
    np.maximum.at(best, pair, contrib)
    is_best = contrib >= best[pair] - 1e-12
    anchor = np.full(len(rows), -1, dtype=np.int64)
    anchor[pair[is_best]] = bought[is_best]
    anchor[best <= 0] = -1
    return anchor, np.maximum(best, 0.0)


def cross_features(agg: Aggregates, cand: CrossCandidates, words: sparse.csr_matrix) -> Floats:
    t = agg.day
    c, i = cand.c, cand.i
    return _finite(
        np.column_stack(
            [
                np.log1p(np.maximum(cand.cf, 0.0)),
                np.log(cand.cf_rank),
                _log(agg.item_pop_recent[i]),
                _log(agg.item_pop_season[i]),
                _log(agg.item_pop_all[i]),
                _log(t - agg.item_first[i]),
                _log(t - agg.item_last[i]),
                _log(t - agg.cust_last[c]),
                _log(agg.cust_orders[c]),
                _log(agg.cust_items[c]),
                cand.cf / np.maximum(agg.cust_items[c], 1.0),
                _log(agg.item_pop_month[i]),
                _log(agg.item_pop_recent[i]) - _log(agg.item_pop_prior[i]),
                _log(agg.item_pop_season[i]) - _log(agg.item_pop_all[i]),
                np.log1p(cand.anchor_sim),
                word_affinity(agg, words, c, i),
            ]
        )
    )


@dataclass
class LogisticModel:
    """A standardised logistic regression: ``p = sigmoid(w . (x - mean) / scale + b)``."""

    mean: Floats
    scale: Floats
    weights: Floats
    bias: float

    def predict(self, x: Floats) -> Floats:
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)

    def as_dict(self) -> dict[str, list[float] | float]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LogisticModel:
        def arr(name: str) -> Floats:
            return np.asarray(data[name], dtype=np.float64)

        return cls(arr("mean"), arr("scale"), arr("weights"), float(data["bias"]))  # type: ignore[arg-type]


def fit_logistic(x: Floats, y: Floats) -> LogisticModel:
    """Deterministic L-BFGS fit of an L2-regularised logistic regression."""
    n, d = x.shape
    mean = x.mean(axis=0) if n else np.zeros(d)
    scale = x.std(axis=0) if n else np.ones(d)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    prior = float(np.clip(y.mean(), 1e-6, 1 - 1e-6)) if n else 0.5

    def loss(theta: Floats) -> tuple[float, Floats]:
        w, b = theta[:d], theta[d]
        s = z @ w + b
        # log(1 + e^s) - y s, computed stably.
        value = np.logaddexp(0.0, s) - y * s
        p = 1.0 / (1.0 + np.exp(-s))
        g = p - y
        grad = np.concatenate([z.T @ g / n + 2 * L2 * w, [g.mean()]])
        return float(value.mean() + L2 * (w @ w)), grad

    theta0 = np.zeros(d + 1)
    theta0[d] = np.log(prior / (1 - prior))
    if n == 0 or y.min() == y.max():
        return LogisticModel(mean, scale, np.zeros(d), float(theta0[d]))
    result = optimize.minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 300})
    theta = np.asarray(result.x, dtype=np.float64)
    return LogisticModel(mean, scale, theta[:d], float(theta[d]))


@dataclass
class Rankers:
    reorder: LogisticModel
    cross: LogisticModel

    def as_dict(self) -> dict[str, object]:
        return {"reorder": self.reorder.as_dict(), "cross": self.cross.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Rankers:
        return cls(
            LogisticModel.from_dict(data["reorder"]),  # type: ignore[arg-type]
            LogisticModel.from_dict(data["cross"]),  # type: ignore[arg-type]
        )


def fit_rankers(history: History, now: float, splits: int = INNER_SPLITS) -> Rankers:
    """Fit both rankers on inner splits: features at ``now - k * HORIZON``, labels after."""
    xs_re: list[Floats] = []
    ys_re: list[Floats] = []
    xs_cs: list[Floats] = []
    ys_cs: list[Floats] = []
    words = word_matrix(history.names)
    n_i = history.n_items
    for k in range(1, splits + 1):
        end = now - (k - 1) * HORIZON_DAYS
        cut = end - HORIZON_DAYS
        agg = aggregate(history, cut)
        window = product_purchases(history, end) & (history.line_day >= cut)
        bought_keys = np.unique(history.line_customer[window] * n_i + history.line_item[window])
        buyers = np.unique(bought_keys // n_i)
        learners = np.intersect1d(buyers, np.flatnonzero(agg.cust_orders > 0))

        on = np.isin(agg.pair_c, learners)
        xs_re.append(reorder_features(agg)[on])
        ys_re.append(np.isin(agg.pair_key[on], bought_keys).astype(np.float64))
        sim = item_similarity(agg, history.n_customers)
        cand = cross_candidates(agg, sim, learners)
        xs_cs.append(cross_features(agg, cand, words))
        ys_cs.append(np.isin(cand.c * n_i + cand.i, bought_keys).astype(np.float64))
    return Rankers(
        fit_logistic(np.concatenate(xs_re), np.concatenate(ys_re)),
        fit_logistic(np.concatenate(xs_cs), np.concatenate(ys_cs)),
    )


@dataclass
class Suggestions:
    """Ranked next needs for all customers: parallel arrays, grouped by customer, best first."""

    c: Ints
    i: Ints
    kind: npt.NDArray[np.str_]
    score: Floats
    rank: Ints
    anchor: Ints  # cross-sell: the bought product it goes with (-1: none)


def top_per_customer(c: Ints, score: Floats, k: int) -> Ints:
    """Indexes of the ``k`` best rows of each customer, grouped by customer, best first."""
    order = np.lexsort((-score, c))
    sc = c[order]
    start = np.searchsorted(sc, sc)
    pos = np.arange(len(sc)) - start
    return order[pos < k]


def suggest(
    history: History,
    now: float,
    rankers: Rankers,
    customers: Ints,
    *,
    exclude: dict[int, set[int]] | None = None,
    boost: dict[int, list[int]] | None = None,
    agg: Aggregates | None = None,
    sim: F32 | None = None,
) -> tuple[Suggestions, Aggregates]:
    """Up to ``MAX_PER_KIND`` re-orders and cross-sells per customer, one list by probability."""
    agg = agg if agg is not None else aggregate(history, now)
    sim = sim if sim is not None else item_similarity(agg, history.n_customers)
    n_i = history.n_items
    on = np.isin(agg.pair_c, customers)
    re_p = rankers.reorder.predict(reorder_features(agg)[on]) if on.any() else np.zeros(0)
    re_c, re_i = agg.pair_c[on], agg.pair_i[on]
    if exclude:
        blocked = np.isin(re_c * n_i + re_i, _keys(exclude, n_i))
        re_p, re_c, re_i = re_p[~blocked], re_c[~blocked], re_i[~blocked]
    keep = top_per_customer(re_c, re_p, MAX_PER_KIND)
    re_c, re_i, re_p = re_c[keep], re_i[keep], re_p[keep]

    cand = cross_candidates(agg, sim, customers, boost=boost, exclude=exclude)
    cs_p = (
        rankers.cross.predict(cross_features(agg, cand, word_matrix(history.names)))
        if len(cand.c)
        else np.zeros(0)
    )
    if boost:
        # Products that go with one the customer accepted in a call move up.
        accepted = _keys({c: set(items) for c, items in boost.items()}, n_i)
        boosted = (cand.anchor >= 0) & np.isin(cand.c * n_i + cand.anchor, accepted)
        cs_p = np.where(boosted, np.minimum(1.0, cs_p * 1.5 + 0.05), cs_p)
    keep = top_per_customer(cand.c, cs_p, MAX_PER_KIND)

    c = np.concatenate([re_c, cand.c[keep]])
    i = np.concatenate([re_i, cand.i[keep]])
    p = np.concatenate([re_p, cs_p[keep]])
    kind = np.concatenate([np.full(len(re_c), "reorder"), np.full(len(keep), "cross_sell")]).astype(
        np.str_
    )
    anchor = np.concatenate([np.full(len(re_c), -1, dtype=np.int64), cand.anchor[keep]])
    order = top_per_customer(c, p, 2 * MAX_PER_KIND)
    c, i, p, kind, anchor = c[order], i[order], p[order], kind[order], anchor[order]
    start = np.searchsorted(c, c)
    rank = (np.arange(len(c)) - start + 1).astype(np.int64)
    return Suggestions(c, i, kind, p, rank, anchor), agg


def _keys(mapping: dict[int, set[int]], n_i: int) -> Ints:
    keys = [c * n_i + i for c, items in mapping.items() for i in items]
    return np.asarray(keys, dtype=np.int64)
