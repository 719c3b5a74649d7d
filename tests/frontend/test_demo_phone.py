"""The demo in a real browser: a newcomer signs in as alice on a demo-mode server, gets a pop,
answers and hangs up on the demo phone, and the call ends into wrap-up; an offer left ringing
rings out to another agent. Each test runs its own demo server (its ring timeout differs)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import demo, migrate
from app.calls.models import CallEventRecord
from app.db import create_engine
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, make_settings
from tests.frontend.conftest import (
    DESKTOP,
    LiveServer,
    require_browser,
    seed_known_customers,
    sign_in,
    wait_live,
)
from tests.frontend.test_accessibility import AXE, violations
from tests.support.databases import drop_database, new_database
from tests.support.server import ServerProcess, free_port

WAIT_MS = 60000  # generous: a loaded machine; a missing pop still fails


@asynccontextmanager
async def demo_mode_server(
    directory: Path, *, ring_timeout_s: float, speed: float
) -> AsyncIterator[LiveServer]:
    """``serve --demo`` as ``make run`` starts it, on a small database: the demo users and
    queues (``demo.seed``) and a few hand-made customers instead of the shipped data."""
    require_browser()
    url = await new_database("sqlite", directory)
    await migrate.upgrade_async(url)
    seeded = await seed_known_customers(url)
    await demo.seed(make_settings(url))  # customers exist: users and queues only
    port = free_port()
    process = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": url,
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "SCREENPOP_LOG_JSON": "0",
            "SCREENPOP_DEMO": "1",
            "SCREENPOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SCREENPOP_DEMO_RING_TIMEOUT_S": str(ring_timeout_s),
            "SCREENPOP_DEMO_SPEED": str(speed),
        },
        port=port,
    )
    await asyncio.to_thread(process.start)
    try:
        yield LiveServer(process=process, database_url=url, seeded=seeded)
    finally:
        await asyncio.to_thread(process.stop)
        await drop_database(url)


@asynccontextmanager
async def new_page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a browser context of its own; its script errors kept in ``script_errors``."""
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.script_errors = errors  # type: ignore[attr-defined]
        yield page
    finally:
        await context.close()


async def journal(database_url: str) -> list[dict[str, Any]]:
    """The normalised events the demo's PBX posted, in the order the service took them."""
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            query = select(CallEventRecord.event).order_by(CallEventRecord.id)
            return [dict(e) for e in (await session.execute(query)).scalars()]
    finally:
        await engine.dispose()


async def test_newcomer_answers_and_hangs_up_on_the_demo_phone(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        demo_mode_server(tmp_path, ring_timeout_s=60, speed=5) as server,
        new_page(browser) as page,
    ):
        await sign_in(page, server.url, "/agent", "alice")
        await wait_live(page)
        phone = page.get_by_role("region", name="Demo phone")
        await expect(phone).to_be_visible()
        answer = phone.get_by_role("button", name="Answer")
        # Signed in and available: the next call rings alice (people before simulated agents).
        await answer.wait_for(timeout=WAIT_MS)
        call = (await server.get("/api/demo/phone", "alice"))["call"]
        card = page.locator(f'article.pop[data-call-id="{call["id"]}"]')
        await expect(card).to_have_class(re.compile(r"\bpop-state-ringing\b"))
        await expect(phone.get_by_role("status")).to_contain_text("Ringing")
        if AXE.exists():  # without axe-core, test_accessibility.py says so (skip or fail)
            assert await violations(page) == [], "the desk with the demo phone ringing"

        await answer.click()
        await expect(card).to_have_class(re.compile(r"\bpop-state-answered\b"))
        hang_up = phone.get_by_role("button", name="Hang up")
        await expect(phone.get_by_role("status")).to_contain_text("In call with")
        await hang_up.click()

        await expect(card).to_have_class(re.compile(r"\bpop-state-ended\b"))
        await expect(card.locator("form.wrapup-form")).to_be_visible()
        await expect(phone.get_by_role("status")).to_have_text("No call on your phone.")
        await expect(phone.get_by_role("button")).to_have_count(0)
        detail = await server.get(f"/api/calls/{call['id']}", "sam")
        assert (detail["state"], detail["agent"]) == ("ended", "alice")
        kinds = [e["raw"]["kind"] for e in detail["events"]]
        assert kinds[-2:] == ["answered", "ended"], kinds
        board = await server.get("/api/queues", "sam")
        assert {a["username"]: a["state"] for a in board["agents"]}["alice"] == "wrap_up"
        assert page.script_errors == []  # type: ignore[attr-defined]


async def test_an_offer_nobody_answers_rings_out_to_another_agent(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        demo_mode_server(tmp_path, ring_timeout_s=1, speed=2) as server,
        new_page(browser) as page,
    ):
        await sign_in(page, server.url, "/agent", "alice")
        await wait_live(page)
        first = page.locator("article.pop").first
        await first.wait_for(timeout=WAIT_MS)
        call_id = await first.get_attribute("data-call-id")
        assert call_id is not None
        # alice does nothing: after the ring timeout her card says the offer ended.
        card = page.locator(f'article.pop[data-call-id="{call_id}"]')
        await expect(card).to_contain_text("Offer ended: not answered here", timeout=WAIT_MS)

        async def passed_on() -> set[str]:
            """Agents offered one of alice's missed calls after her."""
            missed: set[str] = set()
            others: set[str] = set()
            for event in await journal(server.database_url):
                attributes = event.get("attributes") or {}
                if event["kind"] == "queued" and attributes.get("offer_withdrawn"):
                    if event["agent"] == "alice":
                        missed.add(event["call_id"])
                elif event["kind"] == "offered" and event["call_id"] in missed:
                    others.add(str(event["agent"]))
            return others

        async with asyncio.timeout(WAIT_MS / 1000):
            while True:
                others = await passed_on()
                if others:
                    break
                await asyncio.sleep(0.5)
        assert others and "alice" not in others and all(a.startswith("sim-") for a in others)
        events = await journal(server.database_url)
        assert not [e for e in events if e["kind"] == "answered" and e["agent"] == "alice"]
        assert page.script_errors == []  # type: ignore[attr-defined]
