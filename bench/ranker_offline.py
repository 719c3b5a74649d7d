"""The next-need ranker's quality without a database: for tuning (``bench.train_eval`` is the
honest end-to-end figure, through ``train``, ``evaluate`` and the profile API).

    .venv/bin/python -m bench.ranker_offline [--file ../shared/data/retail_train.csv.gz]
        [--split 2011-08-09] [--sample 0.3] [--recall]

Reads the file with the importer's parser into a ``History`` (lines before ``--split``),
fits the rankers and scores every customer as ``train`` does, then applies the protocol of
``metrics.py`` to the two months from the split. ``--sample`` keeps that share of customers
(fixed seed) for quicker runs; ``--recall`` also prints, per generator, how many of the
never-bought products bought in the holdout are among the candidates.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import pickle
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from app.customers.importer import open_text, parse_rows
from app.insights import features, metrics
from app.insights import next_needs as model
from app.insights.aggregates import aggregate
from app.insights.candidates import build_signals, generate
from app.insights.history import History, ItemCodes, is_product_code, to_day
from app.insights.ranker import fit_rankers

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "data" / "retail_train.csv.gz"
Later = dict[str, set[str]]


def read(path: Path, cut: datetime, end: datetime) -> tuple[History, Later]:
    """The lines before ``cut`` as a History, and the holdout purchases per customer ref."""
    refs: dict[str, int] = {}
    items = ItemCodes()
    orders: dict[str, int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in ("c", "i", "o", "d", "q", "p", "r")}
    later: Later = {}
    bad: list[Any] = []
    with open_text(path) as fh:
        for row in parse_rows(fh, bad):
            if row.ordered_at >= cut:
                if row.ordered_at < end and row.quantity > 0 and is_product_code(row.sku):
                    later.setdefault(row.customer_ref, set()).add(row.sku)
                continue
            c = refs.setdefault(row.customer_ref, len(refs))
            cols["c"].append(c)
            cols["i"].append(items.code(row.sku, row.description))
            cols["o"].append(orders.setdefault(row.invoice_no, len(orders)))
            cols["d"].append(to_day(row.ordered_at))
            cols["q"].append(row.quantity)
            cols["p"].append(float(row.unit_price))
            cols["r"].append(row.invoice_no.upper().startswith("C"))
    history = History(
        customer_ids=np.arange(len(refs), dtype=np.int64),
        external_refs=list(refs),
        consent=np.ones(len(refs), dtype=np.bool_),
        skus=items.skus,
        names=items.names,
        is_product=np.asarray([is_product_code(s) for s in items.skus], dtype=np.bool_),
        line_customer=np.asarray(cols["c"], dtype=np.int64),
        line_item=np.asarray(cols["i"], dtype=np.int64),
        line_order=np.asarray(cols["o"], dtype=np.int64),
        line_day=np.asarray(cols["d"], dtype=np.float64),
        line_qty=np.asarray(cols["q"], dtype=np.int64),
        line_price=np.asarray(cols["p"], dtype=np.float64),
        line_return=np.asarray(cols["r"], dtype=np.bool_),
    )
    return history, later


def cached(path: Path, split: date) -> tuple[History, Later]:
    store = Path("/tmp") / f"ranker_offline_{split.isoformat()}.pickle"
    if store.exists():
        with store.open("rb") as fh:
            found: tuple[History, Later] = pickle.load(fh)
            return found
    cut = datetime(split.year, split.month, split.day)
    # The importer reads shop-local times; the cut is on the same local dates.
    from app.customers.importer import SHOP_TZ

    cut = cut.replace(tzinfo=SHOP_TZ)
    found = read(path, cut, cut + timedelta(days=60))
    with store.open("wb") as fh:
        pickle.dump(found, fh)
    return found


def bought_before(history: History) -> dict[str, set[str]]:
    m = (history.line_qty > 0) & ~history.line_return & history.is_product[history.line_item]
    out: dict[str, set[str]] = {}
    for c, i in zip(history.line_customer[m].tolist(), history.line_item[m].tolist(), strict=True):
        out.setdefault(str(history.external_refs[c]), set()).add(history.skus[i])
    return out


def candidate_recall(history: History, now: float, later: Later, customers: Any) -> None:
    """Share of holdout never-bought purchases among each generator's candidates."""
    agg = aggregate(history, now)
    sig = build_signals(agg, features.word_matrix(history.names))
    cand = generate(agg, sig, customers)
    before = bought_before(history)
    sku_index = {s: n for n, s in enumerate(history.skus)}
    wanted: set[tuple[int, int]] = set()
    for c in customers.tolist():
        ref = str(history.external_refs[c])
        if ref in before:
            for s in later.get(ref, set()) - before[ref]:
                if s in sku_index:
                    wanted.add((c, sku_index[s]))
    new = cand.is_new
    keys = set(zip(cand.c[new].tolist(), cand.i[new].tolist(), strict=True))
    per_c = np.bincount(cand.c[new], minlength=history.n_customers)
    print(f"new candidates per customer: mean {per_c[customers].mean():.0f}")
    print(f"holdout new purchases (known skus): {len(wanted)}; in candidates:"
          f" {len(wanted & keys) / max(len(wanted), 1):.3f}")  # fmt: skip
    buyers = {c for c, _ in wanted}
    for name, col in (("cf", cand.cf_rank), ("knn", cand.knn_rank), ("pop", cand.pop_rank),
                      ("season", cand.season_rank)):  # fmt: skip
        for top in (10, 40, 100):
            sel = new & (col <= top)
            got = set(zip(cand.c[sel].tolist(), cand.i[sel].tolist(), strict=True)) & wanted
            hit = len({c for c, _ in got}) / max(len(buyers), 1)
            print(f"  {name:7} rank<={top:3}: pair recall {len(got) / len(wanted):.3f},"
                  f" customer hit {hit:.3f}")  # fmt: skip
    got_all = {c for c, _ in wanted & keys}
    rows_new = np.flatnonzero(new)
    for name in ("cf", "knn", "knn_tifu", "knn_wide", "knn_new", "words"):
        col = getattr(cand, name)[rows_new]
        best = rows_new[model.top_per_customer(cand.c[rows_new], col, 10)]
        got = set(zip(cand.c[best].tolist(), cand.i[best].tolist(), strict=True)) & wanted
        print(f"  top-10 new by {name:12}: HR {len({c for c, _ in got}) / len(buyers):.3f}")
    print(f"  all candidates: customer hit {len(got_all) / max(len(buyers), 1):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--split", type=date.fromisoformat, default=date(2011, 8, 9))
    parser.add_argument("--sample", type=float, default=1.0)
    parser.add_argument("--recall", action="store_true")
    parser.add_argument("--recall-only", action="store_true")
    parser.add_argument("--any-weights", type=float, nargs="*", default=[1.0])
    parser.add_argument("--set", nargs="*", default=[], help="module.NAME=python-literal")
    args = parser.parse_args()
    for assignment in args.set:
        target, value = assignment.split("=", 1)
        module, name = target.rsplit(".", 1)
        setattr(importlib.import_module(f"app.insights.{module}"), name, ast.literal_eval(value))
    started = time.perf_counter()
    history, later = cached(args.file, args.split)
    now = float(history.line_day.max()) + 1.0 / 1440
    customers = np.arange(history.n_customers, dtype=np.int64)
    if args.sample < 1.0:
        # A sample of customers and only their lines: every generator sees the smaller shop.
        rng = np.random.default_rng(11)
        customers = np.sort(customers[rng.random(len(customers)) < args.sample])
        keep = np.isin(history.line_customer, customers)
        history = history.before(np.inf)
        for name in ("customer", "item", "order", "day", "qty", "price", "return"):
            setattr(history, f"line_{name}", getattr(history, f"line_{name}")[keep])
    print(f"read {time.perf_counter() - started:.0f} s")
    if args.recall:
        candidate_recall(history, now, later, customers)
        if args.recall_only:
            return
    rankers = fit_rankers(history, now)
    print(f"fit {time.perf_counter() - started:.0f} s")
    before = bought_before(history)
    chosen = {str(history.external_refs[c]) for c in customers.tolist()}
    before = {r: s for r, s in before.items() if r in chosen}
    for weight in args.any_weights:
        model.ANY_WEIGHT = weight
        found, _, _ = model.suggest(history, now, rankers, customers)
        lists: dict[str, list[tuple[str, str]]] = {}
        for c, i, kind in zip(found.c.tolist(), found.i.tolist(), found.kind.tolist(), strict=True):
            lists.setdefault(str(history.external_refs[c]), []).append((history.skus[i], kind))
        result = metrics.score(lists, before, later, 10)
        print(f"done {time.perf_counter() - started:.0f} s, ANY_WEIGHT {weight}")
        for kind in ("reorder_or_new", "cross_sell"):
            m = result[kind]
            print(f"{kind:15} HR {m['hit_rate']:.4f} {m['ci95']['hit_rate']} R {m['recall']:.4f}"
                  f" MRR {m['mrr']:.4f} n={m['customers']}")  # fmt: skip
    print(
        json.dumps({k: {m: v[m] for m in ("hit_rate", "recall", "mrr")} for k, v in result.items()})
    )


if __name__ == "__main__":
    main()
