"""Hand-built customers, orders and touch points for the customers tests (Core inserts)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import (
    Account,
    Customer,
    CustomerPhone,
    Interaction,
    Order,
    OrderLine,
)
from app.main import create_app
from app.users import security
from tests.conftest import TEST_JWT_SECRET, make_settings


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@dataclass
class OrderSpec:
    invoice_no: str
    ordered_at: datetime
    lines: Sequence[tuple[str, str, int, str]] = (("SKU1", "A thing", 1, "1.00"),)
    is_return: bool = False


@dataclass
class PhoneSpec:
    raw: str
    e164: str | None
    last_digits: str | None
    label: str = "main"


def phone(e164: str) -> PhoneSpec:
    """A well-formed stored number."""
    return PhoneSpec(raw=e164, e164=e164, last_digits="".join(c for c in e164 if c.isdigit())[-9:])


@dataclass
class CustomerSpec:
    name: str
    phones: Sequence[PhoneSpec] = ()
    external_ref: str | None = None
    customer_type: str = "consumer"
    marketing_consent: bool = True
    balance: str = "0"
    credit_limit: str = "500"
    orders: Sequence[OrderSpec] = ()
    created_at: datetime = field(default_factory=lambda: at(2011, 1, 1))


async def add_customer(session: AsyncSession, spec: CustomerSpec) -> int:
    """Insert a customer with phones, an account and orders; returns its id."""
    cid = (
        await session.execute(
            insert(Customer)
            .values(
                name=spec.name,
                external_ref=spec.external_ref,
                customer_type=spec.customer_type,
                marketing_consent=spec.marketing_consent,
                country="United Kingdom",
                email=f"{spec.name.split()[0].lower()}@example.com",
                created_at=spec.created_at,
            )
            .returning(Customer.id)
        )
    ).scalar_one()
    for p in spec.phones:
        await session.execute(
            insert(CustomerPhone).values(
                customer_id=cid, raw=p.raw, e164=p.e164, last_digits=p.last_digits, label=p.label
            )
        )
    await session.execute(
        insert(Account).values(
            customer_id=cid,
            balance=Decimal(spec.balance),
            credit_limit=Decimal(spec.credit_limit),
            currency="GBP",
            status="active",
        )
    )
    for order in spec.orders:
        total = sum(Decimal(price) * qty for _, _, qty, price in order.lines)
        oid = (
            await session.execute(
                insert(Order)
                .values(
                    customer_id=cid,
                    invoice_no=order.invoice_no,
                    ordered_at=order.ordered_at,
                    is_return=order.is_return,
                    total=total,
                    country="United Kingdom",
                )
                .returning(Order.id)
            )
        ).scalar_one()
        for n, (sku, desc, qty, price) in enumerate(order.lines, start=1):
            await session.execute(
                insert(OrderLine).values(
                    order_id=oid,
                    line_no=n,
                    sku=sku,
                    description=desc,
                    quantity=qty,
                    unit_price=Decimal(price),
                )
            )
    return int(cid)


async def add_interaction(
    session: AsyncSession, customer_id: int, created_at: datetime, **values: Any
) -> None:
    await session.execute(
        insert(Interaction).values(customer_id=customer_id, created_at=created_at, **values)
    )


async def count(session: AsyncSession, model: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def bearer(username: str = "alice", role: str = "agent") -> dict[str, str]:
    token = security.issue_token(TEST_JWT_SECRET, username=username, role=role, ttl_s=600)
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def app_client(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Like the ``client`` fixture, with settings overridden (caller cleans the database)."""
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
