"""Import orders in the retail CSV layout: streaming, idempotent, bulk writes.

Layout: ``customer_id, invoice_no, invoice_date, stock_code, description, quantity,
unit_price, country`` and optionally ``name, phone, email``.

Idempotence: an invoice's lines are numbered in file order; a line already stored under
(invoice, line number) is skipped, so importing the same file twice changes nothing and an
interrupted import can simply be run again.

Balance (documented in the README): invoices are on 30-day terms, so the open balance is the
net value (sales minus returns) of the customer's invoices in the 30 days up to the newest
invoice in the database, computed for the customers whose orders the import touched (the
others keep the balance their own import computed). The credit limit is twice the average
monthly net spend over the last 12 months, rounded up to £100, at least £500.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.customers import fiction
from app.customers.models import Account, Customer, CustomerPhone, Order, OrderLine, Product
from app.customers.values import text_or_none

REQUIRED = (
    "customer_id", "invoice_no", "invoice_date", "stock_code",
    "description", "quantity", "unit_price", "country",
)  # fmt: skip
SHOP_TZ = ZoneInfo("Europe/London")
BATCH_LINES = 20_000
LANGUAGES = {
    "United Kingdom": "en", "EIRE": "en", "Ireland": "en", "Australia": "en", "USA": "en",
    "Canada": "en", "France": "fr", "Belgium": "fr", "Switzerland": "de", "Germany": "de",
    "Austria": "de", "Spain": "es", "Portugal": "pt", "Netherlands": "nl", "Italy": "it",
    "Norway": "no", "Sweden": "sv", "Denmark": "da", "Finland": "fi", "Poland": "pl",
    "Greece": "el", "Japan": "ja", "Cyprus": "el", "Israel": "he", "Brazil": "pt",
}  # fmt: skip


class ImportFileError(ValueError):
    """The file cannot be imported at all (unreadable, wrong columns)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    lines_read: int = 0
    lines_added: int = 0
    lines_skipped_existing: int = 0
    customers_added: int = 0
    orders_added: int = 0
    products_added: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "lines_added": self.lines_added,
            "lines_skipped_existing": self.lines_skipped_existing,
            "customers_added": self.customers_added,
            "orders_added": self.orders_added,
            "products_added": self.products_added,
            "bad_rows": len(self.bad_rows),
        }


@dataclass(frozen=True)
class Row:
    line: int
    customer_ref: str
    invoice_no: str
    ordered_at: datetime
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    country: str
    name: str | None
    phone: str | None
    email: str | None


def open_text(path: Path) -> TextIO:
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


class _DateParser:
    """Shop-local ISO timestamps to UTC, remembering the last one (lines share invoices)."""

    def __init__(self) -> None:
        self._last: tuple[str, datetime] = ("", datetime.min.replace(tzinfo=UTC))

    def __call__(self, value: str) -> datetime:
        if value == self._last[0]:
            return self._last[1]
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=SHOP_TZ)
        result = parsed.astimezone(UTC)
        self._last = (value, result)
        return result


def _customer_ref(value: str) -> str:
    value = value.strip()
    if value.endswith(".0"):  # spreadsheets export integer ids as floats
        value = value[:-2]
    found = text_or_none(value, 64, "customer_id")
    if found is None:
        raise ValueError("customer_id is empty")
    return found


def _text(rec: dict[str, Any], column: str, limit: int) -> str | None:
    """A column's text whole (None when empty or absent); too long or with NUL: the row is bad."""
    return text_or_none(rec.get(column), limit, column)


def parse_rows(fh: TextIO, bad: list[BadRow]) -> Iterator[Row]:
    """Validate rows one by one; a bad row is reported with its line number and skipped."""
    reader = csv.DictReader(fh)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportFileError(f"missing column(s): {', '.join(missing)}")
    parse_date = _DateParser()
    for line, rec in enumerate(reader, start=2):
        try:
            invoice = _text(rec, "invoice_no", 32)
            sku = (_text(rec, "stock_code", 32) or "").upper()
            if not invoice:
                raise ValueError("invoice_no is empty")
            if not sku:
                raise ValueError("stock_code is empty")
            try:
                quantity = int(rec["quantity"])
            except (TypeError, ValueError):
                raise ValueError(f"quantity {rec['quantity']!r} is not a whole number") from None
            try:
                price = Decimal(rec["unit_price"]).quantize(Decimal("0.001"))
            except (InvalidOperation, TypeError):
                raise ValueError(f"unit_price {rec['unit_price']!r} is not a number") from None
            if not price.is_finite():
                raise ValueError(f"unit_price {rec['unit_price']!r} is not a number")
            try:
                ordered_at = parse_date((rec["invoice_date"] or "").strip())
            except ValueError:
                raise ValueError(f"invoice_date {rec['invoice_date']!r} is not ISO 8601") from None
            yield Row(
                line=line,
                customer_ref=_customer_ref(rec["customer_id"] or ""),
                invoice_no=invoice,
                ordered_at=ordered_at,
                sku=sku,
                description=_text(rec, "description", 200) or "",
                quantity=quantity,
                unit_price=price,
                country=_text(rec, "country", 64) or "",
                name=_text(rec, "name", 200),
                phone=_text(rec, "phone", 64),
                email=_text(rec, "email", 200),
            )
        except ValueError as exc:
            bad.append(BadRow(line, str(exc)))


@dataclass
class _Known:
    """What is already stored, so a batch writes only what is new."""

    customers: dict[str, int]
    products: set[str]
    orders: dict[str, int]  # invoice -> order id
    stored_lines: dict[str, int]  # invoice -> lines stored before this import
    next_ids: dict[str, int]

    def take_id(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] = value + 1
        return value


async def _load_known(conn: AsyncConnection) -> _Known:
    customers = {
        str(ref): cid
        for ref, cid in (
            await conn.execute(
                select(Customer.external_ref, Customer.id).where(Customer.external_ref.is_not(None))
            )
        ).all()
    }
    products = set((await conn.execute(select(Product.sku))).scalars())
    counts = (
        select(OrderLine.order_id, func.count().label("n")).group_by(OrderLine.order_id).subquery()
    )
    orders: dict[str, int] = {}
    stored_lines: dict[str, int] = {}
    query = select(Order.invoice_no, Order.id, counts.c.n).outerjoin(
        counts, counts.c.order_id == Order.id
    )
    for inv, oid, n in (await conn.execute(query)).all():
        orders[inv] = oid
        stored_lines[inv] = int(n or 0)
    next_ids = {}
    for name, col in (
        ("customers", Customer.id),
        ("customer_phones", CustomerPhone.id),
        ("accounts", Account.id),
        ("orders", Order.id),
        ("order_lines", OrderLine.id),
    ):
        next_ids[name] = (
            int((await conn.execute(select(func.coalesce(func.max(col), 0)))).scalar_one()) + 1
        )
    return _Known(customers, products, orders, stored_lines, next_ids)


def _e164(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class _Batch:
    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {
            t: []
            for t in (
                "customers",
                "customer_phones",
                "accounts",
                "products",
                "orders",
                "order_lines",
            )
        }
        self.lines = 0


def _add_customer(batch: _Batch, known: _Known, row: Row, region: str, now: datetime) -> int:
    cid = known.take_id("customers")
    known.customers[row.customer_ref] = cid
    forced_type, consent = fiction.flags_for(row.customer_ref)
    batch.tables["customers"].append(
        {
            "id": cid,
            "external_ref": row.customer_ref,
            "name": row.name
            or fiction.name_for(row.customer_ref, business=forced_type is not None),
            "customer_type": forced_type or "consumer",
            "language": LANGUAGES.get(row.country, "en"),
            "marketing_consent": consent,
            "country": row.country or None,
            "email": row.email,
            "created_at": row.ordered_at if row.ordered_at < now else now,
        }
    )
    numbers = [("main", row.phone)] if row.phone else fiction.phones_for(row.customer_ref)
    for label, raw in numbers:
        e164 = _e164(raw, region)
        digits = "".join(ch for ch in (e164 or raw) if ch.isdigit())
        batch.tables["customer_phones"].append(
            {
                "id": known.take_id("customer_phones"),
                "customer_id": cid,
                "raw": raw,
                "e164": e164,
                "last_digits": digits[-9:] or None,
                "label": label,
            }
        )
    batch.tables["accounts"].append(
        {
            "id": known.take_id("accounts"),
            "customer_id": cid,
            "balance": Decimal("0"),
            "credit_limit": Decimal("500"),
            "currency": "GBP",
            "status": "active",
        }
    )
    return cid


def _add_row(
    batch: _Batch,
    known: _Known,
    row: Row,
    line_no: int,
    report: ImportReport,
    region: str,
    now: datetime,
) -> int:
    """Queue one new line (and its customer, product, order when new); returns the order id."""
    cid = known.customers.get(row.customer_ref)
    if cid is None:
        cid = _add_customer(batch, known, row, region, now)
        report.customers_added += 1
    if row.sku not in known.products:
        known.products.add(row.sku)
        batch.tables["products"].append({"sku": row.sku, "name": row.description or row.sku})
        report.products_added += 1
    oid = known.orders.get(row.invoice_no)
    if oid is None:
        oid = known.take_id("orders")
        known.orders[row.invoice_no] = oid
        batch.tables["orders"].append(
            {
                "id": oid,
                "customer_id": cid,
                "invoice_no": row.invoice_no,
                "ordered_at": row.ordered_at,
                "is_return": row.invoice_no.upper().startswith("C"),
                "total": Decimal("0"),
                "country": row.country or None,
            }
        )
        report.orders_added += 1
    batch.tables["order_lines"].append(
        {
            "id": known.take_id("order_lines"),
            "order_id": oid,
            "line_no": line_no,
            "sku": row.sku,
            "description": row.description,
            "quantity": row.quantity,
            "unit_price": row.unit_price,
        }
    )
    batch.lines += 1
    return oid


async def _write(conn: AsyncConnection, batch: _Batch) -> None:
    tables: dict[str, Any] = {
        "customers": Customer.__table__,
        "customer_phones": CustomerPhone.__table__,
        "accounts": Account.__table__,
        "products": Product.__table__,
        "orders": Order.__table__,
        "order_lines": OrderLine.__table__,
    }
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for name, rows in batch.tables.items():
            if not rows:
                continue
            columns = list(rows[0])
            await driver.copy_records_to_table(
                name, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
            )
    else:
        for name, rows in batch.tables.items():
            if rows:
                await conn.execute(insert(tables[name]), rows)


async def _finish(conn: AsyncConnection, order_ids: set[int]) -> None:
    """Totals for the orders touched, sequences after explicit ids, balances of their owners."""
    line_sum = (
        select(func.coalesce(func.sum(OrderLine.quantity * OrderLine.unit_price), 0))
        .where(OrderLine.order_id == Order.id)
        .scalar_subquery()
    )
    ids = sorted(order_ids)
    for start in range(0, len(ids), 5000):
        await conn.execute(
            update(Order).where(Order.id.in_(ids[start : start + 5000])).values(total=line_sum)
        )
    if conn.dialect.name == "postgresql":
        for table in ("customers", "customer_phones", "accounts", "orders", "order_lines"):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
            )
    await refresh_balances(conn, order_ids)
    # Wholesale buyers (large quantities per line) are businesses: industrial customers.
    wholesale = (
        select(Order.customer_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(OrderLine.quantity > 0)
        .group_by(Order.customer_id)
        .having(func.avg(OrderLine.quantity) >= 24)
    )
    await conn.execute(
        update(Customer)
        .where(Customer.customer_type == "consumer", Customer.id.in_(wholesale))
        .values(customer_type="industrial")
    )


async def refresh_balances(conn: AsyncConnection, order_ids: set[int] | None = None) -> None:
    """Open balance and credit limit, as the module docstring defines, of the customers who own
    ``order_ids`` (None: every customer). Customers an import did not touch keep theirs: a
    newer file for other customers never zeroes balances that were true."""
    newest = (await conn.execute(select(func.max(Order.ordered_at)))).scalar_one()
    if newest is None:
        return
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    terms_start = newest - timedelta(days=30)
    year_start = newest - timedelta(days=365)
    open_sum = (
        select(func.coalesce(func.sum(Order.total), 0))
        .where(Order.customer_id == Account.customer_id, Order.ordered_at > terms_start)
        .scalar_subquery()
    )
    year_sum = (
        select(func.coalesce(func.sum(Order.total), 0))
        .where(Order.customer_id == Account.customer_id, Order.ordered_at > year_start)
        .scalar_subquery()
    )
    # Twice the average month, rounded up to £100, at least £500.
    limit = func.max if conn.dialect.name == "sqlite" else func.greatest
    credit = limit(500, -func.floor(-year_sum / 6.0 / 100) * 100)
    # A balance given by a billing system (sync, mapped import) is the record: left alone.
    values = {"balance": func.round(open_sum, 2), "credit_limit": credit}
    derived = Account.balance_source.is_(None)
    if order_ids is None:
        await conn.execute(update(Account).where(derived).values(values))
        return
    ids = sorted(order_ids)
    for start in range(0, len(ids), 5000):
        owners = select(Order.customer_id).where(Order.id.in_(ids[start : start + 5000]))
        await conn.execute(
            update(Account).where(derived, Account.customer_id.in_(owners)).values(values)
        )


ProgressFn = Callable[[int], None]


async def import_orders(
    engine: AsyncEngine,
    path: Path,
    *,
    default_region: str = "GB",
    progress: ProgressFn | None = None,
    batch_lines: int = BATCH_LINES,
) -> ImportReport:
    """Import a retail CSV (plain or gzip). Each batch commits whole: no half-loaded rows.

    ``progress`` is called with the number of lines read since its last call.
    """
    report = ImportReport()
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        known = await _load_known(conn)
        await conn.commit()
        seen: dict[str, int] = {}
        touched: set[int] = set()
        batch = _Batch()
        reported = 0
        with open_text(path) as fh:
            for row in parse_rows(fh, report.bad_rows):
                report.lines_read += 1
                line_no = seen.get(row.invoice_no, 0) + 1
                seen[row.invoice_no] = line_no
                if line_no <= known.stored_lines.get(row.invoice_no, 0):
                    report.lines_skipped_existing += 1
                else:
                    touched.add(_add_row(batch, known, row, line_no, report, default_region, now))
                if report.lines_read - reported >= batch_lines:
                    await _flush(conn, batch, report)
                    batch = _Batch()
                    if progress is not None:
                        progress(report.lines_read - reported)
                    reported = report.lines_read
            await _flush(conn, batch, report)
        if progress is not None:
            progress(report.lines_read - reported)
        await _finish(conn, touched)
        await conn.commit()
    return report


async def _flush(conn: AsyncConnection, batch: _Batch, report: ImportReport) -> None:
    if not any(batch.tables.values()):
        return
    await _write(conn, batch)
    await conn.commit()
    report.lines_added += batch.lines
