"""Importing customers, orders and balances from CSV and JSON Lines through a mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers.importer import ImportFileError
from app.customers.mapped_import import import_mapped, load_mapping
from app.customers.models import Account, Customer, CustomerPhone, CustomerRef, Order, OrderLine

CUSTOMERS_CSV = """Customer No,Name,Phone,Mobile,E-mail,Type,Opt-in,Rep,Limit,Segment
K-1,Joan Smith,020 7946 0555,07700 900555,joan@example.org,consumer,yes,maria,750,gold
K-2,Smith & Sons,+44 (0)121 496 0777,,orders@smith.example,Industrial,0,tom,5000,silver
,No Ref,020 7946 0999,,,,,,,
K-3,Bad Limit,020 7946 0888,,,,,,lots,
"""
CUSTOMERS_MAP = """entity = "customers"
source = "shop"
[columns]
ref = "Customer No"
name = "Name"
phones = ["Phone", "Mobile"]
email = "E-mail"
customer_type = "Type"
marketing_ok = "Opt-in"
account_manager = "Rep"
credit_limit = "Limit"
[attributes]
segment = "Segment"
"""
ORDERS = [
    {"id": "O-1", "customer": {"no": "K-1"}, "placed": "2026-11-01T10:00:00+01:00",
     "sum": "42.50", "currency": "EUR", "lines": [{"sku": "a-1", "description": "Apple",
     "quantity": 5, "unit_price": 8.5}]},
    {"id": "O-2", "customer": {"no": "K-9"}, "placed": "2026-11-02", "sum": 1},
]  # fmt: skip
ORDERS_MAP = """entity = "orders"
source = "shop"
[columns]
ref = "id"
customer_ref = "customer.no"
ordered_at = "placed"
total = "sum"
currency = "currency"
lines = "lines"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_customers_then_orders_from_csv_and_json_lines(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    mapping = load_mapping(write(tmp_path, "customers.toml", CUSTOMERS_MAP))
    source = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    seen: list[int] = []
    report = await import_mapped(clean_engine, source, mapping, progress=seen.append)
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    assert report.bad == [
        ("line 4", "ref is empty"),
        ("line 5", "credit_limit 'lots' is not a number"),
    ]
    assert sum(seen) == 4

    orders_file = write(
        tmp_path, "orders.jsonl", "\n".join(json.dumps(o) for o in ORDERS) + "\n{oops\n"
    )
    orders = await import_mapped(
        clean_engine, orders_file, load_mapping(write(tmp_path, "orders.toml", ORDERS_MAP))
    )
    assert orders.added == 1
    assert [where for where, _ in orders.bad] == ["line 3", "line 2"]

    async with AsyncSession(clean_engine) as session:
        joan = (
            await session.execute(
                select(Customer).join(CustomerRef).where(CustomerRef.ref == "K-1")
            )
        ).scalar_one()
        assert (joan.name, joan.email, joan.account_manager) == (
            "Joan Smith",
            "joan@example.org",
            "maria",
        )
        assert joan.marketing_consent is True and joan.attributes == {"segment": "gold"}
        phones = (
            await session.execute(
                select(CustomerPhone.e164).where(CustomerPhone.customer_id == joan.id)
            )
        ).scalars()
        assert sorted(p or "" for p in phones) == ["+442079460555", "+447700900555"]
        limit = (
            await session.execute(
                select(Account.credit_limit).where(Account.customer_id == joan.id)
            )
        ).scalar_one()
        assert float(limit) == 750
        order = (await session.execute(select(Order).where(Order.invoice_no == "O-1"))).scalar_one()
        assert (order.customer_id, float(order.total), order.currency, order.source) == (
            joan.id,
            42.5,
            "EUR",
            "shop",
        )
        assert order.ordered_at.isoformat() == "2026-11-01T09:00:00+00:00"
        line = (
            await session.execute(select(OrderLine).where(OrderLine.order_id == order.id))
        ).scalar_one()
        assert (line.sku, line.quantity, float(line.unit_price)) == ("A-1", 5, 8.5)
        sons = (
            await session.execute(select(Customer).where(Customer.external_ref == "K-2"))
        ).scalar_one()
        assert sons.customer_type == "industrial"

    again = await import_mapped(clean_engine, source, mapping)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


def test_a_mapping_or_a_file_that_does_not_fit_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(ImportFileError, match="customers need name"):
        load_mapping(write(tmp_path, "m.toml", 'entity = "customers"\n[columns]\nref = "A"\n'))
    with pytest.raises(ImportFileError, match="unknown shoe_size"):
        load_mapping(
            write(
                tmp_path,
                "m.toml",
                'entity = "customers"\n[columns]\nref = "A"\nname = "B"\nshoe_size = "C"\n',
            )
        )


async def test_a_csv_without_a_mapped_column_is_refused(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    mapping = load_mapping(write(tmp_path, "customers.toml", CUSTOMERS_MAP))
    with pytest.raises(ImportFileError, match="missing column"):
        await import_mapped(
            clean_engine, write(tmp_path, "c.csv", "Customer No,Name\nK-1,Joan\n"), mapping
        )


async def test_a_value_too_long_for_its_column_is_refused_naming_it_never_cut(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    long_ref = "R" * 100  # fits customer_refs.ref (128), not customers.external_ref (64)
    text = (
        "Customer No,Name,Phone,Mobile,E-mail,Type,Opt-in,Rep,Limit,Segment\n"
        f"K-1,{'N' * 201},020 7946 0555,,,,,,,\n"
        f"K-2,Ann,020 7946 0556,,{'e' * 190}@example.org,,,,,\n"
        f"{long_ref},Bea,020 7946 0557,,,,,,,\n"
        "K-4,Cy,020 7946 0558,,,,,\x00rep,,\n"
    )
    mapping = load_mapping(write(tmp_path, "customers.toml", CUSTOMERS_MAP))
    report = await import_mapped(clean_engine, write(tmp_path, "c.csv", text), mapping)
    assert report.bad == [
        ("line 2", "name is 201 characters long; the limit is 200"),
        ("line 3", "email is 202 characters long; the limit is 200"),
        ("line 5", "account_manager contains a NUL character"),
    ]
    assert report.added == 1
    async with AsyncSession(clean_engine) as session:
        customer = (await session.execute(select(Customer))).scalar_one()
        ref = (await session.execute(select(CustomerRef.ref))).scalar_one()
        label = (await session.execute(select(CustomerPhone.label))).scalar_one()
    # Stored whole where it fits; external_ref (64) is left empty rather than cut.
    assert (customer.name, customer.external_ref, ref) == ("Bea", None, long_ref)
    assert label == "shop"

    orders = [
        {"id": "O" * 33, "customer": {"no": long_ref}, "placed": "2026-11-01", "sum": 1},
        {"id": "O-2", "customer": {"no": long_ref}, "placed": "2026-11-01", "sum": 1,
         "lines": [{"sku": "S" * 33, "quantity": 1}]},
    ]  # fmt: skip
    lines = "\n".join(json.dumps(o) for o in orders) + "\n"
    stored = await import_mapped(
        clean_engine,
        write(tmp_path, "orders.jsonl", lines),
        load_mapping(write(tmp_path, "orders.toml", ORDERS_MAP)),
    )
    assert stored.bad == [
        ("line 1", "ref is 33 characters long; the limit is 32"),
        ("line 2", "lines[0].sku is 33 characters long; the limit is 32"),
    ]
    async with AsyncSession(clean_engine) as session:
        assert (await session.execute(select(Order))).first() is None
