"""The retail CSV import: idempotence, bad rows, returns, balances, optional columns, fiction."""

from __future__ import annotations

import csv
import gzip
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers import fiction
from app.customers.importer import ImportFileError, import_orders
from app.customers.models import (
    Account,
    Customer,
    CustomerPhone,
    Order,
    OrderLine,
    Product,
)
from tests.conftest import truncate_all
from tests.customers.factories import count

COLUMNS = [
    "customer_id",
    "invoice_no",
    "invoice_date",
    "stock_code",
    "description",
    "quantity",
    "unit_price",
    "country",
]


def write_csv(
    path: Path, rows: list[dict[str, Any]], columns: list[str] = COLUMNS, gz: bool = False
) -> Path:
    opener: Any = gzip.open if gz else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def line(
    customer: str,
    invoice: str,
    when: str,
    sku: str = "85123A",
    qty: Any = 6,
    price: Any = "2.55",
    desc: str = "WHITE HANGING HEART T-LIGHT HOLDER",
    country: str = "United Kingdom",
    **extra: str,
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "invoice_no": invoice,
        "invoice_date": when,
        "stock_code": sku,
        "description": desc,
        "quantity": qty,
        "unit_price": price,
        "country": country,
        **extra,
    }


SMALL = [
    line("17850", "536365", "2010-12-01 08:26:00"),
    line("17850", "536365", "2010-12-01 08:26:00", sku="71053", desc="WHITE METAL LANTERN"),
    line("13047", "536367", "2010-12-01 08:34:00", sku="22745", qty=6, price="2.10"),
    line("13047", "C536379", "2010-12-01 09:41:00", sku="22745", qty=-2, price="2.10"),
    line(
        "12583.0", "536370", "2010-12-01 08:45:00", sku="POST", qty=3, price="18", country="France"
    ),
]


async def _tables(engine: AsyncEngine) -> dict[str, int]:
    async with AsyncSession(engine) as session:
        return {
            model.__tablename__: await count(session, model)
            for model in (Customer, CustomerPhone, Account, Product, Order, OrderLine)
        }


async def _phones(engine: AsyncEngine) -> dict[str, list[str | None]]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(Customer.external_ref, CustomerPhone.e164)
            .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
            .order_by(Customer.external_ref, CustomerPhone.id)
        )
        found: dict[str, list[str | None]] = {}
        for ref, e164 in rows.all():
            found.setdefault(ref, []).append(e164)
        return found


async def test_importing_the_same_file_twice_adds_nothing(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "orders.csv.gz", SMALL, gz=True)
    first = await import_orders(clean_engine, path)
    assert (first.lines_read, first.lines_added, first.customers_added) == (5, 5, 3)
    assert first.orders_added == 4 and first.bad_rows == []
    after_first = await _tables(clean_engine)
    assert after_first["order_lines"] == 5 and after_first["customers"] == 3

    second = await import_orders(clean_engine, path)
    assert second.lines_added == 0 and second.lines_skipped_existing == 5
    assert second.customers_added == second.orders_added == second.products_added == 0
    assert await _tables(clean_engine) == after_first
    # The spreadsheet-style "12583.0" is the same customer as "12583".
    async with AsyncSession(clean_engine) as session:
        refs = (await session.execute(select(Customer.external_ref))).scalars().all()
    assert sorted(refs) == ["12583", "13047", "17850"]


async def test_a_longer_file_only_adds_its_new_lines(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_orders(clean_engine, write_csv(tmp_path / "a.csv", SMALL[:3]))
    report = await import_orders(clean_engine, write_csv(tmp_path / "b.csv", SMALL))
    assert (report.lines_skipped_existing, report.lines_added) == (3, 2)
    assert (await _tables(clean_engine))["order_lines"] == 5


async def test_bad_rows_are_reported_with_line_numbers_and_skipped(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [
        line("17850", "536365", "2010-12-01 08:26:00"),  # line 2
        line("17850", "536366", "2010-12-01 08:28:00", qty="two"),  # 3
        line("17850", "536367", "yesterday"),  # 4
        line("17850", "536368", "2010-12-01 08:30:00", sku=""),  # 5
        line("17850", "536369", "2010-12-01 08:31:00", price="abc"),  # 6
        line("13047", "536370", "2010-12-01 08:34:00"),  # 7
    ]
    report = await import_orders(clean_engine, write_csv(tmp_path / "bad.csv", rows))
    assert [b.line for b in report.bad_rows] == [3, 4, 5, 6]
    reasons = [b.reason for b in report.bad_rows]
    assert "quantity" in reasons[0] and "'two'" in reasons[0]
    assert "invoice_date" in reasons[1]
    assert "stock_code" in reasons[2]
    assert "unit_price" in reasons[3]
    assert report.lines_added == 2
    async with AsyncSession(clean_engine) as session:
        invoices = (await session.execute(select(Order.invoice_no))).scalars().all()
    assert sorted(invoices) == ["536365", "536370"]


async def test_values_too_long_for_their_column_are_refused_not_cut(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    # Two product codes sharing their first 32 characters were one product once cut.
    long_sku = "A" * 32 + "1"
    rows = [
        line("17850", "536365", "2010-12-01 08:26:00"),  # line 2
        line("17850", "536366", "2010-12-01 08:28:00", sku=long_sku),  # 3
        line("1" * 65, "536367", "2010-12-01 08:29:00"),  # 4
        line("17850", "5" * 33, "2010-12-01 08:30:00"),  # 5
        line("17850", "536369", "2010-12-01 08:31:00", desc="X" * 201),  # 6
        line("17850", "536370", "2010-12-01 08:32:00", country="Land\x00"),  # 7
        line("17850", "536371", "2010-12-01 08:33:00", desc="D" * 200),  # 8: at the limit
    ]
    columns = [*COLUMNS, "email"]
    rows.append({**line("13047", "536372", "2010-12-01 08:34:00"), "email": "e" * 201})  # 9
    report = await import_orders(clean_engine, write_csv(tmp_path / "long.csv", rows, columns))
    assert [b.line for b in report.bad_rows] == [3, 4, 5, 6, 7, 9]
    reasons = [b.reason for b in report.bad_rows]
    for reason, column, limit in zip(
        reasons,
        ("stock_code", "customer_id", "invoice_no", "description", "country", "email"),
        (32, 64, 32, 200, None, 200),
        strict=True,
    ):
        assert column in reason
        assert (f"limit is {limit}" in reason) if limit else ("NUL" in reason)
    async with AsyncSession(clean_engine) as session:
        skus = set((await session.execute(select(Product.sku))).scalars().all())
        names = (await session.execute(select(OrderLine.description))).scalars().all()
    assert skus == {"85123A"} and "D" * 200 in names
    assert report.lines_added == 2


async def test_a_missing_column_refuses_the_whole_file(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    columns = [c for c in COLUMNS if c != "unit_price"]
    path = write_csv(tmp_path / "short.csv", SMALL, columns=columns)
    with pytest.raises(ImportFileError, match="unit_price"):
        await import_orders(clean_engine, path)
    with pytest.raises(ImportFileError, match="no such file"):
        await import_orders(clean_engine, tmp_path / "absent.csv")
    assert (await _tables(clean_engine))["order_lines"] == 0


async def test_cancellations_are_recorded_as_returns(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_orders(clean_engine, write_csv(tmp_path / "o.csv", SMALL))
    async with AsyncSession(clean_engine) as session:
        rows = (
            await session.execute(
                select(Order.invoice_no, Order.is_return, Order.total).order_by(Order.invoice_no)
            )
        ).all()
    by_invoice = {r.invoice_no: (r.is_return, r.total) for r in rows}
    assert by_invoice["C536379"] == (True, Decimal("-4.20"))
    assert by_invoice["536367"] == (False, Decimal("12.60"))
    assert by_invoice["536365"][0] is False


async def test_balance_and_credit_limit_follow_the_documented_rule(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    # Newest invoice in the file: 2011-12-09. The 30-day window starts 2011-11-09.
    rows = [
        line("100", "581001", "2011-12-09 10:00:00", qty=10, price="10.00"),  # 100 in window
        line("100", "575000", "2011-11-20 10:00:00", qty=5, price="4.00"),  # 20 in window
        line("100", "C580000", "2011-12-01 10:00:00", qty=-1, price="10.00"),  # -10 in window
        line("100", "570000", "2011-10-01 10:00:00", qty=1000, price="6.12"),  # 6120, this year
        line("100", "540000", "2010-06-01 10:00:00", qty=1, price="999.00"),  # older than a year
        line("200", "541000", "2011-01-10 10:00:00", qty=1, price="50.00"),  # small, old
    ]
    await import_orders(clean_engine, write_csv(tmp_path / "money.csv", rows))
    async with AsyncSession(clean_engine) as session:
        accounts = {
            ref: (balance, limit)
            for ref, balance, limit in (
                await session.execute(
                    select(Customer.external_ref, Account.balance, Account.credit_limit).join(
                        Account, Account.customer_id == Customer.id
                    )
                )
            ).all()
        }
    # Open balance: 100 + 20 - 10. Credit: 6230 / 6 = 1038.33 -> rounded up to 1100.
    assert accounts["100"] == (Decimal("110.00"), Decimal("1100.00"))
    # Nothing open; twice the average month is tiny: the £500 floor.
    assert accounts["200"] == (Decimal("0.00"), Decimal("500.00"))


async def test_a_newer_import_for_other_customers_keeps_balances(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    first = [line("100", "581001", "2011-12-09 10:00:00", qty=10, price="10.00")]
    await import_orders(clean_engine, write_csv(tmp_path / "first.csv", first))
    # A month later, a new customer: customer 100's 30-day window would hold nothing.
    later = [line("300", "590001", "2012-01-20 10:00:00", qty=2, price="5.00")]
    await import_orders(clean_engine, write_csv(tmp_path / "later.csv", later))
    async with AsyncSession(clean_engine) as session:
        balances = dict(
            (
                await session.execute(
                    select(Customer.external_ref, Account.balance).join(
                        Account, Account.customer_id == Customer.id
                    )
                )
            ).all()
        )
    assert balances == {"100": Decimal("100.00"), "300": Decimal("10.00")}


async def test_optional_name_phone_email_columns_are_used(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    columns = [*COLUMNS, "name", "phone", "email"]
    rows = [
        line(
            "900",
            "600001",
            "2011-05-01 09:00:00",
            name="Priya Shah",
            phone="020 7946 0456",
            email="priya@example.com",
        ),
        line("901", "600002", "2011-05-01 09:05:00"),  # columns present but empty: fiction
    ]
    await import_orders(clean_engine, write_csv(tmp_path / "named.csv", rows, columns=columns))
    async with AsyncSession(clean_engine) as session:
        named = (
            await session.execute(
                select(Customer.name, Customer.email, CustomerPhone.raw, CustomerPhone.e164)
                .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                .where(Customer.external_ref == "900")
            )
        ).all()
        fictional = (
            await session.execute(select(Customer.name).where(Customer.external_ref == "901"))
        ).scalar_one()
    assert [tuple(r) for r in named] == [
        ("Priya Shah", "priya@example.com", "020 7946 0456", "+442079460456")
    ]
    assert fictional in (fiction.name_for("901"), fiction.name_for("901", business=True))


async def test_fictional_identities_are_stable_across_imports(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [
        line(str(ref), f"7{ref}", "2011-03-01 10:00:00", qty=1)
        for ref in (12346, 12347, 12352, 12496, 12497)  # 12497 shares 12496's landline
    ]
    path = write_csv(tmp_path / "fiction.csv", rows)
    await import_orders(clean_engine, path)
    first = await _phones(clean_engine)
    await truncate_all(clean_engine)
    await import_orders(clean_engine, path)
    assert await _phones(clean_engine) == first
    for ref, numbers in first.items():
        assert numbers == [e164 for _, e164 in fiction.phones_for(ref)]
        assert all(
            n is not None and n.startswith(("+4420", "+441", "+4428", "+447700900"))
            for n in numbers
        )
    assert first["12496"][0] == first["12497"][0]  # a shared line, for the chooser
