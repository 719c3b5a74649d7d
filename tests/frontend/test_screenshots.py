"""Screenshots of both screens with the shipped demo data, desktop and phone width.

Saved to test-artifacts/; with SCREENPOP_UPDATE_SCREENSHOTS=1 also copied to docs/screenshots/
(the README shows those).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer, CustomerPhone, Order
from app.db import create_engine
from tests.frontend.conftest import (
    DESKTOP,
    PHONE,
    SALES_DID,
    UNKNOWN_PHONE,
    LiveServer,
    artifact,
    publish_screenshots,
    running_server,
    sign_in,
    wait_live,
)

SUPPORT_DID = "+448081570002"
SHOTS = [
    "agent-desktop.png",
    "agent-phone.png",
    "agent-customer.png",
    "wallboard-desktop.png",
    "wallboard-phone.png",
    "wallboard-tv.png",
]
TV = {"width": 1920, "height": 1080}


@pytest.fixture(scope="module")
async def demo_server(
    tmp_path_factory: pytest.TempPathFactory, demo_template: Path
) -> AsyncIterator[LiveServer]:
    """A server of its own: the figures on the screenshots are only this test's calls."""
    async with running_server(tmp_path_factory, demo_template) as server:
        yield server


async def demo_callers(database_url: str, count: int) -> list[tuple[str, str]]:
    """(name, e164) of the demo customers with the most orders: the richest profiles."""
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            orders = func.count(Order.id)
            rows = await session.execute(
                select(Customer.name, CustomerPhone.e164)
                .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                .join(Order, Order.customer_id == Customer.id)
                .where(Customer.external_ref.not_like("T-%"), CustomerPhone.e164.is_not(None))
                .group_by(Customer.id, Customer.name, CustomerPhone.e164)
                .order_by(orders.desc(), Customer.id)
                .limit(count)
            )
            return [(str(name), str(e164)) for name, e164 in rows]
    finally:
        await engine.dispose()


async def open_screen(
    browser: Browser, server: LiveServer, path: str, user: str, viewport: dict[str, int]
) -> Page:
    context = await browser.new_context(viewport=viewport, device_scale_factor=1)
    page = await context.new_page()
    await sign_in(page, server.url, path, user)
    await wait_live(page)
    return page


async def test_screenshots_with_demo_data(demo_server: LiveServer, browser: Browser) -> None:
    live_server = demo_server
    callers = await demo_callers(live_server.database_url, 5)
    assert len(callers) == 5, "the demo data should have been seeded"
    (star_name, star), (b_name, b_phone), (c_name, c_phone), _, (_, e_phone) = callers
    ids = {key: f"shot-{key}-{uuid.uuid4().hex[:8]}" for key in "abcdef"}
    post = live_server.post_event

    pages = {
        "agent-desktop": await open_screen(browser, live_server, "/agent", "alice", DESKTOP),
        "agent-phone": await open_screen(browser, live_server, "/agent", "alice", PHONE),
        "wallboard-desktop": await open_screen(browser, live_server, "/supervisor", "sam", DESKTOP),
        "wallboard-phone": await open_screen(browser, live_server, "/supervisor", "sam", PHONE),
        "wallboard-tv": await open_screen(browser, live_server, "/supervisor?tv=1", "sam", TV),
    }
    try:
        # Earlier today: bob took a call from the star customer and wrapped it up, so the
        # tiles have answers and her card has a touch point.
        await post(call_id=ids["a"], kind="queued", caller=star, dialed=SUPPORT_DID)
        await post(call_id=ids["a"], kind="offered", caller=star, agent="bob")
        await post(call_id=ids["a"], kind="answered", caller=star, agent="bob")
        await asyncio.sleep(1.5)
        await post(call_id=ids["a"], kind="ended", caller=star, agent="bob")
        await live_server.post_json(
            f"/api/calls/generic:{ids['a']}/wrapup",
            "bob",
            {
                "disposition": "resolved",
                "notes": "Checked the delivery of the cake stands; all fine.",
                "satisfaction": 5,
            },
        )
        # Now: callers join the queues a few seconds apart (the trend chart samples every
        # 5 s), bob takes one, alice's phone rings.
        await post(call_id=ids["b"], kind="queued", caller=b_phone, dialed=SALES_DID)
        await asyncio.sleep(5.5)
        await post(call_id=ids["c"], kind="queued", caller=c_phone, dialed=SUPPORT_DID)
        await asyncio.sleep(5.5)
        await post(call_id=ids["d"], kind="queued", caller=UNKNOWN_PHONE, dialed=SALES_DID)
        await post(call_id=ids["e"], kind="queued", caller=e_phone, dialed=SUPPORT_DID)
        await asyncio.sleep(5.5)
        await post(call_id=ids["e"], kind="offered", caller=e_phone, agent="bob")
        await post(call_id=ids["e"], kind="answered", caller=e_phone, agent="bob")
        await post(call_id=ids["f"], kind="queued", caller=star, dialed=SALES_DID)
        await post(call_id=ids["f"], kind="offered", caller=star, agent="alice")
        await post(call_id=ids["f"], kind="answered", caller=star, agent="alice")

        for key in ("agent-desktop", "agent-phone"):
            card = pages[key].locator(f'article.pop[data-call-id="generic:{ids["f"]}"]')
            await expect(card.locator(".customer-name")).to_have_text(star_name)
            await expect(card.locator(".figure-balance dd")).to_contain_text("£")
            await expect(card.locator(".touches")).to_contain_text("cake stands")
            await expect(card.locator("form.wrapup-form")).to_be_visible()
        # On a phone the wrap-up is one tap away from wherever the agent has scrolled.
        await expect(
            pages["agent-phone"].get_by_role("link", name="Go to wrap-up")
        ).to_be_in_viewport()
        desk = pages["agent-desktop"]
        await desk.locator("form.wrapup-form textarea").fill("Asked about the cake stand colours.")
        await expect(desk.locator(".draft-note[data-saved=true]")).to_be_visible()
        board = pages["wallboard-desktop"]
        await expect(board.locator(".waiting-row")).to_have_count(3)
        await expect(board.locator("#queues")).to_contain_text(b_name)
        await expect(board.locator("#queues")).to_contain_text(c_name)
        await expect(board.locator('.agent[data-username="bob"]')).to_contain_text("On call")
        await pages["wallboard-phone"].locator(".waiting-row").nth(2).wait_for()
        await pages["wallboard-tv"].locator(".waiting-row").nth(2).wait_for()

        shots = (
            ("agent-desktop", False),
            ("agent-phone", False),
            ("wallboard-desktop", True),
            ("wallboard-phone", False),
            ("wallboard-tv", False),
        )
        for key, full_page in shots:
            await pages[key].evaluate("window.scrollTo(0, 0)")
            await pages[key].screenshot(
                path=artifact(f"{key}.png"), full_page=full_page, animations="disabled"
            )
        # The desk: the star customer found by name, with the timeline.
        await desk.get_by_role("searchbox", name="Find a customer").fill(star_name)
        await (
            desk.locator("#finder .search-result").first.get_by_role("button", name="Open").click()
        )
        await expect(desk.locator(".customer-card .timeline-item").first).to_be_visible()
        await desk.evaluate("window.scrollTo(0, 0)")
        await desk.screenshot(path=artifact("agent-customer.png"), animations="disabled")
        publish_screenshots(SHOTS)
    finally:
        for key, call_id in ids.items():
            caller: Any = {"b": b_phone, "c": c_phone, "d": UNKNOWN_PHONE, "e": e_phone}.get(
                key, star
            )
            await post(call_id=call_id, kind="ended", caller=caller)
        for page in pages.values():
            await page.context.close()
