"""Purchase and touch-point history as flat NumPy arrays: what every insight is computed from.

The trainer reads each table once with a streaming Core query (no ORM objects) and keeps only
integer codes and numbers: about 40 bytes a line, so the full shared data set (~700k lines)
takes a few tens of MB. Times are float days since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.models import Customer, Interaction, Order, OrderLine, Product

# Codes that are money movements, not products: postage, carriage, manual lines, fees, tests.
NON_PRODUCT_CODES = frozenset(
    {
        "POST", "DOT", "M", "C2", "D", "S", "B", "CRUK", "BANK CHARGES", "AMAZONFEE",
        "PADS", "TEST001", "TEST002", "ADJUST", "ADJUST2", "AMAZON FEE",
    }
)  # fmt: skip
STREAM_CHUNK = 20_000
SECONDS_PER_DAY = 86_400.0

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
F32 = npt.NDArray[np.float32]


def is_product_code(sku: str) -> bool:
    """True for a sellable product code (never postage, fees, manual lines, tests, gift cards).

    Product codes carry a digit (``85123A``, ``22423``); the non-product ones named in the data
    README are listed, and anything without a digit or starting ``GIFT_`` is excluded too.
    """
    code = sku.strip().upper()
    if not code or code in NON_PRODUCT_CODES or code.startswith(("GIFT_", "TEST")):
        return False
    if code.startswith("ADJUST"):
        return False
    return any(ch.isdigit() for ch in code)


def to_day(moment: datetime) -> float:
    """A timezone-aware datetime as float days since the epoch (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() / SECONDS_PER_DAY


def from_day(day: float) -> datetime:
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, tz=UTC)


@dataclass(frozen=True)
class Outcome:
    """One offer outcome from a wrap-up: ``accepted`` or ``declined`` for a product."""

    customer: int  # customer index
    day: float
    item: int  # item index, -1 when the sku is unknown
    sku: str
    outcome: str


@dataclass
class History:
    """Everything the trainer needs, indexed: customer index ``c``, item index ``i``."""

    customer_ids: Ints  # database ids; the customer index is the position
    external_refs: list[str | None]
    consent: Bools
    skus: list[str]
    names: list[str]
    is_product: Bools
    # One entry per order line.
    line_customer: Ints
    line_item: Ints
    line_order: Ints
    line_day: Floats
    line_qty: Ints
    line_price: Floats
    line_return: Bools
    # One entry per interaction with a customer.
    touch_customer: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    touch_day: Floats = field(default_factory=lambda: np.zeros(0, np.float64))
    touch_satisfaction: Floats = field(default_factory=lambda: np.zeros(0, np.float64))
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_items(self) -> int:
        return len(self.skus)

    def before(self, day: float, touches_until: float | None = None) -> History:
        """The history as it was known at ``day``: lines strictly earlier, and touch points
        before ``touches_until`` (default ``day``)."""
        keep = self.line_day < day
        touch = self.touch_day < (day if touches_until is None else touches_until)
        return History(
            customer_ids=self.customer_ids,
            external_refs=self.external_refs,
            consent=self.consent,
            skus=self.skus,
            names=self.names,
            is_product=self.is_product,
            line_customer=self.line_customer[keep],
            line_item=self.line_item[keep],
            line_order=self.line_order[keep],
            line_day=self.line_day[keep],
            line_qty=self.line_qty[keep],
            line_price=self.line_price[keep],
            line_return=self.line_return[keep],
            touch_customer=self.touch_customer[touch],
            touch_day=self.touch_day[touch],
            touch_satisfaction=self.touch_satisfaction[touch],
            outcomes=[o for o in self.outcomes if o.day < (touches_until or day)],
        )


class ItemCodes:
    """Assigns dense item indexes to skus while reading; keeps the newest name of each."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.skus: list[str] = []
        self.names: list[str] = []

    def code(self, sku: str, name: str | None = None) -> int:
        found = self.index.get(sku)
        if found is None:
            found = len(self.skus)
            self.index[sku] = found
            self.skus.append(sku)
            self.names.append(name or sku)
        elif name:
            self.names[found] = name
        return found


async def load_history(conn: AsyncConnection) -> History:
    """Read customers, products, orders, lines and interactions: one streaming query each."""
    customer_ids: list[int] = []
    refs: list[str | None] = []
    consent: list[bool] = []
    cust_index: dict[int, int] = {}
    query = select(Customer.id, Customer.external_ref, Customer.marketing_consent).order_by(
        Customer.id
    )
    async for part0 in (await conn.stream(query)).partitions(STREAM_CHUNK):
        for cid, ref, ok in part0:
            cust_index[cid] = len(customer_ids)
            customer_ids.append(cid)
            refs.append(ref)
            consent.append(bool(ok))

    items = ItemCodes()
    async for part1 in (await conn.stream(select(Product.sku, Product.name))).partitions(
        STREAM_CHUNK
    ):
        for sku, name in part1:
            items.code(sku, name)

    # Orders are few (one per invoice): keep them in a dict from id to row.
    order_pos: dict[int, int] = {}
    order_customer: list[int] = []
    order_day: list[float] = []
    order_return: list[bool] = []
    oquery = select(Order.id, Order.customer_id, Order.ordered_at, Order.is_return)
    async for part2 in (await conn.stream(oquery)).partitions(STREAM_CHUNK):
        for oid, cid, at, ret in part2:
            order_pos[oid] = len(order_customer)
            order_customer.append(cust_index[cid])
            order_day.append(to_day(at))
            order_return.append(bool(ret))

    line_order: list[int] = []
    line_item: list[int] = []
    line_qty: list[int] = []
    line_price: list[float] = []
    code = items.code
    lquery = select(OrderLine.order_id, OrderLine.sku, OrderLine.quantity, OrderLine.unit_price)
    async for part3 in (await conn.stream(lquery)).partitions(STREAM_CHUNK):
        for oid, sku, qty, price in part3:
            line_order.append(order_pos[oid])
            line_item.append(code(sku))
            line_qty.append(qty)
            line_price.append(float(price))

    orders = np.asarray(line_order, dtype=np.int64)
    o_customer = np.asarray(order_customer, dtype=np.int64)
    o_day = np.asarray(order_day, dtype=np.float64)
    o_return = np.asarray(order_return, dtype=np.bool_)
    history = History(
        customer_ids=np.asarray(customer_ids, dtype=np.int64),
        external_refs=refs,
        consent=np.asarray(consent, dtype=np.bool_),
        skus=items.skus,
        names=items.names,
        is_product=np.asarray([is_product_code(s) for s in items.skus], dtype=np.bool_),
        line_customer=o_customer[orders] if len(orders) else np.zeros(0, np.int64),
        line_item=np.asarray(line_item, dtype=np.int64),
        line_order=orders,
        line_day=o_day[orders] if len(orders) else np.zeros(0, np.float64),
        line_qty=np.asarray(line_qty, dtype=np.int64),
        line_price=np.asarray(line_price, dtype=np.float64),
        line_return=o_return[orders] if len(orders) else np.zeros(0, np.bool_),
    )
    await _load_touches(conn, history, cust_index, items)
    return history


async def _load_touches(
    conn: AsyncConnection, history: History, cust_index: dict[int, int], items: ItemCodes
) -> None:
    t_customer: list[int] = []
    t_day: list[float] = []
    t_sat: list[float] = []
    outcomes: list[Outcome] = []
    query = select(
        Interaction.customer_id,
        Interaction.created_at,
        Interaction.satisfaction,
        Interaction.offer_outcomes,
    ).where(Interaction.customer_id.is_not(None))
    async for part4 in (await conn.stream(query)).partitions(STREAM_CHUNK):
        for cid, at, sat, offers in part4:
            c = cust_index.get(cid)
            if c is None:
                continue
            day = to_day(at)
            t_customer.append(c)
            t_day.append(day)
            t_sat.append(float(sat) if sat is not None else np.nan)
            for offer in _offers(offers):
                sku = str(offer.get("sku") or "").strip().upper()
                outcome = str(offer.get("outcome") or "").strip().lower()
                if sku and outcome in ("accepted", "declined"):
                    item = items.index.get(sku, -1)
                    outcomes.append(Outcome(c, day, item, sku, outcome))
    history.touch_customer = np.asarray(t_customer, dtype=np.int64)
    history.touch_day = np.asarray(t_day, dtype=np.float64)
    history.touch_satisfaction = np.asarray(t_sat, dtype=np.float64)
    history.outcomes = outcomes


def _offers(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [o for o in value if isinstance(o, dict)]
    return []
