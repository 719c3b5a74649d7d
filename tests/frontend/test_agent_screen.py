"""The agent screen in a real browser against a real server: pop, chooser, wrap-up, reconnect."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.frontend.conftest import (
    JANE_PHONE,
    PHONE,
    SALES_DID,
    SHARED_PHONE,
    UNKNOWN_PHONE,
    LiveServer,
    artifact,
    sign_in,
    wait_live,
)

OPEN_CALLS: list[tuple[str, Any]] = []


def new_call_id() -> str:
    return f"ui-{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
async def hang_up_after_test(live_server: LiveServer) -> AsyncIterator[None]:
    """End every call a test rang, so the next test's screen replays none of them."""
    yield
    while OPEN_CALLS:
        call_id, caller = OPEN_CALLS.pop()
        await live_server.post_event(call_id=call_id, kind="ended", caller=caller)


def pop_card(page: Page, call_id: str) -> Any:
    return page.locator(f'article.pop[data-call-id="generic:{call_id}"]')


async def ring(server: LiveServer, call_id: str, caller: Any, *agents: str) -> None:
    """The call joins the sales queue, then rings each agent (ring-all when several)."""
    OPEN_CALLS.append((call_id, caller))
    await server.post_event(call_id=call_id, kind="queued", caller=caller, dialed=SALES_DID)
    for agent in agents:
        await server.post_event(call_id=call_id, kind="offered", caller=caller, agent=agent)


async def test_pop_with_name_and_balance_within_one_second(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = new_call_id()
    OPEN_CALLS.append((call_id, JANE_PHONE))
    await live_server.post_event(
        call_id=call_id, kind="queued", caller=JANE_PHONE, dialed=SALES_DID
    )

    started = time.monotonic()
    await live_server.post_event(call_id=call_id, kind="offered", caller=JANE_PHONE, agent="alice")
    card = pop_card(page, call_id)
    await expect(card.get_by_role("heading", name="Jane Smith")).to_be_visible(timeout=1000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"pop took {elapsed:.3f} s"

    await expect(card.locator(".figure-balance dd")).to_have_text("£1,234.50")
    await expect(card.locator(".call-state")).to_contain_text("Ringing")
    await expect(card.locator(".badges")).to_contain_text("High value")
    await expect(card.locator(".needs")).to_contain_text("bought 6 times, last 3 weeks ago")
    await expect(card.locator(".orders")).to_contain_text("Return")
    await expect(card.locator(".touches")).to_contain_text("Asked about the delivery date.")
    await expect(page.locator("#announcer")).to_have_text("Call from Jane Smith, high value")
    await page.screenshot(path=artifact("agent-pop-desktop.png"), full_page=True)
    assert page.script_errors == []  # type: ignore[attr-defined]


async def test_choose_one_of_several_matches(live_server: LiveServer, page: Page) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = new_call_id()
    await ring(live_server, call_id, SHARED_PHONE, "alice")

    card = pop_card(page, call_id)
    chooser = card.locator(".chooser")
    await expect(chooser).to_contain_text("Tom Baker")
    await expect(chooser).to_contain_text("Sarah Baker")
    await chooser.get_by_role("button", name="Sarah Baker").click()

    await expect(card.locator(".customer-name")).to_have_text("Sarah Baker", timeout=3000)
    await expect(card.locator(".figure-balance dd")).to_have_text("£42.00")


async def test_wrapup_is_saved_and_shows_in_touch_points(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = new_call_id()
    await ring(live_server, call_id, JANE_PHONE, "alice")
    card = pop_card(page, call_id)
    await expect(card.get_by_role("heading", name="Jane Smith")).to_be_visible()

    await live_server.post_event(call_id=call_id, kind="answered", caller=JANE_PHONE, agent="alice")
    await expect(card.locator(".call-state")).to_contain_text("In call")
    await live_server.post_event(call_id=call_id, kind="ended", caller=JANE_PHONE, agent="alice")
    await expect(card.locator(".call-state")).to_contain_text("Call ended")

    form = card.locator("form.wrapup-form")
    await form.get_by_label("Disposition").select_option("sale")
    notes = f"Wants the red alarm clock {uuid.uuid4().hex[:6]}"
    await form.get_by_label("Notes").fill(notes)
    await form.get_by_text("Very satisfied").click()
    await (
        form.get_by_role("radiogroup", name="Outcome for Alarm Clock Bakelike Red")
        .get_by_label("Accepted")
        .check()
    )
    await form.get_by_role("button", name="Save wrap-up").click()
    await expect(card.locator(".wrapup-done")).to_contain_text("Wrap-up saved")

    profile = await live_server.get(f"/api/customers/{live_server.seeded.jane}/profile", "alice")
    touch = next(t for t in profile["interactions"] if t["notes"] == notes)
    assert touch["satisfaction"] == 5
    assert touch["disposition"] == "sale"
    assert {"sku": "T22727", "outcome": "accepted"} in touch["offer_outcomes"]

    # Her next call pops with that touch point on the card.
    next_call = new_call_id()
    await ring(live_server, next_call, JANE_PHONE, "alice")
    touches = pop_card(page, next_call).locator(".touches")
    await expect(touches).to_contain_text(notes)
    await expect(touches).to_contain_text("Very satisfied")
    await expect(page.locator("#today-list")).to_contain_text("Jane Smith")


async def test_pop_withdrawn_when_another_agent_answers(
    live_server: LiveServer, browser_pages: tuple[Page, Page]
) -> None:
    alice, bob = browser_pages
    await sign_in(alice, live_server.url, "/agent", "alice")
    await sign_in(bob, live_server.url, "/agent", "bob")
    await wait_live(alice)
    await wait_live(bob)
    call_id = new_call_id()
    await ring(live_server, call_id, JANE_PHONE, "alice", "bob")
    await expect(pop_card(alice, call_id).locator(".customer-name")).to_have_text("Jane Smith")
    await expect(pop_card(bob, call_id).locator(".customer-name")).to_have_text("Jane Smith")

    await live_server.post_event(call_id=call_id, kind="answered", caller=JANE_PHONE, agent="bob")
    await expect(pop_card(alice, call_id).locator(".call-state")).to_contain_text(
        "Answered by another agent"
    )
    await expect(pop_card(bob, call_id).locator(".call-state")).to_contain_text("In call")


async def test_notes_follow_a_transfer_and_the_transferring_agent_wraps_up(
    live_server: LiveServer, browser_pages: tuple[Page, Page]
) -> None:
    alice, bob = browser_pages
    await sign_in(alice, live_server.url, "/agent", "alice")
    await sign_in(bob, live_server.url, "/agent", "bob")
    await wait_live(alice)
    await wait_live(bob)
    call_id = new_call_id()
    await ring(live_server, call_id, JANE_PHONE, "alice")
    await live_server.post_event(call_id=call_id, kind="answered", caller=JANE_PHONE, agent="alice")
    hers = pop_card(alice, call_id)
    await expect(hers.locator(".call-state")).to_contain_text("In call")
    # Notes typed during the call are saved on the server as she types.
    notes = f"Billing query {uuid.uuid4().hex[:6]}"
    form = hers.locator("form.wrapup-form")
    await form.get_by_label("Disposition").select_option("sale")
    await form.get_by_label("Notes").fill(notes)
    await expect(form.locator(".draft-note")).to_contain_text("Draft saved")

    await live_server.post_event(
        call_id=call_id, kind="transferred", caller=JANE_PHONE, attributes={"transfer_to": "bob"}
    )
    # bob has the call, and alice's notes in his wrap-up, saying whose they are.
    his = pop_card(bob, call_id)
    await expect(his.locator(".call-state")).to_contain_text("In call")
    await expect(his.get_by_label("Notes")).to_have_value(notes)
    await expect(his.locator(".draft-note")).to_contain_text("Notes so far from alice")
    # alice's card stays, with her leg's wrap-up, which she saves.
    await expect(hers.locator(".call-state")).to_contain_text("Transferred away")
    await expect(form.get_by_label("Notes")).to_have_value(notes)
    await form.get_by_role("button", name="Save wrap-up").click()
    await expect(hers.locator(".wrapup-done")).to_contain_text("Wrap-up saved")
    await expect(his.locator("form.wrapup-form")).to_be_visible()  # bob's leg is still his


async def test_unknown_caller_quick_create_and_withheld(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    withheld = new_call_id()
    await ring(live_server, withheld, {"raw": "anonymous", "withheld": True}, "alice")
    await expect(pop_card(page, withheld).locator(".customer-name")).to_contain_text(
        "Number withheld"
    )

    call_id = new_call_id()
    await ring(live_server, call_id, UNKNOWN_PHONE, "alice")
    card = pop_card(page, call_id)
    await expect(card.locator(".customer-name")).to_have_text("New caller")
    await expect(card).to_contain_text("United Kingdom")
    await card.get_by_label("Name").fill("Nora Newcomer")
    await card.get_by_role("button", name="Create customer").click()
    await expect(card.locator(".customer-name")).to_have_text("Nora Newcomer", timeout=3000)


async def test_quick_create_with_a_customers_number_offers_to_link_them(
    live_server: LiveServer, page: Page
) -> None:
    """The number typed is Jane's: nothing is created, the form names her, and *This is the
    caller* links the call to her."""
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = new_call_id()
    await ring(live_server, call_id, "+441632960557", "alice")
    card = pop_card(page, call_id)
    await expect(card.locator(".customer-name")).to_have_text("New caller")
    await card.get_by_label("Name").fill("Jane Again")
    await card.get_by_label("Phone", exact=True).fill("020 7946 0123")
    await card.get_by_role("button", name="Create customer").click()
    taken = card.locator(".number-taken")
    await expect(card.locator(".quick-create [role=status]")).to_contain_text(
        "already a customer's"
    )
    await expect(taken).to_contain_text("Jane Smith")
    await expect(taken.get_by_role("button", name="No: create Jane Again")).to_be_visible()
    await taken.get_by_role("button", name="This is the caller").click()
    await expect(card.locator(".customer-name")).to_have_text("Jane Smith", timeout=3000)
    found = await live_server.get("/api/customers/search?q=jane%20again", "alice")
    assert found["customers"] == []
    assert page.script_errors == []  # type: ignore[attr-defined]


async def test_pop_comes_back_after_the_connection_is_cut(
    live_server: LiveServer, context: BrowserContext, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)

    # The network goes away; a call rings meanwhile; the screen gets it when it is back.
    await context.set_offline(True)
    await expect(page.locator("#offline-banner")).to_be_visible()
    await expect(page.locator("#offline-banner")).to_contain_text("offline")
    call_id = new_call_id()
    await ring(live_server, call_id, JANE_PHONE, "alice")
    await context.set_offline(False)
    card = pop_card(page, call_id)
    await expect(card.locator(".customer-name")).to_have_text("Jane Smith", timeout=10000)
    await expect(page.locator("#offline-banner")).to_be_hidden()

    # The server itself restarts: the banner says so, and the live pop is replayed, once.
    live_server.process.stop()
    await expect(page.locator("#offline-banner")).to_be_visible(timeout=5000)
    await page.screenshot(path=artifact("agent-offline-desktop.png"))
    live_server.process.start()
    await wait_live(page, timeout_ms=20000)
    await expect(page.locator("#offline-banner")).to_be_hidden()
    await expect(card).to_have_count(1)
    await live_server.post_event(call_id=call_id, kind="answered", caller=JANE_PHONE, agent="alice")
    await expect(card.locator(".call-state")).to_contain_text("In call")


async def test_phone_layout(live_server: LiveServer, browser_context_phone: BrowserContext) -> None:
    page = await browser_context_phone.new_page()
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = new_call_id()
    await ring(live_server, call_id, JANE_PHONE, "alice")
    card = pop_card(page, call_id)
    await expect(card.locator(".customer-name")).to_have_text("Jane Smith")
    # Nothing wider than the phone: no sideways scrolling.
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert (await card.bounding_box() or {"width": 999})["width"] <= PHONE["width"]
    await page.screenshot(path=artifact("agent-pop-phone.png"), full_page=True)


async def test_sign_in_and_choose_with_the_keyboard_only(
    live_server: LiveServer, page: Page
) -> None:
    await page.goto(live_server.url + "/agent")
    for _ in range(10):
        if await page.evaluate("document.activeElement && document.activeElement.id") == "username":
            break
        await page.keyboard.press("Tab")
    await page.keyboard.type("alice")
    await page.keyboard.press("Tab")
    await page.keyboard.type("demo")
    await page.keyboard.press("Enter")
    await wait_live(page)

    call_id = new_call_id()
    await ring(live_server, call_id, SHARED_PHONE, "alice")
    card = pop_card(page, call_id)
    await expect(card.locator(".chooser")).to_contain_text("Tom Baker")
    focused_js = """() => {
        const el = document.activeElement;
        const card = el && el.closest("article");
        const name = el && el.matches(".candidate") && el.querySelector(".candidate-name");
        return card && name ? card.dataset.callId + "|" + name.textContent : "";
    }"""
    for _ in range(40):
        if (await page.evaluate(focused_js)).startswith(f"generic:{call_id}|Tom Baker"):
            break
        await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(card.locator(".customer-name")).to_have_text("Tom Baker", timeout=3000)


# Headless Chromium shows no desktop notifications: record what the page asks for instead,
# with the tab reported as hidden (the case the notification exists for).
RECORD_NOTIFICATIONS = """
window.__notifications = [];
class RecordingNotification {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notifications.push({ title, ...options }); }
  close() {}
}
window.Notification = RecordingNotification;
Object.defineProperty(document, "hidden", { get: () => true });
"""


async def test_desktop_notification_when_the_tab_is_hidden(
    live_server: LiveServer, page: Page
) -> None:
    await page.add_init_script(RECORD_NOTIFICATIONS)
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = new_call_id()
    await ring(live_server, call_id, JANE_PHONE, "alice")
    await expect(pop_card(page, call_id).locator(".customer-name")).to_have_text("Jane Smith")
    notes = await page.evaluate("window.__notifications")
    assert [n["title"] for n in notes] == ["Call from Jane Smith, high value"]
    assert "£1,234.50" in notes[0]["body"]
    assert notes[0]["tag"] == f"screenpop-generic:{call_id}"


async def test_a_chat_pops_the_customer_with_its_channel_and_no_phone_number(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    chat = new_call_id()
    try:
        contact = {"external_id": "T-JANE"}  # Jane Smith's id in the imported data
        for kind in ("queued", "offered"):
            await live_server.post_contact("chat", call_id=chat, kind=kind, queue="sales",
                                           agent="alice", contact=contact)  # fmt: skip
        card = page.locator(f'article.pop[data-call-id="chat:{chat}"]')
        await expect(card.get_by_role("heading", name="Jane Smith")).to_be_visible(timeout=3000)
        await expect(card.locator(".pop-channel")).to_have_text("Chat")
        await expect(card.locator(".pop-number")).to_have_count(0)
        await expect(card.locator(".figure-balance dd")).to_have_text("£1,234.50")
        assert page.script_errors == []  # type: ignore[attr-defined]
    finally:
        await live_server.post_contact("chat", call_id=chat, kind="ended")
