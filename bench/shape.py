"""The shape of real retail data, sampled to build a synthetic database of any size.

From ``../shared/data/retail_train.csv.gz`` (when present) we keep: every invoice line's
(sku, description, quantity, unit price), the number of invoices per customer, the number of
lines per invoice, the share of return invoices and the customers' countries. Without the file a
small built-in catalogue and heavy-tailed distributions stand in, so the benchmark still runs.
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "retail_train.csv.gz"


@dataclass
class RetailShape:
    """Arrays to sample from; ``lines_*`` are aligned (one entry per real product line)."""

    source: str
    lines_sku: list[str]
    lines_description: list[str]
    lines_quantity: np.ndarray
    lines_price: np.ndarray
    orders_per_customer: np.ndarray
    lines_per_order: np.ndarray
    return_share: float
    countries: list[str]
    country_weights: np.ndarray

    @property
    def products(self) -> dict[str, str]:
        """sku -> first description seen."""
        out: dict[str, str] = {}
        for sku, desc in zip(self.lines_sku, self.lines_description, strict=True):
            out.setdefault(sku, desc)
        return out


def load_shape(path: Path = SHARED_FILE) -> RetailShape:
    """The real shape when the shared file is there, else a synthetic stand-in."""
    if path.exists():
        return _from_file(path)
    return _synthetic()


def _from_file(path: Path) -> RetailShape:
    invoices_of: dict[str, set[str]] = defaultdict(set)
    lines_of: Counter[str] = Counter()
    country_of: dict[str, str] = {}
    skus: list[str] = []
    descs: list[str] = []
    qtys: list[int] = []
    prices: list[float] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            invoice = rec["invoice_no"]
            invoices_of[rec["customer_id"]].add(invoice)
            lines_of[invoice] += 1
            country_of.setdefault(rec["customer_id"], rec["country"])
            quantity = int(rec["quantity"])
            # Sample product lines from sales; returns reuse them with the sign flipped.
            if quantity > 0 and not invoice.startswith("C"):
                skus.append(rec["stock_code"][:32])
                descs.append((rec["description"] or rec["stock_code"])[:200])
                qtys.append(quantity)
                prices.append(float(rec["unit_price"]))
    countries = Counter(country_of.values())
    names = sorted(countries)
    weights = np.array([countries[n] for n in names], dtype=float)
    returns = sum(1 for inv in lines_of if inv.startswith("C"))
    return RetailShape(
        source=str(path),
        lines_sku=skus,
        lines_description=descs,
        lines_quantity=np.array(qtys, dtype=np.int64),
        lines_price=np.array(prices, dtype=np.float64),
        orders_per_customer=np.array([len(v) for v in invoices_of.values()], dtype=np.int64),
        lines_per_order=np.array(list(lines_of.values()), dtype=np.int64),
        return_share=returns / max(1, len(lines_of)),
        countries=names,
        country_weights=weights / weights.sum(),
    )


def _synthetic() -> RetailShape:
    rng = np.random.default_rng(7)
    words = (
        "CANDLE HOLDER MUG TEA TOWEL LANTERN CUSHION COVER BAG TIN FRAME CLOCK BOWL "
        "JAR GARLAND BUNTING NOTEBOOK PURSE TRAY HEART STAR"
    ).split()
    colours = "RED PINK BLUE WHITE GREEN IVORY VINTAGE RETRO".split()
    n_products = 400
    skus = [f"{20000 + i}" for i in range(n_products)]
    descs = [
        f"{colours[i % len(colours)]} {words[i % len(words)]} {i // 20 + 1}"
        for i in range(n_products)
    ]
    prices = np.round(rng.lognormal(0.8, 0.8, n_products), 2)
    idx = rng.zipf(1.3, 50_000) % n_products
    return RetailShape(
        source="built-in synthetic distribution",
        lines_sku=[skus[i] for i in idx],
        lines_description=[descs[i] for i in idx],
        lines_quantity=rng.choice([1, 2, 3, 4, 6, 12, 24], size=idx.size),
        lines_price=prices[idx],
        orders_per_customer=np.minimum(rng.geometric(0.15, 5000), 400),
        lines_per_order=np.minimum(rng.geometric(0.06, 40_000), 400),
        return_share=0.15,
        countries=["United Kingdom", "Germany", "France", "EIRE", "Spain"],
        country_weights=np.array([0.9, 0.03, 0.03, 0.02, 0.02]),
    )
