"""The pop shows loyalty in a real browser: a programme membership with its tier, points and
source, and the computed frequency programme said to be computed."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from playwright.async_api import Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import LoyaltyMembership
from app.db import create_engine
from app.insights.models import CustomerInsight
from tests.frontend.conftest import SALES_DID, LiveServer, _add_customer, sign_in, wait_live

MEMBER_PHONE = "+441632960871"
COMPUTED_PHONE = "+441632960872"
COMPUTED = {"tier": "silver", "points": 1000, "since": "2010-11-05", "orders_12m": 2,
            "spend_12m": 1000.0, "window_end": "2011-12-09T12:51:00+00:00"}  # fmt: skip


async def _seed(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            member = await _add_customer(
                session, name="Lou Member", phone=MEMBER_PHONE, external_ref=f"L-{uuid.uuid4()}"
            )
            session.add(
                LoyaltyMembership(
                    customer_id=member, programme="Tea Club", tier="gold", points=1250,
                    since=datetime(2024, 3, 1, tzinfo=UTC), source="club",
                    as_of=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
                )
            )  # fmt: skip
            computed = await _add_customer(
                session, name="Cal Computed", phone=COMPUTED_PHONE, external_ref=f"L-{uuid.uuid4()}"
            )
            session.add(
                CustomerInsight(
                    customer_id=computed, value_tier="medium", segment="loyal", stage="expansion",
                    clv_historic=Decimal("1000"), clv_forecast=Decimal("100"), churn_risk=0.1,
                    details={"loyalty": COMPUTED},
                )
            )  # fmt: skip
            await session.commit()
    finally:
        await engine.dispose()


async def _pop(server: LiveServer, page: Page, caller: str, name: str) -> tuple[str, Locator]:
    call_id = f"ui-{uuid.uuid4().hex[:12]}"
    await server.post_event(call_id=call_id, kind="queued", caller=caller, dialed=SALES_DID)
    await server.post_event(call_id=call_id, kind="offered", caller=caller, agent="alice")
    card = page.locator(f'article.pop[data-call-id="generic:{call_id}"]')
    await expect(card.get_by_role("heading", name=name)).to_be_visible(timeout=10000)
    return call_id, card


async def test_the_pop_shows_the_loyalty_tier(live_server: LiveServer, page: Page) -> None:
    await _seed(live_server.database_url)
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    calls = []
    try:
        call_id, card = await _pop(live_server, page, MEMBER_PHONE, "Lou Member")
        calls.append((call_id, MEMBER_PHONE))
        badge = card.locator(".badges .badge-loyalty")
        await expect(badge).to_contain_text("Tea Club · Gold · 1,250 points · member since")
        await expect(badge.locator(".provenance")).to_contain_text("from club")
        await expect(badge).not_to_have_class(re.compile(r"\bloyalty-computed\b"))

        call_id, card = await _pop(live_server, page, COMPUTED_PHONE, "Cal Computed")
        calls.append((call_id, COMPUTED_PHONE))
        badge = card.locator(".badges .badge-loyalty")
        await expect(badge).to_have_text("♥ Frequency programme (computed) · Silver · 1,000 points")
        await expect(badge).to_have_class(re.compile(r"\bloyalty-computed\b"))
        await expect(badge).to_have_attribute(
            "title",
            "Computed from the last 12 months' purchases, not a programme the customer joined.",
        )
        assert page.script_errors == []  # type: ignore[attr-defined]
    finally:
        for call_id, caller in calls:
            await live_server.post_event(call_id=call_id, kind="ended", caller=caller)
