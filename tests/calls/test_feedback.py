"""A wrap-up counts at once: the next profile and pop show the touch point first, leave out
the declined SKU, carry insights.satisfaction and a recovery treatment (SQLite and PostgreSQL,
the real app; no ``train``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.insights.models import CustomerInsight, NextNeed
from tests.calls.conftest import ADA_PHONE, World
from tests.calls.support import bearer, event, new_call_id, running_app


async def seed_insights(engine: AsyncEngine, customer_id: int) -> None:
    async with AsyncSession(engine) as session:
        session.add(
            CustomerInsight(
                customer_id=customer_id,
                value_tier="high",
                segment="loyal",
                stage="maturity",
                treatment="Priority service: high-value customer; fast, senior handling.",
            )
        )
        for rank, sku in enumerate(("22423", "SKU7")):
            session.add(
                NextNeed(customer_id=customer_id, rank=rank, sku=sku, name=f"item {sku}",
                         kind="reorder", score=1.0 - rank / 10, reason="due")
            )  # fmt: skip
        await session.commit()


async def pop_of(engine: AsyncEngine, call: str) -> dict[str, Any]:
    async with AsyncSession(engine) as session:
        pop = await session.scalar(select(Call.pop).where(Call.id == f"generic:{call}"))
    assert isinstance(pop, dict)
    return pop


async def test_wrap_up_feedback_reaches_the_next_profile_and_pop(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    await seed_insights(clean_engine, world.ada)
    first, second = new_call_id(), new_call_id()
    async with running_app(database_url) as app:
        for body in (
            event(first, "queued", queue="sales", caller=ADA_PHONE),
            event(first, "answered", agent="201", caller=ADA_PHONE),
            event(first, "ended", caller=ADA_PHONE),
        ):
            assert (await app.post(body)).status_code == 202
        before = await pop_of(clean_engine, first)
        assert [n["sku"] for n in before["next_needs"]] == ["22423", "SKU7"]
        assert before["treatment"].startswith("Priority service")

        wrapup = await app.http.post(
            f"/api/calls/generic:{first}/wrapup",
            json={
                "disposition": "complaint",
                "satisfaction": 1,
                "offers": [{"sku": "22423", "outcome": "declined"}],
            },
            headers=bearer("alice"),
        )
        assert wrapup.status_code == 201, wrapup.text

        profile = await app.http.get(f"/api/customers/{world.ada}/profile", headers=bearer("alice"))
        assert profile.status_code == 200, profile.text
        for doc in (profile.json(), None):
            if doc is None:  # the next call's pop, built at its first sight
                assert (
                    await app.post(event(second, "queued", queue="sales", caller=ADA_PHONE))
                ).status_code == 202
                doc = await pop_of(clean_engine, second)
            assert doc["interactions"][0]["call_id"] == f"generic:{first}"
            assert doc["interactions"][0]["disposition"] == "complaint"
            assert [n["sku"] for n in doc["next_needs"]] == ["SKU7"]
            assert doc["insights"]["satisfaction"] == {"last": 1, "average": 1.0, "count": 1}
            assert doc["treatment"].startswith("Recovery")
            assert doc["insights"]["treatment"] == doc["treatment"]
