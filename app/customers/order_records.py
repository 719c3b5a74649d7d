"""Storing order and balance records from a system of record (sync) or a mapped import.

Orders (``ref``, ``customer_ref``, ``ordered_at``, ``total`` and optionally ``currency``,
``status``, ``lines`` as a JSON array of ``{sku, description, quantity, unit_price}``,
``deleted``), keyed by the order's ``ref`` (an order another source owns is refused).
Balances (``customer_ref``, ``amount`` and optionally ``currency``, ``overdue``, ``as_of``):
the account's balance as the billing system gives it. Customers: ``app.customers.records``;
loyalty memberships: ``app.customers.loyalty``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.loyalty import store_loyalty
from app.customers.models import Account, Order, OrderLine, Product
from app.customers.records import RecordReport, customer_ids, customer_of, store_customers, where
from app.customers.values import text_key, text_or_none, to_bool, to_decimal, to_json_list, to_utc


def _lines(row: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    given = to_json_list(row.get("lines"), "lines")
    if given is None:
        return None
    lines = []
    for number, line in enumerate(given, start=1):
        sku = text_or_none(line.get("sku"), 32, f"lines[{number - 1}].sku")
        if sku is None:
            raise ValueError(f"lines[{number - 1}].sku is empty")
        quantity = to_decimal(line.get("quantity", 1), f"lines[{number - 1}].quantity")
        price = to_decimal(line.get("unit_price", 0), f"lines[{number - 1}].unit_price")
        lines.append(
            {
                "line_no": number,
                "sku": sku.upper(),
                "description": text_or_none(
                    line.get("description"), 200, f"lines[{number - 1}].description"
                )
                or sku,
                "quantity": int(quantity or 0),
                "unit_price": (price or Decimal(0)).quantize(Decimal("0.001")),
            }
        )
    return lines


async def _set_lines(
    conn: AsyncConnection, order_id: int, lines: list[dict[str, Any]], products: set[str]
) -> bool:
    """A stored order's lines replaced by the given ones, if they differ."""
    cols = (OrderLine.line_no, OrderLine.sku, OrderLine.description, OrderLine.quantity,
            OrderLine.unit_price)  # fmt: skip
    query = select(*cols).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
    current = [dict(r._mapping) for r in (await conn.execute(query)).all()]
    if current == lines:
        return False
    await conn.execute(delete(OrderLine).where(OrderLine.order_id == order_id))
    if lines:
        await conn.execute(insert(OrderLine), [{**line, "order_id": order_id} for line in lines])
        await _add_products(conn, lines, products)
    return True


async def _add_products(
    conn: AsyncConnection, lines: list[dict[str, Any]], products: set[str]
) -> None:
    """Unknown SKUs become products (``products``: the SKUs known to exist, kept up to date)."""
    missing = {ln["sku"]: ln["description"] for ln in lines if ln["sku"] not in products}
    if missing:
        await conn.execute(insert(Product), [{"sku": k, "name": v} for k, v in missing.items()])
        products.update(missing)


class _Found(NamedTuple):
    id: int
    source: str | None


@dataclass
class _OrderBatch:
    """What a batch of order records needs to know, read in three queries up front."""

    customers: dict[str, int]  # customer_ref -> customer id
    orders: dict[str, Any]  # order ref -> (id, source)
    products: set[str]
    # New orders waiting to be inserted together: ref -> (values, lines).
    pending: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=dict)


async def _order_batch(
    conn: AsyncConnection, source: str, rows: Sequence[Mapping[str, Any]]
) -> _OrderBatch:
    customers = await customer_ids(conn, source, rows, "customer_ref")
    refs = sorted({ref for r in rows if (ref := text_key(r.get("ref"), 32))})
    query = select(Order.invoice_no, Order.id, Order.source).where(Order.invoice_no.in_(refs))
    orders = {row.invoice_no: row for row in (await conn.execute(query)).all()} if refs else {}
    skus: set[str] = set()
    for row in rows:
        with contextlib.suppress(ValueError, AttributeError):
            skus.update(str(line.get("sku", "")).upper() for line in _raw_lines(row))
    found = select(Product.sku).where(Product.sku.in_(sorted(skus)))
    products = set((await conn.execute(found)).scalars()) if skus else set()
    return _OrderBatch(customers, orders, products)


def _raw_lines(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    return to_json_list(row.get("lines"), "lines") or []


async def _store_order(
    conn: AsyncConnection,
    source: str,
    row: Mapping[str, Any],
    report: RecordReport,
    batch: _OrderBatch,
) -> None:
    ref = text_or_none(row.get("ref"), 32, "ref")
    if ref is None:
        raise ValueError("ref is empty")
    if ref in batch.pending:  # the same order twice in one batch: store the first now
        await _insert_pending(conn, source, batch)
    found = batch.orders.get(ref)
    if found is not None and found.source != source:
        raise ValueError(f"order {ref!r} already belongs to source {found.source!r}")
    if to_bool(row.get("deleted"), "deleted"):
        if found is not None:
            await conn.execute(delete(Order).where(Order.id == found.id))
            batch.orders.pop(ref)
            report.deleted += 1
        return
    total = to_decimal(row.get("total"), "total")
    values: dict[str, Any] = {
        "customer_id": customer_of(batch.customers, source, row),
        "ordered_at": to_utc(row.get("ordered_at"), "ordered_at"),
        "total": None if total is None else total.quantize(Decimal("0.01")),
        "currency": text_or_none(row.get("currency"), 3, "currency"),
        "status": text_or_none(row.get("status"), 32, "status"),
    }
    if values["ordered_at"] is None or values["total"] is None:
        raise ValueError("ordered_at and total are required")
    values["is_return"] = values["total"] < 0
    lines = _lines(row)
    if found is None:
        batch.pending[ref] = (values, lines or [])
        report.added += 1
        return
    current = (
        await conn.execute(select(*(getattr(Order, k) for k in values)).where(Order.id == found.id))
    ).one()
    changes = {k: v for (k, v), old in zip(values.items(), current, strict=True) if v != old}
    if changes:
        await conn.execute(update(Order).where(Order.id == found.id).values(**changes))
    lines_changed = lines is not None and await _set_lines(conn, found.id, lines, batch.products)
    if changes or lines_changed:
        report.updated += 1
    else:
        report.unchanged += 1


async def _insert_pending(conn: AsyncConnection, source: str, batch: _OrderBatch) -> None:
    """The batch's new orders and their lines, in two statements (and one for new SKUs)."""
    if not batch.pending:
        return
    rows = [{"invoice_no": ref, "source": source, **values}
            for ref, (values, _) in batch.pending.items()]  # fmt: skip
    stmt = insert(Order).returning(Order.id, sort_by_parameter_order=True)
    ids = (await conn.execute(stmt, rows)).scalars().all()
    lines = []
    for (ref, (_, order_lines)), order_id in zip(batch.pending.items(), ids, strict=True):
        batch.orders[ref] = _Found(order_id, source)
        lines += [{**line, "order_id": order_id} for line in order_lines]
    batch.pending.clear()
    if lines:
        await conn.execute(insert(OrderLine), lines)
        await _add_products(conn, lines, batch.products)


async def store_orders(
    conn: AsyncConnection, source: str, rows: Sequence[Mapping[str, Any]], report: RecordReport
) -> None:
    """Store order records (see the module docstring), keyed by the order's ``ref``."""
    batch = await _order_batch(conn, source, rows)
    for row in rows:
        try:
            await _store_order(conn, source, row, report, batch)
        except ValueError as exc:
            report.bad.append((where(row), str(exc)))
    await _insert_pending(conn, source, batch)


async def store_balances(
    conn: AsyncConnection, source: str, rows: Sequence[Mapping[str, Any]], report: RecordReport
) -> None:
    """Store balances as the billing system gives them (see the module docstring)."""
    known = await customer_ids(conn, source, rows, "customer_ref")
    for row in rows:
        try:
            customer_id = customer_of(known, source, row)
            amount = to_decimal(row.get("amount"), "amount")
            if amount is None:
                raise ValueError("amount is empty")
            overdue = to_decimal(row.get("overdue"), "overdue")
            values: dict[str, Any] = {
                "balance": amount.quantize(Decimal("0.01")),
                "overdue": None if overdue is None else overdue.quantize(Decimal("0.01")),
                "balance_as_of": to_utc(row.get("as_of"), "as_of"),
                "balance_source": source,
            }
            currency = text_or_none(row.get("currency"), 3, "currency")
            if currency:
                values["currency"] = currency.upper()
        except ValueError as exc:
            report.bad.append((where(row), str(exc)))
            continue
        cols = [getattr(Account, k) for k in values]
        current = (
            await conn.execute(select(*cols).where(Account.customer_id == customer_id))
        ).first()
        if current is None:
            await conn.execute(insert(Account).values(customer_id=customer_id, **values))
            report.updated += 1
        elif any(v != old for v, old in zip(values.values(), current, strict=True)):
            await conn.execute(
                update(Account).where(Account.customer_id == customer_id).values(**values)
            )
            report.updated += 1
        else:
            report.unchanged += 1


STORE = {
    "customers": store_customers,
    "orders": store_orders,
    "balances": store_balances,
    "loyalty": store_loyalty,
}
