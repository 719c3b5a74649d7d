"""The learned rankers: LightGBM over candidates, fitted on past time windows.

Two models share the features (``features.FEATURES``); each is the mean raw score of boosters
fitted with ``SEEDS``:
- **any**: every candidate (bought before or not), relevance = bought in the following
  ``HORIZON_DAYS``, objective ``ANY_OBJECTIVE`` (``lambdarank`` over each customer's
  candidates: it measured better than binary log-loss for this list); it orders the list;
- **cross**: never-bought candidates only, same relevance, binary log-loss (its log-odds add
  to the "any" score); it orders the cross-sell picks.

Training windows end ``WINDOW_OFFSETS`` days before "now": features as of the window's start,
labels from the horizon that follows, learners = customers who bought something in it (as in
the evaluation). The oldest window is the same season a year earlier. Nothing at or after
"now" is read; the fit is deterministic (fixed seed, ``deterministic=True``).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from scipy import sparse

from app.insights import features
from app.insights.aggregates import HORIZON_DAYS, aggregate, product_purchases
from app.insights.candidates import build_signals, generate
from app.insights.history import Bools, Floats, History, Ints
from app.insights.progress import Report, silent

WINDOW_OFFSETS = (60.0, 120.0, 364.0)
# The cross-sell ranker's windows (its rows are the fewer never-bought candidates).
CROSS_WINDOW_OFFSETS = (60.0, 90.0, 120.0, 150.0, 364.0)
ROUNDS = 100
# Each ranker is the mean log-odds of this many boosters fitted with different seeds (the
# row and feature sampling differ): one booster's list moves by about a point of HR@10 with
# the seed, their mean less so.
SEEDS = (7, 8, 9)
NEGATIVE_SHARE = 0.5
# The "any" ranker's objective (the cross-sell one is always binary).
ANY_OBJECTIVE = "lambdarank"
PARAMS: dict[str, object] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "max_bin": 63,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "num_threads": 2,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


class Ensemble:
    """Boosters whose mean raw score (log-odds for binary ones) is the score; ``predict``
    gives its sigmoid (a probability for binary boosters, a 0..1 ranking score otherwise)."""

    def __init__(self, boosters: list[lgb.Booster]) -> None:
        self.boosters = boosters

    def predict(self, x: npt.NDArray[np.float32]) -> Floats:
        raw = np.mean([b.predict(x, raw_score=True) for b in self.boosters], axis=0)
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)

    def feature_name(self) -> list[str]:
        return list(self.boosters[0].feature_name())

    def to_strings(self) -> list[str]:
        return [b.model_to_string() for b in self.boosters]

    @classmethod
    def from_strings(cls, texts: list[str]) -> Ensemble:
        if not isinstance(texts, list) or not texts:
            raise TypeError("an ensemble is a non-empty list of LightGBM models")
        return cls([lgb.Booster(model_str=t) for t in texts])


@dataclass
class Rankers:
    """The two fitted ensembles (LightGBM's text format, in the run's params)."""

    any: Ensemble
    cross: Ensemble

    def as_dict(self) -> dict[str, list[str]]:
        return {"any": self.any.to_strings(), "cross": self.cross.to_strings()}

    @staticmethod
    def fits(data: dict[str, list[str]]) -> bool:
        """True when stored rankers were fitted on today's features."""
        try:
            models = [Ensemble.from_strings(data[key]) for key in ("any", "cross")]
        except (KeyError, TypeError, lgb.basic.LightGBMError):
            return False
        return all(m.feature_name() == list(features.FEATURES) for m in models)

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Rankers:
        return cls(Ensemble.from_strings(data["any"]), Ensemble.from_strings(data["cross"]))


@dataclass
class Window:
    """Training rows of one window, grouped by customer."""

    x: Floats
    y: Floats
    c: Ints
    is_new: Bools


def window_rows(history: History, cut: float, words: sparse.csr_matrix) -> Window:
    """Candidates as of ``cut`` for the customers who bought in the horizon after it."""
    agg = aggregate(history, cut)
    end = cut + HORIZON_DAYS
    n_i = history.n_items
    later = product_purchases(history, end) & (history.line_day >= cut)
    bought = np.unique(history.line_customer[later] * n_i + history.line_item[later])
    learners = np.intersect1d(np.unique(bought // n_i), np.flatnonzero(agg.cust_orders > 0))
    cand = generate(agg, build_signals(agg, words), learners)
    x = features.build(agg, cand, history.skus)
    y = np.isin(cand.c * n_i + cand.i, bought).astype(np.float64)
    return Window(x, y, cand.c, cand.is_new)


def _dataset(windows: list[Window], only_new: bool) -> tuple[lgb.Dataset, int] | None:
    xs, ys, groups = [], [], []
    rng = np.random.default_rng(7)
    for w in windows:
        keep = w.is_new if only_new else np.ones(len(w.c), dtype=np.bool_)
        # Every positive, a share of the negatives: the fit is several times faster for it.
        keep &= (w.y > 0) | (rng.random(len(w.c)) < NEGATIVE_SHARE)
        c, y = w.c[keep], w.y[keep]
        # Customers with no positive teach lambdarank nothing: leave them out.
        has_pos = np.isin(c, np.unique(c[y > 0]))
        c, y = c[has_pos], y[has_pos]
        xs.append(w.x[keep][has_pos])
        ys.append(y)
        groups.append(np.unique(c, return_counts=True)[1])
    y_all = np.concatenate(ys)
    if not len(y_all) or y_all.min() == y_all.max():
        return None
    data = lgb.Dataset(
        np.concatenate(xs).astype(np.float32),
        label=y_all,
        group=np.concatenate(groups),
        feature_name=list(features.FEATURES),
        params={"max_bin": PARAMS["max_bin"], "verbose": -1},
    )
    return data, len(y_all)


def _fit(
    found: tuple[lgb.Dataset, int] | None, stage: str, say: Report, objective: str = "binary"
) -> Ensemble:
    total = ROUNDS * len(SEEDS)
    say(stage, 0, total)
    boosters = []
    for n, seed in enumerate(SEEDS):

        def report(_stage: str, done: int, _total: int, before: int = n * ROUNDS) -> None:
            say(stage, before + done, total)

        boosters.append(_train(found, stage, report, seed, objective))
        if found is None:
            break  # the constant model needs no siblings
    say(stage, total, total)  # also when the trees ran out of splits early
    return Ensemble(boosters)


def _train(
    found: tuple[lgb.Dataset, int] | None, stage: str, say: Report, seed: int, objective: str
) -> lgb.Booster:
    if found is None:
        # Too little history to learn from: a constant model (every score 0, ties by generator).
        n = len(features.FEATURES)
        x = np.zeros((2, n), dtype=np.float32)
        data = lgb.Dataset(x, label=[0.0, 1.0], group=[2], feature_name=list(features.FEATURES))
        return lgb.train({**PARAMS, "min_data_in_leaf": 5}, data, num_boost_round=1)

    def tick(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % 10 == 0:
            say(stage, env.iteration + 1, ROUNDS)

    # Small shops (tests, a new install) still get splits; big ones get smooth leaves.
    data, rows = found
    leaf = max(5, min(100, rows // 500))
    params = {**PARAMS, "min_data_in_leaf": leaf, "seed": seed, "objective": objective}
    return lgb.train(params, data, num_boost_round=ROUNDS, callbacks=[tick])


def fit_rankers(history: History, now: float, say: Report = silent) -> Rankers:
    """Build the training windows and fit both rankers."""
    words = features.word_matrix(history.names)
    offsets = sorted(set(WINDOW_OFFSETS) | set(CROSS_WINDOW_OFFSETS))
    windows: dict[float, Window] = {}
    stage = "training windows"
    say(stage, 0, len(offsets))
    for n, offset in enumerate(offsets, start=1):
        windows[offset] = window_rows(history, now - offset, words)
        say(stage, n, len(offsets))
    any_rows = _dataset([windows[o] for o in WINDOW_OFFSETS], only_new=False)
    any_model = _fit(any_rows, "fitting the any-product ranker", say, ANY_OBJECTIVE)
    cross_rows = _dataset([windows[o] for o in CROSS_WINDOW_OFFSETS], only_new=True)
    cross_model = _fit(cross_rows, "fitting the cross-sell ranker", say)
    return Rankers(any_model, cross_model)
