"""`train` on hand-made shops, on both backends: rows, reasons, exclusions, permission, feedback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.customers.models import Customer, Interaction
from app.insights.history import is_product_code
from app.insights.models import CustomerInsight, InsightRun, NextNeed
from app.insights.train import train
from tests.insights.data import GROUP_A, GROUP_B, NOW, Line, shop, write_csv

AS_OF = NOW.replace(tzinfo=UTC)


async def _load(engine: AsyncEngine, tmp_path: Path, extra: list[Line] | None = None) -> None:
    path = write_csv(tmp_path / "shop.csv", shop() + (extra or []))
    await import_orders(engine, path)


async def _customer(engine: AsyncEngine, ref: str) -> int:
    async with engine.connect() as conn:
        query = select(Customer.id).where(Customer.external_ref == ref)
        return int((await conn.execute(query)).scalar_one())


async def _needs(engine: AsyncEngine, customer_id: int) -> list[NextNeed]:
    async with engine.connect() as conn:
        query = select(NextNeed).where(NextNeed.customer_id == customer_id).order_by(NextNeed.rank)
        rows = (await conn.execute(query)).all()
    return [NextNeed(**row._mapping) for row in rows]


async def _outcome(
    engine: AsyncEngine, customer_id: int, sku: str, outcome: str, at: datetime
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(Interaction),
            [
                {
                    "customer_id": customer_id,
                    "call_id": f"generic:{customer_id}-{sku}-{outcome}-{at.timestamp()}",
                    "satisfaction": 4,
                    "offer_outcomes": [{"sku": sku, "outcome": outcome}],
                    "created_at": at,
                }
            ],
        )


async def test_train_writes_insights_and_ranked_needs_for_every_customer(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    # One extra customer who only ever returned something: still gets an insight row.
    returner = [Line("39999", "C600001", datetime(2011, 6, 1, 9), "10001", -2)]
    await _load(clean_engine, tmp_path, returner)
    report = await train(clean_engine, now=AS_OF)

    async with clean_engine.connect() as conn:
        customers = (await conn.execute(select(func.count()).select_from(Customer))).scalar_one()
        insights = (await conn.execute(select(CustomerInsight))).all()
        needs = (
            await conn.execute(select(NextNeed).order_by(NextNeed.customer_id, NextNeed.rank))
        ).all()
        runs = (await conn.execute(select(InsightRun.kind, InsightRun.customers))).all()
    assert customers == 25
    assert report.customers == 25 and len(insights) == 25
    assert runs == [("full", 25)]
    assert {row.value_tier for row in insights} <= {"high", "medium", "low"}
    assert {row.segment for row in insights} <= {
        "loyal", "discount", "impulsive", "need-based", "wandering"
    }  # fmt: skip
    assert all(row.treatment for row in insights)
    by_customer: dict[int, list[NextNeed]] = {}
    for row in needs:
        by_customer.setdefault(row.customer_id, []).append(row)
    # Every buyer has needs, ranked 1..n, best score first, at most 10 of each kind.
    assert len(by_customer) >= 24
    for rows in by_customer.values():
        assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
        scores = [r.score for r in rows]
        assert scores == sorted(scores, reverse=True)
        for kind in ("reorder", "cross_sell"):
            assert sum(r.kind == kind for r in rows) <= 10
    # Reasons an agent can say aloud.
    for row in needs:
        assert row.reason
        if row.kind == "reorder":
            assert re.match(r"bought (once|twice|\d+ times), last ", row.reason), row.reason
    # A group-A regular re-orders group-A products; group-B products are its cross-sells.
    a_regular = await _customer(clean_engine, "10000")
    rows = by_customer[a_regular]
    assert {r.sku for r in rows if r.kind == "reorder"} <= set(GROUP_A)
    assert {r.sku for r in rows if r.kind == "reorder"}
    assert {r.sku for r in rows if r.kind == "cross_sell"} <= set(GROUP_B)
    # Non-product codes (postage, fees, manual lines, tests, gift cards) are never suggested.
    assert all(is_product_code(row.sku) for row in needs)
    assert not {row.sku for row in needs} & {"POST", "M", "DOT", "BANK CHARGES", "NOCODE"}


async def test_may_offer_follows_marketing_consent(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _load(clean_engine, tmp_path)
    yes, no = await _customer(clean_engine, "10001"), await _customer(clean_engine, "10002")
    async with clean_engine.begin() as conn:
        await conn.execute(
            update(Customer).where(Customer.id == yes).values(marketing_consent=True)
        )
        await conn.execute(
            update(Customer).where(Customer.id == no).values(marketing_consent=False)
        )
    await train(clean_engine, now=AS_OF)

    assert {n.may_offer for n in await _needs(clean_engine, yes)} == {True}
    assert {n.may_offer for n in await _needs(clean_engine, no)} == {False}
    async with clean_engine.connect() as conn:
        treatment = (
            await conn.execute(
                select(CustomerInsight.treatment).where(CustomerInsight.customer_id == no)
            )
        ).scalar_one()
    assert "No marketing permission" in treatment


async def test_declined_product_is_not_suggested_for_the_configured_period(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _load(clean_engine, tmp_path)
    cid = await _customer(clean_engine, "10003")
    await train(clean_engine, now=AS_OF)
    suggested = [n.sku for n in await _needs(clean_engine, cid)]
    declined = suggested[0]
    await _outcome(clean_engine, cid, declined, "declined", AS_OF - timedelta(days=10))

    await train(clean_engine, now=AS_OF, decline_suppress_days=90)
    after = [n.sku for n in await _needs(clean_engine, cid)]
    assert declined not in after
    assert after  # the rest are still suggested

    # Past the suppression period it comes back.
    await train(clean_engine, now=AS_OF, decline_suppress_days=5)
    assert declined in [n.sku for n in await _needs(clean_engine, cid)]


async def test_accepted_product_raises_its_co_purchase_neighbours(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _load(clean_engine, tmp_path)
    cid = await _customer(clean_engine, "10004")
    await train(clean_engine, now=AS_OF)
    before = {n.sku: n for n in await _needs(clean_engine, cid) if n.kind == "cross_sell"}

    await _outcome(clean_engine, cid, "20001", "accepted", AS_OF - timedelta(days=2))
    await train(clean_engine, now=AS_OF)
    after = {n.sku: n for n in await _needs(clean_engine, cid) if n.kind == "cross_sell"}

    neighbours = [sku for sku in ("20002", "20003", "20004", "20005") if sku in after]
    assert neighbours
    for sku in neighbours:
        assert after[sku].score > before.get(sku, after[sku]).score - 1e-12
        assert "took on a recent call" in after[sku].reason
    assert any(after[s].score > before[s].score for s in neighbours if s in before)


async def test_since_refreshes_only_customers_with_news(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _load(clean_engine, tmp_path)
    await train(clean_engine, now=AS_OF - timedelta(days=3))
    async with clean_engine.connect() as conn:
        first = dict(
            (
                await conn.execute(select(CustomerInsight.customer_id, CustomerInsight.computed_at))
            ).all()
        )
    # One new order for one customer, after the last run.
    news = [Line("10005", "599999", NOW - timedelta(days=1), "10001", 12)]
    await import_orders(clean_engine, write_csv(tmp_path / "news.csv", news))
    cid = await _customer(clean_engine, "10005")

    report = await train(clean_engine, since=AS_OF - timedelta(days=2))
    assert report.kind == "since" and report.customers == 1 and not report.refitted
    async with clean_engine.connect() as conn:
        second = dict(
            (
                await conn.execute(select(CustomerInsight.customer_id, CustomerInsight.computed_at))
            ).all()
        )
        kinds = (
            (await conn.execute(select(InsightRun.kind).order_by(InsightRun.id))).scalars().all()
        )
    assert second[cid] > first[cid]
    assert all(second[c] == first[c] for c in first if c != cid)
    assert kinds == ["full", "since"]
    reorder = {n.sku: n.reason for n in await _needs(clean_engine, cid) if n.kind == "reorder"}
    assert "10001" in reorder and ", last today" in reorder["10001"]


async def test_as_of_is_the_newest_order_not_a_later_wrap_up(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _load(clean_engine, tmp_path)
    cid = await _customer(clean_engine, "10001")
    # A wrap-up a month after the last order must not move "now" (issue: train on live data).
    await _outcome(clean_engine, cid, "10002", "declined", AS_OF + timedelta(days=30))
    stages: list[tuple[str, int, int]] = []
    report = await train(clean_engine, progress=lambda s, d, t: stages.append((s, d, t)))

    newest = max(ln.at for ln in shop()).replace(tzinfo=ZoneInfo("Europe/London"))
    assert report.as_of == newest + timedelta(minutes=1)
    # ...and the decline, though after it, still applies.
    assert "10002" not in {n.sku for n in await _needs(clean_engine, cid)}
    # One bar per stage, each one finished.
    last = {stage: (done, total) for stage, done, total in stages}
    assert {
        "reading history", "training windows", "fitting the any-product ranker",
        "fitting the cross-sell ranker", "writing",
    } <= set(last)  # fmt: skip
    assert all(done == total for done, total in last.values())


async def test_since_refits_when_the_stored_rankers_are_from_other_features(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _load(clean_engine, tmp_path)
    await train(clean_engine, now=AS_OF - timedelta(days=3))
    async with clean_engine.begin() as conn:
        params = (await conn.execute(select(InsightRun.params))).scalar_one()
        old = {**params, "rankers": {"reorder": {"weights": [0.1]}, "cross": {"weights": [0.2]}}}
        await conn.execute(update(InsightRun).values(params=old))
    report = await train(clean_engine, since=AS_OF - timedelta(days=30))
    assert report.kind == "since" and report.refitted
