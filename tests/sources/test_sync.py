"""``screenpop sync``: the README's ERP example read from MariaDB into SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers.models import Account, Customer, CustomerPhone, CustomerRef, Order, OrderLine
from app.sources.config import SourcesConfig
from app.sources.sync import sync_source
from tests.sources.support import run_sql

TABLES = (Customer, CustomerPhone, CustomerRef, Account, Order, OrderLine)


async def snapshot(engine: AsyncEngine) -> dict[str, list[Any]]:
    found = {}
    async with engine.connect() as conn:
        for model in TABLES:
            table = model.__table__
            rows = (await conn.execute(select(table).order_by(*table.primary_key))).all()
            found[table.name] = [tuple(r) for r in rows]
    return found


async def customer(engine: AsyncEngine, ref: str) -> dict[str, Any]:
    async with AsyncSession(engine) as conn:
        row = (
            await conn.execute(
                select(Customer, Account.balance, Account.overdue, Account.balance_source)
                .join(CustomerRef, CustomerRef.customer_id == Customer.id)
                .join(Account, Account.customer_id == Customer.id)
                .where(CustomerRef.source == "erp", CustomerRef.ref == ref)
            )
        ).one()
        phones = (
            await conn.execute(
                select(CustomerPhone.e164).where(CustomerPhone.customer_id == row.Customer.id)
            )
        ).scalars()
        orders = (
            await conn.execute(select(Order.invoice_no).where(Order.customer_id == row.Customer.id))
        ).scalars()
        return {"c": row.Customer, "balance": row.balance, "overdue": row.overdue,
                "balance_source": row.balance_source, "phones": sorted(p or "" for p in phones),
                "orders": sorted(orders)}  # fmt: skip


def summary(reports: dict[str, Any]) -> dict[str, dict[str, int]]:
    keys = ("rows", "added", "updated", "unchanged", "deleted", "merged", "bad")
    return {e: {k: v for k, v in r.as_dict().items() if k in keys} for e, r in reports.items()}


async def test_a_sync_run_twice_changes_nothing_the_second_time(
    clean_engine: AsyncEngine, examples: SourcesConfig
) -> None:
    erp = examples.sources["erp"]
    first = summary(await sync_source(clean_engine, "erp", erp))
    assert first["customers"] == {"rows": 3, "added": 3, "updated": 0, "unchanged": 0,
                                  "deleted": 0, "merged": 0, "bad": 0}  # fmt: skip
    assert first["orders"]["added"] == 3 and first["balances"]["updated"] == 2
    ada = await customer(clean_engine, "E-1001")
    assert ada["c"].name == "Ada Byron" and ada["c"].account_manager == "maria"
    assert ada["c"].marketing_consent is True and ada["c"].external_ref == "E-1001"
    # Numbers as people typed them in the ERP, stored as E.164.
    assert ada["phones"] == ["+442079460111", "+447700900111"]
    assert (float(ada["balance"]), float(ada["overdue"]), ada["balance_source"]) == (
        250,
        100,
        "erp",
    )
    assert ada["orders"] == ["SO-1", "SO-2"]
    cox = await customer(clean_engine, "E-1002")
    assert cox["c"].customer_type == "industrial" and cox["phones"] == ["+447700900222"]
    before = await snapshot(clean_engine)

    again = summary(await sync_source(clean_engine, "erp", erp))
    assert all(r["rows"] == 0 for r in again.values())  # nothing changed since the cursor
    full = summary(await sync_source(clean_engine, "erp", erp, full=True))
    assert full["customers"]["unchanged"] == 3 and full["orders"]["unchanged"] == 3
    assert all(r["added"] == r["updated"] == r["deleted"] == 0 for r in full.values())
    assert await snapshot(clean_engine) == before


async def test_sync_follows_updates_deletes_and_merges(
    clean_engine: AsyncEngine, examples: SourcesConfig, erp_url: str
) -> None:
    erp = examples.sources["erp"]
    await sync_source(clean_engine, "erp", erp)
    await run_sql(
        erp_url,
        "UPDATE customers SET first_name = 'Augusta Ada' WHERE customer_no = 'E-1001';"
        "UPDATE customers SET merged_into = 'E-1001' WHERE customer_no = 'E-1003';"
        "UPDATE customers SET deleted = 1 WHERE customer_no = 'E-1002'",
    )
    changed = summary(await sync_source(clean_engine, "erp", erp))
    assert changed["customers"] == {"rows": 3, "added": 0, "updated": 1, "unchanged": 0,
                                    "deleted": 1, "merged": 1, "bad": 0}  # fmt: skip
    ada = await customer(clean_engine, "E-1001")
    assert ada["c"].name == "Augusta Ada Byron"
    # The duplicate's number now reaches Ada; the deleted customer is gone with their orders.
    assert "+447700900333" in ada["phones"]
    async with clean_engine.connect() as conn:
        refs = dict((await conn.execute(select(CustomerRef.ref, CustomerRef.customer_id))).all())
        assert refs["E-1003"] == ada["c"].id and "E-1002" not in refs
        assert (await conn.execute(text("SELECT count(*) FROM customers"))).scalar_one() == 1
        orders = (await conn.execute(select(Order.invoice_no))).scalars().all()
        assert sorted(orders) == ["SO-1", "SO-2"]


async def test_an_interrupted_sync_resumes_from_the_last_whole_batch(
    clean_engine: AsyncEngine, examples: SourcesConfig
) -> None:
    erp = examples.sources["erp"]
    assert erp.sync is not None
    one_by_one = erp.model_copy(update={"sync": erp.sync.model_copy(update={"batch_size": 1})})

    def crash(_: int) -> None:
        raise KeyboardInterrupt  # after the first batch has been committed

    with pytest.raises(KeyboardInterrupt):
        await sync_source(clean_engine, "erp", one_by_one, progress=crash)
    async with clean_engine.connect() as conn:
        stored = (await conn.execute(select(CustomerRef.ref))).scalars().all()
    assert stored == ["E-1001"]
    resumed = summary(await sync_source(clean_engine, "erp", one_by_one))
    # E-1003 shares E-1001's timestamp, so E-1001 is read again (unchanged), not skipped.
    assert resumed["customers"] == {"rows": 3, "added": 2, "updated": 0, "unchanged": 1,
                                    "deleted": 0, "merged": 0, "bad": 0}  # fmt: skip
    assert resumed["orders"]["added"] == 3
