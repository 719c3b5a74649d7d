"""Fixtures for the calls tests: demo-like people, queues and customers on a clean database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.queues import service as queues
from tests.conftest import add_user
from tests.customers.factories import CustomerSpec, OrderSpec, PhoneSpec, add_customer, at, phone

SALES_DID = "+448081570001"
SUPPORT_DID = "+448081570002"
ANSWER_DID = "+448081570003"
OFF_DID = "+448081570004"
ADA_PHONE = "+447700900101"
SHARED_PHONE = "+447700900202"
UNKNOWN_PHONE = "+447700900999"


@pytest.fixture
def postgresql_only(backend: str) -> None:
    """PostgreSQL's event path only (the hot pool, kept rows): SQLite keeps the session path."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's event path only; SQLite keeps the session path")


@dataclass
class World:
    ada: int
    shared_a: int
    shared_b: int
    ref_customer: int


@pytest.fixture
async def world(clean_engine: AsyncEngine) -> World:
    """alice (201), bob (202), carol (203) agents; sam supervisor; four queues; customers."""
    return await build_world(clean_engine)


async def build_world(clean_engine: AsyncEngine) -> World:
    """Create the ``world`` in an empty database."""
    await add_user(clean_engine, "alice", extension="201", queues=["sales", "support"])
    await add_user(clean_engine, "bob", extension="202", queues=["sales", "support"])
    await add_user(clean_engine, "carol", extension="203", queues=["sales"])
    await add_user(clean_engine, "sam", role="supervisor")
    async with AsyncSession(clean_engine, expire_on_commit=False) as session:
        await queues.upsert_queue(session, name="sales", numbers=[SALES_DID])
        await queues.upsert_queue(session, name="support", numbers=[SUPPORT_DID])
        await queues.upsert_queue(session, name="onanswer", numbers=[ANSWER_DID], pop_mode="answer")
        await queues.upsert_queue(session, name="silent", numbers=[OFF_DID], pop_mode="off")
        ada = await add_customer(
            session,
            CustomerSpec(
                name="Ada Lovelace",
                phones=[phone(ADA_PHONE)],
                external_ref="C-1001",
                balance="42.50",
                credit_limit="1000",
                orders=[
                    OrderSpec("INV-1", at(2024, 3, 1), (("SKU1", "Teapot", 2, "9.99"),)),
                    OrderSpec("INV-2", at(2024, 6, 1), (("SKU2", "Cups", 6, "2.50"),)),
                ],
            ),
        )
        shared_a = await add_customer(
            session,
            CustomerSpec(name="Tom Shared", phones=[phone(SHARED_PHONE)],
                         orders=[OrderSpec("INV-3", at(2024, 1, 1))]),
        )  # fmt: skip
        shared_b = await add_customer(
            session,
            CustomerSpec(name="Tess Shared", phones=[phone(SHARED_PHONE)],
                         orders=[OrderSpec("INV-4", at(2024, 5, 1))]),
        )  # fmt: skip
        ref_customer = await add_customer(
            session,
            CustomerSpec(
                name="Ivy Account",
                external_ref="ACC-777",
                phones=[PhoneSpec(raw="01632 960000", e164=None, last_digits=None)],
            ),
        )
        await session.commit()
    return World(ada=ada, shared_a=shared_a, shared_b=shared_b, ref_customer=ref_customer)
