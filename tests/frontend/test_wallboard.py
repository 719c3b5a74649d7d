"""The supervisor wallboard in a real browser: a waiting call, then its answer, live."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.frontend.conftest import (
    JANE_PHONE,
    SALES_DID,
    LiveServer,
    artifact,
    sign_in,
    wait_live,
)


async def figure(tile: Locator, label: str) -> int:
    """The number in a queue tile's stat named ``label`` (e.g. "Answered")."""
    text = await tile.locator(".stat", has_text=label).locator("dd").inner_text()
    return int(text.split()[0])


async def test_waiting_call_then_answer_update_the_board(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/supervisor", "sam")
    await wait_live(page)
    tile = page.locator('article.queue-tile[data-queue="sales"]')
    await expect(tile).to_be_visible()
    answered_before = await figure(tile, "Answered")
    await expect(page.locator('.agent[data-username="alice"]')).to_be_visible()

    call_id = f"wb-{uuid.uuid4().hex[:12]}"
    await live_server.post_event(
        call_id=call_id, kind="queued", caller=JANE_PHONE, dialed=SALES_DID
    )
    waiting = tile.locator(f'.waiting-row[data-call-id="generic:{call_id}"]')
    await expect(waiting).to_contain_text("Jane Smith", timeout=3000)
    await expect(waiting).to_contain_text("High")
    await expect(tile.locator('[data-field="waiting"]')).not_to_have_text("0")
    await expect(page.locator(".trend-summary")).not_to_contain_text("Now 0")

    await live_server.post_event(call_id=call_id, kind="offered", caller=JANE_PHONE, agent="alice")
    await expect(page.locator('.agent[data-username="alice"]')).to_contain_text("Ringing")
    await page.screenshot(path=artifact("wallboard-waiting-desktop.png"), full_page=True)
    await live_server.post_event(call_id=call_id, kind="answered", caller=JANE_PHONE, agent="alice")

    await expect(waiting).to_have_count(0, timeout=3000)
    await expect(tile.locator(".stat", has_text="Answered").locator("dd")).to_have_text(
        str(answered_before + 1)
    )
    await expect(page.locator('.agent[data-username="alice"]')).to_contain_text("On call")
    # Answered at once, so within the 20 s threshold: the gauge shows a share, not "—".
    await expect(tile.locator(".gauge-value")).to_have_text(re.compile(r"^\d+%$"))
    await expect(tile.locator(".gauge-verdict")).to_contain_text("target")
    await live_server.post_event(call_id=call_id, kind="ended", caller=JANE_PHONE, agent="alice")
    await expect(page.locator('.agent[data-username="alice"]')).to_contain_text("Wrap-up")


async def test_agents_cannot_open_the_wallboard(live_server: LiveServer, page: Page) -> None:
    await sign_in(page, live_server.url, "/supervisor", "alice")
    await expect(page.locator("#sign-in-error")).to_contain_text("not allowed")
    await expect(page.locator("#board")).to_be_hidden()


async def test_phone_layout(live_server: LiveServer, browser_context_phone: BrowserContext) -> None:
    page = await browser_context_phone.new_page()
    await sign_in(page, live_server.url, "/supervisor", "sam")
    await wait_live(page)
    await expect(page.locator('article.queue-tile[data-queue="sales"]')).to_be_visible()
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
