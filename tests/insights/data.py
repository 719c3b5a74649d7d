"""Hand-made retail histories for the insights tests (written as retail CSV and imported)."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from app.insights.history import History, ItemCodes, is_product_code, to_day

HEADER = [
    "customer_id", "invoice_no", "invoice_date", "stock_code",
    "description", "quantity", "unit_price", "country",
]  # fmt: skip
START = datetime(2011, 1, 3, 10, 0)
NOW = datetime(2011, 11, 1)
GROUP_A = ["10001", "10002", "10003", "10004", "10005"]
GROUP_B = ["20001", "20002", "20003", "20004", "20005"]
# Codes that must never be suggested, bought on almost every invoice.
NON_PRODUCTS = [
    "POST", "DOT", "M", "C2", "D", "S", "B", "CRUK", "BANK CHARGES", "AMAZONFEE",
    "PADS", "TEST001", "TEST002", "ADJUST", "ADJUST2", "GIFT_0001_20", "NOCODE",
]  # fmt: skip
NAMES = {sku: f"PRODUCT {sku}" for sku in GROUP_A + GROUP_B}


@dataclass
class Line:
    customer: str
    invoice: str
    at: datetime
    sku: str
    quantity: int = 6
    price: float = 2.5


def write_csv(path: Path, lines: list[Line]) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for ln in sorted(lines, key=lambda x: (x.at, x.invoice)):
            name = NAMES.get(ln.sku, ln.sku)
            out.writerow(
                [ln.customer, ln.invoice, ln.at.isoformat(), ln.sku, name, ln.quantity,
                 ln.price, "United Kingdom"]
            )  # fmt: skip
    return path


def shop(seed: int = 7) -> list[Line]:
    """Customers 1xxxx buy group A, 2xxxx group B, every ~3 weeks; postage and fees on each."""
    rng = random.Random(seed)
    lines: list[Line] = []
    invoice = 500000
    for group, skus in (("1", GROUP_A), ("2", GROUP_B)):
        for n in range(12):
            customer = f"{group}{n:04d}"
            day = START + timedelta(days=rng.randint(0, 20))
            while day < NOW - timedelta(days=5):
                invoice += 1
                for sku in rng.sample(skus, 3):
                    lines.append(Line(customer, str(invoice), day, sku))
                for fee in rng.sample(NON_PRODUCTS, 3):
                    lines.append(Line(customer, str(invoice), day, fee, 1, 15.0))
                day += timedelta(days=rng.randint(15, 25))
    return lines


def history_of(lines: list[Line]) -> History:
    """The ``History`` the trainer would read after importing ``lines`` (no database)."""
    customers: dict[str, int] = {}
    orders: dict[str, int] = {}
    items = ItemCodes()
    rows = sorted(lines, key=lambda x: (x.at, x.invoice))
    for ln in rows:
        customers.setdefault(ln.customer, len(customers))
        orders.setdefault(ln.invoice, len(orders))
        items.code(ln.sku, NAMES.get(ln.sku, ln.sku))
    return History(
        customer_ids=np.arange(len(customers), dtype=np.int64),
        external_refs=list(customers),
        consent=np.ones(len(customers), dtype=np.bool_),
        skus=items.skus,
        names=items.names,
        is_product=np.asarray([is_product_code(s) for s in items.skus], dtype=np.bool_),
        line_customer=np.asarray([customers[ln.customer] for ln in rows], dtype=np.int64),
        line_item=np.asarray([items.index[ln.sku] for ln in rows], dtype=np.int64),
        line_order=np.asarray([orders[ln.invoice] for ln in rows], dtype=np.int64),
        line_day=np.asarray([to_day(ln.at) for ln in rows], dtype=np.float64),
        line_qty=np.asarray([ln.quantity for ln in rows], dtype=np.int64),
        line_price=np.asarray([ln.price for ln in rows], dtype=np.float64),
        line_return=np.asarray([ln.invoice.startswith("C") for ln in rows], dtype=np.bool_),
    )
