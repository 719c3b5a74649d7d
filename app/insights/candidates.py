"""Candidate generators: which products to score for each customer.

- **repeat**: the products the customer bought (up to ``REPEAT_CAP``, most bought and most
  recent first);
- never-bought products, the union of the best few of each generator:
  - **item-item co-purchase**: cosine over customers between products, applied to the
    customer's own purchases weighted by recency (``exp(-days/180) * sqrt(orders)``);
  - **user-kNN**: the ``NEIGHBOURS`` customers whose recency-weighted purchases are most like
    this customer's, and what they bought in the last ``KNN_DAYS``, first bought lately, or
    bought in the coming weeks a year ago; the same over ``WIDE_NEIGHBOURS``; and the
    neighbours' whole recency-weighted purchase vectors (TIFU-KNN, Hu et al. 2020);
  - **name similarity**: products whose name words are most like those the customer buys;
  - **recent popularity** and **same window last year** (distinct buyers).

Every score is also kept for every candidate (a feature), with its rank within the customer.
Only products sold to someone in the last ``ACTIVE_DAYS`` are suggested as new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
from scipy import sparse

from app.insights import latent
from app.insights.aggregates import Aggregates
from app.insights.history import F32, Bools, Floats, Ints

CHUNK_CUSTOMERS = 512
REPEAT_CAP = 150
NEIGHBOURS = 50
KNN_DAYS = 61.0
RECENCY_DAYS = 180.0
TOP_CF = 40
TOP_KNN = 40
TOP_POP = 15
TOP_SEASON = 15
TOP_WORDS = 20
TOP_ALS = 20
TOP_BASKET = 20
WIDE_NEIGHBOURS = 200
ACCEPT_WEIGHT = 2.0


@dataclass
class Signals:
    """What the generators read, built once per as-of day."""

    sim: F32  # item x item cosine, zero diagonal
    weights: sparse.csr_matrix  # customers x items: recency-weighted purchases
    unit: sparse.csr_matrix  # the same rows L2-normalised (user-kNN)
    recent: sparse.csr_matrix  # customers x items: bought in the last KNN_DAYS (0/1)
    adopted: sparse.csr_matrix  # customers x items: first bought in the last KNN_DAYS (0/1)
    last_year: sparse.csr_matrix  # customers x items: bought in the coming weeks a year ago
    bought: sparse.csr_matrix  # customers x items: ever bought (bool)
    words_t: sparse.csr_matrix  # name words x items (features.word_matrix, transposed)
    taste: sparse.csr_matrix  # customers x name words of what they bought (recency, L2 rows)
    popular: F32  # distinct buyers in the last horizon (-inf: inactive)
    season: F32  # distinct buyers in the same weeks last year (-inf: inactive)
    user_f: F32  # ALS customer factors
    item_f: F32  # ALS product factors
    basket: F32  # item x item cosine over orders, zero diagonal


def build_signals(
    agg: Aggregates, words: sparse.csr_matrix, boost: dict[int, list[int]] | None = None
) -> Signals:
    """Signals as of ``agg.day``; ``boost`` products count as bought yesterday, twice."""
    n_c, n_i = agg.n_customers, agg.n_items
    shape = (n_c, n_i)
    ones = np.ones(len(agg.pair_c), dtype=np.float32)
    b = sparse.csr_matrix((ones, (agg.pair_c, agg.pair_i)), shape=shape)
    co: F32 = np.asarray((b.T @ b).toarray(), dtype=np.float32)
    norm = np.sqrt(np.maximum(np.diag(co), 1.0)).astype(np.float32)
    co /= norm[:, None]
    co /= norm[None, :]
    np.fill_diagonal(co, 0.0)
    w = np.exp(-(agg.day - agg.pair_last) / RECENCY_DAYS) * np.sqrt(agg.pair_n)
    weights = sparse.csr_matrix((w.astype(np.float32), (agg.pair_c, agg.pair_i)), shape=shape)
    if boost:
        bc = [c for c, items in boost.items() for _ in items]
        bi = [i for items in boost.values() for i in items]
        extra = np.full(len(bc), ACCEPT_WEIGHT, dtype=np.float32)
        weights = weights + sparse.csr_matrix((extra, (bc, bi)), shape=shape)
    row_norm = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
    row_norm[row_norm == 0] = 1.0
    unit = sparse.csr_matrix(sparse.diags(1.0 / row_norm) @ weights, dtype=np.float32)
    is_recent = agg.pair_last >= agg.day - KNN_DAYS
    recent = sparse.csr_matrix(
        (ones[is_recent], (agg.pair_c[is_recent], agg.pair_i[is_recent])), shape=shape
    )
    is_adopted = agg.pair_first >= agg.day - KNN_DAYS
    adopted = sparse.csr_matrix(
        (ones[is_adopted], (agg.pair_c[is_adopted], agg.pair_i[is_adopted])), shape=shape
    )
    in_season = agg.pair_season > 0
    last_year = sparse.csr_matrix(
        (ones[in_season], (agg.pair_c[in_season], agg.pair_i[in_season])), shape=shape
    )
    active = agg.active_items()
    popular = np.where(active, agg.item_pop_recent, -np.inf).astype(np.float32)
    season = np.where(active, agg.item_pop_season, -np.inf).astype(np.float32)
    decay = np.exp(-(agg.day - agg.pair_last) / RECENCY_DAYS)
    bought_decay = sparse.csr_matrix((decay, (agg.pair_c, agg.pair_i)), shape=shape)
    taste = sparse.csr_matrix(bought_decay @ words)
    taste_norm = np.sqrt(np.asarray(taste.multiply(taste).sum(axis=1)).ravel())
    taste_norm[taste_norm == 0] = 1.0
    taste = sparse.csr_matrix(sparse.diags(1.0 / taste_norm) @ taste)
    return Signals(
        co, weights, unit, recent, adopted, last_year, b.astype(np.bool_),
        sparse.csr_matrix(words.T), taste, popular, season,
        *latent.als_factors(weights),
        latent.basket_similarity(agg.basket_order, agg.basket_item, n_i),
    )  # fmt: skip


@dataclass
class Candidates:
    """One row per (customer, candidate product): parallel arrays, grouped by customer."""

    c: Ints
    i: Ints
    is_new: Bools  # never bought before
    cf: Floats  # item-item co-purchase score
    cf_rank: Floats  # its rank among all products for the customer (1 = best)
    knn: Floats  # user-kNN score: similarity-weighted neighbours who bought it lately
    knn_rank: Floats
    knn_new: Floats  # neighbours who first bought it lately (adoption), by similarity
    knn_season: Floats  # neighbours who bought it in the coming weeks a year ago
    knn_tifu: Floats  # neighbours' recency-weighted purchases, by similarity (TIFU-KNN)
    knn_wide: Floats  # the WIDE_NEIGHBOURS most similar customers who bought it lately
    words: Floats  # cosine between its name's words and the customer's products' (a category)
    pop_rank: Floats  # rank by recent buyers over all products
    season_rank: Floats  # rank by buyers in the same weeks last year
    als: Floats  # ALS score (customer factors . product factors)
    als_rank: Floats
    basket: Floats  # same-basket co-purchase score

    def take(self, rows: Ints) -> Candidates:
        return Candidates(*(getattr(self, f.name)[rows] for f in fields(self)))


def _ranks(scores: F32) -> F32:
    """Rank of each column within its row (1 = highest score)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(scores)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, scores.shape[1] + 1, dtype=np.float32)[None, :]
    return ranks


def _top(scores: F32, blocked: Bools, k: int) -> Iterator[tuple[Ints, Ints]]:
    masked = np.where(blocked, -np.inf, scores)
    k = min(k, scores.shape[1] - 1)
    if k <= 0:
        return
    top = np.argpartition(-masked, k, axis=1)[:, :k]
    rows = np.repeat(np.arange(scores.shape[0]), k)
    cols = top.ravel()
    ok = np.isfinite(masked[rows, cols]) & (masked[rows, cols] > 0)
    yield rows[ok], cols[ok]


def _nearest(sims: F32, k: int) -> sparse.csr_matrix:
    """The ``k`` largest similarities of each row, as a sparse matrix."""
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    r = np.repeat(np.arange(sims.shape[0]), k)
    return sparse.csr_matrix((sims[r, top.ravel()], (r, top.ravel())), shape=sims.shape)


def _neighbour_scores(sig: Signals, rows: Ints) -> list[F32]:
    """User-kNN: what the most similar customers bought (lately, first lately, a year ago,
    recency-weighted; and lately among a wider circle), by similarity."""
    sims = np.asarray((sig.unit[rows] @ sig.unit.T).toarray(), dtype=np.float32)
    sims[np.arange(len(rows)), rows] = 0.0
    k = min(NEIGHBOURS, sims.shape[1] - 1)
    if k <= 0:
        return [np.zeros((len(rows), sig.recent.shape[1]), dtype=np.float32)] * 5
    w = _nearest(sims, k)
    wide = _nearest(sims, min(WIDE_NEIGHBOURS, sims.shape[1] - 1))

    def dense(m: sparse.csr_matrix) -> F32:
        return np.asarray(m.toarray(), dtype=np.float32)

    return [
        dense(w @ sig.recent),
        dense(w @ sig.adopted),
        dense(w @ sig.last_year),
        dense(w @ sig.unit),
        dense(wide @ sig.recent),
    ]


def _repeat_rows(agg: Aggregates, rows: Ints) -> tuple[Ints, Ints]:
    """(chunk row, item) of the products each customer bought, capped at ``REPEAT_CAP``."""
    lo = np.searchsorted(agg.pair_c, rows)
    hi = np.searchsorted(agg.pair_c, rows, side="right")
    counts = hi - lo
    pos = (
        np.repeat(lo, counts)
        + np.arange(counts.sum())
        - np.repeat(np.cumsum(counts) - counts, counts)
    )
    r = np.repeat(np.arange(len(rows)), counts)
    heat = agg.pair_n[pos] * np.exp(-(agg.day - agg.pair_last[pos]) / 90.0)
    order = np.lexsort((-heat, r))
    start = np.searchsorted(r[order], r[order])
    keep = order[(np.arange(len(order)) - start) < REPEAT_CAP]
    return r[keep], agg.pair_i[pos[keep]]


def generate(
    agg: Aggregates,
    sig: Signals,
    customers: Ints,
    exclude: dict[int, set[int]] | None = None,
) -> Candidates:
    """Candidates for ``customers`` (sorted customer indexes); ``exclude``: never suggest."""
    parts: list[Candidates] = []
    active = agg.active_items()
    pop_rank = _ranks(sig.popular[None, :])[0]
    season_rank = _ranks(sig.season[None, :])[0]
    for start in range(0, len(customers), CHUNK_CUSTOMERS):
        rows = customers[start : start + CHUNK_CUSTOMERS]
        xr = sig.weights[rows]
        cf = np.asarray(xr @ sig.sim, dtype=np.float32)
        knn, knn_new, knn_season, knn_tifu, knn_wide = _neighbour_scores(sig, rows)
        taste = np.asarray((sig.taste[rows] @ sig.words_t).toarray(), dtype=np.float32)
        als = np.asarray(sig.user_f[rows] @ sig.item_f.T, dtype=np.float32)
        basket = np.asarray(xr @ sig.basket, dtype=np.float32)
        bought = sig.bought[rows].toarray()
        declined = np.zeros_like(bought)
        for r, cust in enumerate(rows.tolist()):
            for item in (exclude or {}).get(cust, ()):
                declined[r, item] = True
        blocked = bought | declined | ~active[None, :]
        pop = np.broadcast_to(sig.popular, cf.shape)
        season = np.broadcast_to(sig.season, cf.shape)
        found = [
            *_top(cf, blocked, TOP_CF),
            *_top(knn, blocked, TOP_KNN),
            *_top(knn_new, blocked, TOP_KNN // 2),
            *_top(knn_season, blocked, TOP_KNN // 2),
            *_top(knn_tifu, blocked, TOP_KNN // 2),
            *_top(knn_wide, blocked, TOP_KNN // 2),
            *_top(taste, blocked, TOP_WORDS),
            *_top(als, blocked, TOP_ALS),
            *_top(basket, blocked, TOP_BASKET),
            *_top(pop, blocked, TOP_POP),
            *_top(season, blocked, TOP_SEASON),
            _repeat_rows(agg, rows),
        ]
        key = np.unique(np.concatenate([f[0] * agg.n_items + f[1] for f in found]))
        keep = ~declined[key // agg.n_items, key % agg.n_items]
        r, i = key[keep] // agg.n_items, key[keep] % agg.n_items
        parts.append(
            Candidates(
                c=rows[r],
                i=i,
                is_new=~bought[r, i],
                cf=cf[r, i].astype(np.float64),
                cf_rank=_ranks(cf)[r, i].astype(np.float64),
                knn=knn[r, i].astype(np.float64),
                knn_rank=_ranks(knn)[r, i].astype(np.float64),
                knn_new=knn_new[r, i].astype(np.float64),
                knn_season=knn_season[r, i].astype(np.float64),
                knn_tifu=knn_tifu[r, i].astype(np.float64),
                knn_wide=knn_wide[r, i].astype(np.float64),
                words=taste[r, i].astype(np.float64),
                pop_rank=pop_rank[i].astype(np.float64),
                season_rank=season_rank[i].astype(np.float64),
                als=als[r, i].astype(np.float64),
                als_rank=_ranks(als)[r, i].astype(np.float64),
                basket=basket[r, i].astype(np.float64),
            )
        )
    if not parts:
        empty = np.zeros(0, np.int64)
        return Candidates(empty, empty, empty.astype(np.bool_), *([np.zeros(0)] * 14))
    columns = (np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Candidates))
    return Candidates(*columns)


def anchors(xr: sparse.csr_matrix, sim: F32, rows: Ints, items: Ints) -> tuple[Ints, Floats]:
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
    contrib[bought == items[pair]] = 0.0
    best = np.full(len(rows), -1.0, dtype=np.float64)
    np.maximum.at(best, pair, contrib)
    is_best = contrib >= best[pair] - 1e-12
    anchor = np.full(len(rows), -1, dtype=np.int64)
    anchor[pair[is_best]] = bought[is_best]
    anchor[best <= 0] = -1
    return anchor, np.maximum(best, 0.0)
