"""The profile in one PostgreSQL statement gives exactly the four-query document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import repository as repo
from app.customers import service
from app.customers.models import Account
from app.customers.profile_query import ProfileRows, profile_rows
from app.errors import NotFound
from app.insights.models import CustomerInsight, NextNeed
from tests.customers.factories import (
    CustomerSpec,
    OrderSpec,
    PhoneSpec,
    add_customer,
    add_interaction,
    at,
    phone,
)

ODD_TEXT = 'Café "quoted" \\ back\nline ☕ \t end'


def _postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@contextmanager
def counting_statements(session: AsyncSession) -> Iterator[list[str]]:
    """Every statement sent, raw asyncpg ones included (RawStatement calls the listener)."""
    statements: list[str] = []
    engine = session.get_bind().engine

    def _count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", _count)


async def _with_orders_and_returns(session: AsyncSession) -> int:
    """14 orders (one tie on the timestamp, one without lines, one return, one of 25 lines),
    odd prices, microsecond timestamps, a phone stored without E.164; interactions too."""
    same = at(2011, 11, 1).replace(microsecond=500_000)
    orders = [
        OrderSpec(f"5{n:05d}", at(2011, 1 + n % 12, 1 + n), lines=[("85123A", ODD_TEXT, 6, "2.55")])
        for n in range(9)
    ]
    orders += [
        OrderSpec("560001", same, lines=[("A", "tie one", 1, "0.001")]),
        OrderSpec("560002", same, lines=[("B", "tie two", 3, "1234.567")]),
        OrderSpec("570000", at(2011, 11, 2).replace(microsecond=123_456), lines=[]),
        OrderSpec(
            "C580000", at(2011, 12, 20), lines=[("22423", "CAKE", -1, "12.75")], is_return=True
        ),
        OrderSpec(
            "581000",
            at(2011, 12, 21),
            lines=[(f"SKU{i}", f"Item {i}", i, f"{i}.125") for i in range(25)],
        ),
    ]
    cid = await add_customer(
        session,
        CustomerSpec(
            "Ann Lee",
            phones=[phone("+442079460123"), PhoneSpec("0207 946 0999 ext 2", None, None, "work")],
            external_ref="17850",
            balance="-0.10",
            credit_limit="1100.05",
            marketing_consent=False,
            orders=orders,
        ),
    )
    base = at(2011, 12, 1)
    for n in range(12):
        await add_interaction(
            session,
            cid,
            base + timedelta(days=n, microseconds=n * 7),
            channel="phone",
            agent="alice" if n % 2 else None,
            disposition="order",
            notes=ODD_TEXT if n % 3 else None,
            satisfaction=n % 5 or None,
            offer_outcomes=[{"sku": "22423", "outcome": "declined", "n": n}] if n % 2 else [],
        )
    # Same time: the later id comes first.
    await add_interaction(session, cid, base + timedelta(days=11, microseconds=77), notes="twin")
    return cid


async def _with_insights_and_next_needs(session: AsyncSession) -> int:
    cid = await add_customer(
        session,
        CustomerSpec(
            "Yes Please",
            phones=[phone("+441134960555")],
            orders=[OrderSpec("600001", at(2011, 5, 5), lines=[("X", "x", 1, "9.999")])],
        ),
    )
    await session.execute(
        insert(CustomerInsight).values(
            customer_id=cid,
            clv_historic=3456.78,
            clv_forecast=1200,
            value_tier="high",
            potential=True,
            segment="loyal",
            stage="commitment",
            churn_risk=1 / 3,
            satisfaction_trend=None,
            treatment=ODD_TEXT,
            details={"frequency": 12, "aov": 12.345, "tags": ["a", "b"], "nested": {"x": None}},
            computed_at=at(2011, 12, 22).replace(microsecond=1),
        )
    )
    # Inserted out of rank order: the list is by rank.
    for rank in (3, 1, 2):
        await session.execute(
            insert(NextNeed).values(
                customer_id=cid,
                rank=rank,
                sku=f"S{rank}",
                name=f"Product {rank}",
                kind="reorder" if rank % 2 else "cross_sell",
                score=0.1 if rank == 1 else 1.0 / (rank * 7),
                reason=ODD_TEXT,
                may_offer=rank != 2,
                computed_at=at(2011, 12, 22),
            )
        )
    await add_interaction(session, cid, at(2011, 12, 2), offer_outcomes=[{"sku": "S1"}])
    return cid


async def _without_anything(session: AsyncSession) -> int:
    """No phones, orders, insights, touch points; and no account."""
    cid = await add_customer(session, CustomerSpec("New Person", created_at=at(2012, 3, 4)))
    await session.execute(delete(Account).where(Account.customer_id == cid))
    return cid


def _exact(rows: ProfileRows) -> list[list[str]]:
    """Every value with its type (Decimal('2.550') and an aware datetime show as such)."""
    return [[repr(tuple(r)) for r in part] for part in rows]


async def test_one_statement_gives_the_four_query_document(session: AsyncSession) -> None:
    customers = [
        await _with_orders_and_returns(session),
        await _with_insights_and_next_needs(session),
        await _without_anything(session),
    ]
    if not _postgresql(session):
        # SQLite: no single statement; assemble_profile runs the four queries.
        assert await profile_rows(session, customers[0]) is None
        return
    for cid in customers:
        one = await service.assemble_profile(session, cid)
        four = await service.assemble_profile(session, cid, single_statement=False)
        assert one.pop("as_of") and four.pop("as_of")
        assert json.dumps(one) == json.dumps(four)
        assert one["customer"]["id"] == cid

    rich = await service.assemble_profile(session, customers[0])
    assert [p["invoice_no"] for p in rich["purchases"][:5]] == [
        "581000",
        "C580000",
        "570000",
        "560002",
        "560001",
    ]
    assert rich["purchases"][0]["more_items"] == 5
    assert rich["purchases"][2]["items"] == [] and rich["purchases"][2]["item_count"] == 0
    assert rich["purchases"][2]["ordered_at"] == "2011-11-02T12:00:00.123456+00:00"
    assert rich["purchases"][3]["items"][0]["unit_price"] == 1234.567
    assert rich["interactions"][0]["notes"] == "twin"
    assert rich["account"]["balance"] == -0.1
    assert rich["customer"]["phones"][1] == {
        "number": "0207 946 0999 ext 2",
        "e164": None,
        "label": "work",
    }
    scored = await service.assemble_profile(session, customers[1])
    assert [n["sku"] for n in scored["next_needs"]] == ["S1", "S2", "S3"]
    assert scored["insights"]["churn_risk"] == 1 / 3
    assert scored["insights"]["treatment"] == ODD_TEXT
    empty = await service.assemble_profile(session, customers[2])
    assert empty["account"] is None and empty["customer"]["phones"] == []
    assert empty["purchases"] == empty["next_needs"] == empty["interactions"] == []


async def test_one_statement_rows_hold_the_driver_values(session: AsyncSession) -> None:
    """Beyond the document: the rows themselves (Decimal scale, aware UTC datetimes, floats)."""
    if not _postgresql(session):
        pytest.skip("one statement is PostgreSQL only (SQLite: see the test above)")
    for cid in (
        await _with_orders_and_returns(session),
        await _with_insights_and_next_needs(session),
        await _without_anything(session),
    ):
        one = await profile_rows(session, cid)
        assert one is not None
        four = ProfileRows(
            await repo.identity_rows(session, cid),
            await repo.recent_order_lines(session, cid),
            await repo.next_needs(session, cid),
            await repo.recent_interactions(session, cid),
        )
        assert _exact(one) == _exact(four)
        assert one.identity


async def test_profile_is_one_statement_on_postgresql(session: AsyncSession) -> None:
    cid = await _with_insights_and_next_needs(session)
    with counting_statements(session) as statements:
        doc = await service.assemble_profile(session, cid)
    assert doc["next_needs"] and doc["interactions"] and doc["purchases"]
    assert len(statements) == (1 if _postgresql(session) else 4)
    with counting_statements(session) as statements, pytest.raises(NotFound):
        await service.assemble_profile(session, 987_654)
    assert len(statements) == 1  # an unknown id: identity found nothing, nothing else asked
    with counting_statements(session) as statements:
        await service.assemble_profile(session, cid, single_statement=False)
    assert len(statements) == 4
