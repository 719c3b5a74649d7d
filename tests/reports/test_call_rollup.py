"""The call reports' rollup: rolled-up days plus today's live wrap-ups answer as the wrap-ups do.

Each check computes a report twice from the same database: from the wrap-ups alone
(``rolled_to=None``) and from the rollup plus the wrap-ups of the days not rolled up; the two
must be equal, for every report, scope, range and kind tried.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.customers.models import Interaction, Product
from app.db import utcnow
from app.reports import call_reports as reports
from app.reports import call_rollup as rollup
from app.reports.models import CallRollup, GradeRollup, OfferAgentRollup, OfferProductRollup
from app.settings import Settings
from tests.queues.test_router import App, add_users, running

LONDON = "Europe/London"
# "Now" for the direct checks: Friday 10 April 2026, London summer time (UTC+1).
NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
QUEUES = ["sales", "support", None]
AGENTS = ["alice", "bob", "carol"]
SKUS = ["P1", "P2", "P3"]
OUTCOMES = ["accepted", "declined", "not_offered"]
LANES: list[frozenset[str] | None] = [
    None,  # an admin
    frozenset({"sales", "unrouted"}),  # a supervisor of sales
    frozenset({"support"}),
]


def wrap_ups(first: datetime, last: datetime, count: int, seed: int) -> list[Interaction]:
    """``count`` wrap-ups at random instants in ``[first, last)``: some without a call, some
    carrying no queue of their own (their call's counts), some whose call was purged."""
    rng = random.Random(seed)
    span = (last - first).total_seconds()
    found = []
    for n in range(count):
        at = first + timedelta(seconds=rng.uniform(0, span))
        graded = rng.random() < 0.6
        skus = rng.sample(SKUS, rng.randint(0, 3))
        shape = rng.random()
        found.append(
            Interaction(
                agent=rng.choice(AGENTS),
                call_id=None if shape < 0.1 else f"generic:c{seed}-{n}",
                queue=None if shape < 0.3 else rng.choice(QUEUES),
                disposition="done",
                satisfaction=rng.randint(1, 5) if graded else None,
                satisfaction_kind=rng.choice(["caller", "agent"]) if graded else None,
                offer_outcomes=[{"sku": s, "outcome": rng.choice(OUTCOMES)} for s in skus],
                created_at=at,
            )
        )
    return found


def calls_of(interactions: list[Interaction], seed: int) -> list[Call]:
    """The calls of the wrap-ups that name one, but for one in ten (purged)."""
    rng = random.Random(seed)
    ids = sorted({i.call_id for i in interactions if i.call_id is not None})
    return [
        Call(id=cid, source="generic", state="ended", queue=rng.choice(QUEUES))
        for cid in ids
        if rng.random() >= 0.1
    ]


async def seed(engine: AsyncEngine, first: datetime, last: datetime, count: int, n: int) -> None:
    found = wrap_ups(first, last, count, n)
    async with AsyncSession(engine) as session:
        session.add_all([*found, *calls_of(found, n)])
        await session.commit()


async def both_ways(
    engine: AsyncEngine, period: reports.Period, rolled_to: date
) -> list[tuple[Any, Any]]:
    """Each report (every by, scope and kind) from the wrap-ups and from the rollup."""
    pairs = []
    async with AsyncSession(engine) as session:
        for lanes in LANES:
            for by in ("product", "agent"):
                raw = await reports.offers_report(session, period, by, lanes)
                rolled = await reports.offers_report(session, period, by, lanes, rolled_to)
                pairs.append((raw, rolled))
            for sby in ("queue", "agent"):
                for kind in (None, "caller", "agent"):
                    raw = await reports.satisfaction_report(session, period, sby, lanes, kind)
                    rolled = await reports.satisfaction_report(
                        session, period, sby, lanes, kind, rolled_to
                    )
                    pairs.append((raw, rolled))
    return pairs


@pytest.fixture
async def shop(clean_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Wrap-ups from 20 January to today (10 April 2026), then rolled up in London."""
    async with AsyncSession(clean_engine) as session:
        session.add_all([Product(sku="P1", name="Red mug"), Product(sku="P2", name="Teapot")])
        await session.commit()
    await seed(clean_engine, datetime(2026, 1, 20, tzinfo=UTC), NOW, 400, 1)
    await seed(clean_engine, NOW - timedelta(hours=12), NOW, 20, 4)  # today, local
    done = await rollup.ensure_rolled_up(clean_engine, LONDON, NOW)
    assert done is not None and (done.first, done.rolled_to) == (date(2026, 1, 20), NOW.date())
    yield clean_engine


PERIODS = [
    (None, None),  # the last twelve months (default)
    (date(2026, 2, 1), date(2026, 3, 31)),  # whole months only
    (date(2026, 1, 25), date(2026, 4, 10)),  # mid-month start, ends today
    (date(2026, 2, 14), date(2026, 4, 9)),  # ends on the last day rolled up
    (date(2026, 3, 31), date(2026, 4, 1)),  # across a month's end, days only
    (date(2026, 4, 10), date(2026, 4, 30)),  # today and after: nothing rolled up read
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
async def test_the_rollup_and_today_answer_as_the_wrap_ups_do(
    shop: AsyncEngine, start: date | None, end: date | None
) -> None:
    async with AsyncSession(shop) as session:
        rolled_to = await rollup.rolled_to(session, LONDON)
        assert rolled_to == date(2026, 4, 10)
        months = await session.scalar(
            select(func.count(func.distinct(GradeRollup.day))).where(GradeRollup.whole_month)
        )
        assert months == 3  # January, February, March
    period = reports.Period.of(start, end, LONDON, NOW)
    pairs = await both_ways(shop, period, rolled_to)
    assert any(raw for raw, _ in pairs)  # something is counted
    for raw, rolled in pairs:
        assert rolled == raw


async def test_rolling_up_again_adds_only_the_days_that_have_ended(shop: AsyncEngine) -> None:
    later = NOW + timedelta(days=1)
    await seed(shop, NOW, later, 30, 2)  # the rest of 10 April and the morning of the 11th
    assert await rollup.ensure_rolled_up(shop, LONDON, NOW) is None  # nothing new has ended
    done = await rollup.ensure_rolled_up(shop, LONDON, later)
    assert done is not None and (done.first, done.rolled_to) == (NOW.date(), later.date())
    period = reports.Period.of(date(2026, 3, 15), None, LONDON, later)
    for raw, rolled in await both_ways(shop, period, later.date()):
        assert rolled == raw


async def test_another_timezone_rolls_up_again(shop: AsyncEngine) -> None:
    async with AsyncSession(shop) as session:
        assert await rollup.rolled_to(session, "America/New_York") is None
        oldest = await session.scalar(select(func.min(Interaction.created_at)))
    assert oldest is not None
    done = await rollup.ensure_rolled_up(shop, "America/New_York", NOW)
    assert done is not None  # from the first wrap-up's day there, as if never rolled up
    assert done.first == oldest.astimezone(ZoneInfo("America/New_York")).date()
    period = reports.Period.of(date(2026, 2, 10), None, "America/New_York", NOW)
    for raw, rolled in await both_ways(shop, period, NOW.date()):
        assert rolled == raw


async def test_two_roll_ups_at_once_count_each_day_once(shop: AsyncEngine) -> None:
    async with AsyncSession(shop) as session:
        for table in (*rollup.TABLES, CallRollup):
            await session.execute(delete(table))
        await session.commit()
    done = await asyncio.gather(*(rollup.ensure_rolled_up(shop, LONDON, NOW) for _ in range(3)))
    assert sum(d is not None for d in done) == 1  # the others found it taken, or done
    period = reports.Period.of(date(2026, 1, 1), None, LONDON, NOW)
    for raw, rolled in await both_ways(shop, period, NOW.date()):
        assert rolled == raw


@pytest.fixture
async def today_floor(clean_engine: AsyncEngine, settings: Settings) -> AsyncIterator[App]:
    await add_users(clean_engine, ("root", "admin", []))
    now = utcnow()
    await seed(clean_engine, now - timedelta(days=40), now - timedelta(days=2), 60, 3)
    async for app in running(settings):
        yield app


async def test_a_wrap_up_recorded_after_the_rollup_counts_at_once(today_floor: App) -> None:
    admin = today_floor.headers("root", "admin")
    before = await today_floor.http.get("/api/reports/offers?by=agent", headers=admin)
    satisfaction = await today_floor.http.get("/api/reports/satisfaction?by=agent", headers=admin)
    assert before.status_code == satisfaction.status_code == 200
    engine = today_floor.state["engine"]
    async with AsyncSession(engine) as session:
        timezone = today_floor.state["settings"].timezone
        assert await rollup.rolled_to(session, timezone) is not None  # the request rolled up
        for table in (OfferProductRollup, OfferAgentRollup, GradeRollup):
            assert await session.scalar(select(func.count()).select_from(table))
        session.add(
            Interaction(
                agent="dora",
                queue="sales",
                disposition="done",
                satisfaction=5,
                satisfaction_kind="caller",
                offer_outcomes=[{"sku": "P1", "outcome": "accepted"}],
                created_at=utcnow(),
            )
        )
        await session.commit()
    after = await today_floor.http.get("/api/reports/offers?by=agent", headers=admin)
    assert [r for r in after.json()["rows"] if r["agent"] == "dora"] == [
        {
            "agent": "dora",
            "calls": 1,
            "offered": 1,
            "accepted": 1,
            "conversion_rate": 1.0,
            "not_offered": 0,
        }
    ]
    assert [r for r in after.json()["rows"] if r["agent"] != "dora"] == before.json()["rows"]
    graded = await today_floor.http.get("/api/reports/satisfaction?by=agent", headers=admin)
    dora = [r for r in graded.json()["rows"] if r["agent"] == "dora"]
    assert [(r["graded"], r["average"]) for r in dora] == [(1, 5.0)]
