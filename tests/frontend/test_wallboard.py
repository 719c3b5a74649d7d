"""The supervisor wallboard in a real browser: a waiting call, then its answer, live."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.frontend.conftest import (
    JANE_PHONE,
    SALES_DID,
    LiveServer,
    artifact,
    sign_in,
    wait_live,
)
from tests.frontend.test_accessibility import AXE, violations

TV = {"width": 1920, "height": 1080}


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


async def test_tv_mode_fills_a_1920_screen_with_the_floor_figures_first(
    live_server: LiveServer, browser: Browser
) -> None:
    context = await browser.new_context(viewport=TV)
    try:
        page = await context.new_page()
        await page.goto(live_server.url + "/supervisor?tv=1")
        await page.get_by_label("Username").fill("sam")
        await page.get_by_label("Password").fill("demo")
        await page.get_by_role("button", name="Sign in").click()
        await wait_live(page)
        headline = page.locator("#headline dt")
        await expect(headline).to_have_text(["Service level", "Waiting", "Longest wait", "Agents"])
        # The floor's figures come before the queues; pop latency only in the details view.
        first = await page.locator("#headline").bounding_box()
        queues = await page.locator("#queues").bounding_box()
        assert first is not None and queues is not None and first["y"] < queues["y"]
        await expect(page.get_by_text("Pop p95")).to_be_hidden()
        # The board uses the width of the screen, needs no scrolling, and its labels are read
        # from afar.
        await page.screenshot(path=artifact("wallboard-tv.png"))
        board = await page.locator("#board").bounding_box()
        assert board is not None and board["width"] >= 0.95 * TV["width"]
        assert await page.evaluate("document.documentElement.scrollHeight") <= TV["height"]
        label_px = await page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#headline dt')).fontSize)"
        )
        assert label_px >= 20
        # Leaving TV mode goes back to the normal sizes; pop health is one click away.
        await page.get_by_role("button", name="Leave TV mode").click()
        smaller = await page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#headline dt')).fontSize)"
        )
        assert smaller < label_px
        await expect(page.locator("#health")).to_be_hidden()
        await page.get_by_text("Technical details").click()
        await expect(page.locator("#health")).to_contain_text("Pop p95")
    finally:
        await context.close()


async def test_a_waiting_chat_is_marked_and_counted_by_channel(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/supervisor", "sam")
    await wait_live(page)
    tile = page.locator('article.queue-tile[data-queue="sales"]')
    await expect(tile).to_be_visible()
    chat = f"wb-{uuid.uuid4().hex[:12]}"

    async def post_chat(kind: str) -> None:
        contact = {"email": "nobody@example.org"}
        await live_server.post_contact("chat", call_id=chat, kind=kind, queue="sales",
                                       contact=contact)  # fmt: skip

    by_channel = tile.locator('[data-field="channels"] dd')
    # Other tests of the session may have sent chats to sales: count from what is shown.
    shown = await by_channel.all_inner_texts()
    chats = re.search(r"Chat (\d+)", shown[0]) if shown else None
    before = int(chats.group(1)) if chats else 0
    try:
        await post_chat("queued")
        row = tile.locator(f'.waiting-row[data-call-id="chat:{chat}"]')
        await expect(row.locator(".badge-channel")).to_have_text("Chat", timeout=3000)
        await expect(by_channel).to_contain_text(f"Chat {before + 1}")
        assert page.script_errors == []  # type: ignore[attr-defined]
        if AXE.exists():
            assert await violations(page) == []
    finally:
        await post_chat("abandoned")


async def test_an_unrouted_call_and_an_unknown_agent_are_shown_as_such(
    live_server: LiveServer, page: Page
) -> None:
    """A call that names no queue gets the unrouted tile (its unknown caller's number in
    national format, E.164 on hover); an agent no user is rings visibly as an unknown agent.
    Runs last in this module: the unrouted tile stays for the rest of the day."""
    await sign_in(page, live_server.url, "/supervisor", "sam")
    await wait_live(page)
    lost = f"wb-{uuid.uuid4().hex[:12]}"
    rung = f"wb-{uuid.uuid4().hex[:12]}"
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    caller = "+441632960556"  # a drama range no customer of the tests or the demo has
    try:
        await live_server.post_event(call_id=lost, kind="queued", caller=caller)
        tile = page.locator('article.queue-tile[data-queue="unrouted"]')
        await expect(tile.locator(".queue-name")).to_have_text("Unrouted calls", timeout=3000)
        row = tile.locator(f'.waiting-row[data-call-id="generic:{lost}"]')
        number = row.locator(".waiting-phone")
        await expect(number).to_have_text("01632 960556")
        await expect(number).to_have_attribute("title", re.compile(r"\+441632960556"))

        await live_server.post_event(
            call_id=rung, kind="queued", caller=JANE_PHONE, dialed=SALES_DID
        )
        await live_server.post_event(call_id=rung, kind="offered", caller=JANE_PHONE, agent=ghost)
        card = page.locator(f'.agent[data-username="{ghost}"]')
        await expect(card).to_have_attribute("data-known", "false", timeout=3000)
        await expect(card).to_have_class(re.compile(r"\bagent-unknown\b"))
        await expect(card).to_contain_text("Unknown agent")
        await expect(page.locator('.agent[data-username="alice"]')).not_to_contain_text(
            "Unknown agent"
        )
        assert page.script_errors == []  # type: ignore[attr-defined]
        if AXE.exists():  # the new tile and card keep their contrast (npm ci installs axe)
            assert await violations(page) == []
    finally:
        await live_server.post_event(call_id=lost, kind="ended", caller=caller)
        await live_server.post_event(call_id=rung, kind="ended", caller=JANE_PHONE)
