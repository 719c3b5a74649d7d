"""The agent's desk in a real browser: search and open a customer with their timeline, link a
withheld call to the customer found, a wrap-up that survives a reload, a pop read in two
seconds, shortcuts, one sign-in for every tab, dark mode and French."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Account, Customer, CustomerPhone
from app.db import create_engine
from app.insights.models import NextNeed
from app.queues import dispositions
from tests.frontend.conftest import (
    DESKTOP,
    JANE_PHONE,
    SALES_DID,
    LiveServer,
    artifact,
    sign_in,
    wait_live,
)

OVER_LIMIT_PHONE = "+441632960777"  # 01632 960xxx: a drama range the demo does not use
OPEN_CALLS: list[tuple[str, Any]] = []


@pytest.fixture(autouse=True)
async def hang_up_after_test(live_server: LiveServer) -> AsyncIterator[None]:
    yield
    while OPEN_CALLS:
        call_id, caller = OPEN_CALLS.pop()
        await live_server.post_event(call_id=call_id, kind="ended", caller=caller)


@pytest.fixture(scope="module")
async def desk_data(live_server: LiveServer) -> dict[str, int]:
    """A customer over their credit limit without marketing permission, and the sales queue's
    own dispositions, written to the server's database."""
    engine = create_engine(live_server.database_url)
    try:
        async with AsyncSession(engine) as session:
            customer = Customer(
                name="Olive Overdrawn", external_ref="T-OLIVE", marketing_consent=False
            )
            session.add(customer)
            await session.flush()
            session.add_all(
                [
                    CustomerPhone(
                        customer_id=customer.id,
                        raw=OVER_LIMIT_PHONE,
                        e164=OVER_LIMIT_PHONE,
                        last_digits=OVER_LIMIT_PHONE[-9:],
                    ),
                    Account(
                        customer_id=customer.id,
                        balance=Decimal("704.04"),
                        credit_limit=Decimal("500"),
                        overdue=Decimal("120.00"),
                        currency="GBP",
                    ),
                    *(
                        NextNeed(
                            customer_id=customer.id,
                            rank=rank,
                            sku=f"T9{rank}",
                            name=f"PRODUCT NUMBER {rank}",
                            kind="reorder",
                            score=1 - rank / 10,
                            reason="bought twice",
                            may_offer=False,
                        )
                        for rank in range(1, 4)
                    ),
                ]
            )
            await dispositions.set_dispositions(
                session, "sales", dispositions.parse_dispositions("sale=Sale made,Callback booked")
            )
            olive = customer.id
            await session.commit()
            return {"olive": olive}
    finally:
        await engine.dispose()


def pop_card(page: Page, call_id: str) -> Any:
    return page.locator(f'article.pop[data-call-id="generic:{call_id}"]')


async def ring(server: LiveServer, caller: Any, agent: str, *, answer: bool = False) -> str:
    call_id = f"desk-{uuid.uuid4().hex[:12]}"
    OPEN_CALLS.append((call_id, caller))
    await server.post_event(call_id=call_id, kind="queued", caller=caller, dialed=SALES_DID)
    await server.post_event(call_id=call_id, kind="offered", caller=caller, agent=agent)
    if answer:
        await server.post_event(call_id=call_id, kind="answered", caller=caller, agent=agent)
    return call_id


async def test_find_a_customer_open_the_timeline_and_link_a_withheld_call(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    await page.get_by_role("searchbox", name="Find a customer").fill("jane smi")
    result = page.locator("#finder .search-result", has_text="Jane Smith")
    await expect(result).to_have_count(1)
    await result.get_by_role("button", name="Open").click()
    customer = page.locator(".customer-card")
    await expect(customer.locator(".customer-name")).to_have_text("Jane Smith")
    timeline = customer.locator(".timeline-list")
    await expect(timeline.locator(".timeline-order").first).to_contain_text("T-536365")
    await expect(timeline.locator(".timeline-touch")).to_contain_text("Asked about the delivery")
    await page.keyboard.press("Escape")
    await expect(customer).to_have_count(0)

    withheld = {"raw": "anonymous", "withheld": True}
    call_id = await ring(live_server, withheld, "alice")
    card = pop_card(page, call_id)
    await card.get_by_label("Find the caller").fill("T-JANE")
    await card.get_by_role("button", name="This is the caller").click()
    await expect(card.locator(".customer-name")).to_have_text("Jane Smith")
    assert page.script_errors == []  # type: ignore[attr-defined]


async def test_a_wrapup_draft_survives_a_reload_and_is_recorded(
    live_server: LiveServer, page: Page, desk_data: dict[str, int]
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = await ring(live_server, JANE_PHONE, "alice", answer=True)
    card = pop_card(page, call_id)
    form = card.locator("form.wrapup-form")
    # The queue's own dispositions, not a list in the page.
    options = await form.get_by_label("Disposition").locator("option").all_inner_texts()
    assert options[1:] == ["Sale made", "Callback booked"]
    await form.get_by_label("Notes").fill("Wants the red alarm clock; call back Friday")
    await form.locator(".sat-option:has(input[value='2'])").click()
    await expect(form.locator(".sat-meaning")).to_contain_text("not solved")
    await form.get_by_label("Caller's own rating").check()
    await expect(form.locator(".draft-note[data-saved=true]")).to_contain_text("Draft saved")
    await live_server.post_event(call_id=call_id, kind="ended", caller=JANE_PHONE, agent="alice")
    await expect(card.locator(".call-state")).to_contain_text("Call ended")

    await page.reload()
    await wait_live(page)
    card = pop_card(page, call_id)
    form = card.locator("form.wrapup-form")
    await expect(form.get_by_label("Notes")).to_have_value(
        "Wants the red alarm clock; call back Friday"
    )
    await expect(form.locator("input[name=satisfaction][value='2']")).to_be_checked()
    await expect(form.get_by_label("Caller's own rating")).to_be_checked()
    await expect(page.locator(f'.today-row[data-call-id="generic:{call_id}"]')).to_contain_text(
        "wrap-up pending"
    )
    await form.get_by_label("Disposition").select_option("callback_booked")
    await form.get_by_label("Notes").press("Control+Enter")
    await expect(card.locator(".wrapup-done")).to_contain_text("Wrap-up saved")
    pending = await live_server.get("/api/calls/mine/pending", "alice")
    assert f"generic:{call_id}" not in [c["call_id"] for c in pending["calls"]]


async def test_a_pop_reads_in_two_seconds(
    live_server: LiveServer, page: Page, desk_data: dict[str, int]
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    # The ring is opt-in: turned on here, it sounds once for the new pop.
    ring_button = page.locator("#ring-button")
    await ring_button.click()
    await expect(ring_button).to_have_attribute("aria-pressed", "true")
    call_id = await ring(live_server, OVER_LIMIT_PHONE, "alice")
    card = pop_card(page, call_id)
    await expect(card.locator(".customer-name")).to_have_text("Olive Overdrawn")
    await expect(page.locator("body")).to_have_attribute("data-rang", "1")
    # Focus moved to the new pop, and the tab's title says who is calling.
    assert await page.evaluate("document.activeElement.dataset.callId") == f"generic:{call_id}"
    assert "Olive Overdrawn" in await page.title()
    await expect(card.locator(".figure-alert")).to_contain_text("Over limit by £204.04")
    await expect(card.locator(".figure-alert")).to_contain_text("£120.00 overdue")
    # The marketing warning once, not on each of the three suggestions.
    await expect(card.locator(".need")).to_have_count(3)
    await expect(card.get_by_text("No marketing permission: don't offer")).to_have_count(1)
    number = card.locator(".pop-head .phone-copy")
    await expect(number).to_have_text("01632 960777")
    assert await number.get_attribute("data-e164") == OVER_LIMIT_PHONE

    await live_server.post_event(
        call_id=call_id, kind="answered", caller=OVER_LIMIT_PHONE, agent="alice"
    )
    submit = card.get_by_role("button", name="Save wrap-up")
    await expect(submit).to_be_visible()
    box = await submit.bounding_box()
    assert box is not None and box["y"] + box["height"] <= DESKTOP["height"]
    assert await page.evaluate("window.scrollY") == 0
    # Away is refused during a call; the reason is shown, not only the radio flipping back.
    await page.locator("label[for=status-away]").click()
    await expect(page.locator("#status-error")).to_contain_text("on call")
    await expect(page.locator("#status-available")).to_be_checked()
    await page.screenshot(path=artifact("agent-desk-desktop.png"))


async def test_shortcuts_help_and_one_sign_in_for_every_tab(
    live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server.url, "/agent", "alice")
    await wait_live(page)
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_be_visible()
    await expect(help_dialog).to_contain_text("Find a customer")
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_be_hidden()
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.id") == "finder-input"

    # A second tab of the same browser: no sign-in, and ?customer=N opens that customer.
    second = await page.context.new_page()
    await second.goto(f"{live_server.url}/agent?customer={live_server.seeded.jane}")
    await expect(second.locator(".customer-card .customer-name")).to_have_text("Jane Smith")
    await expect(second.locator("#sign-in")).to_be_hidden()
    await page.get_by_role("button", name="Sign out").click()
    await expect(second.locator("#sign-in")).to_be_visible()


async def test_dark_mode_and_french_follow_the_browser(
    live_server: LiveServer, browser: Browser
) -> None:
    context = await browser.new_context(viewport=DESKTOP, color_scheme="dark", locale="fr-FR")
    try:
        page = await context.new_page()
        await page.goto(live_server.url + "/agent")
        await expect(page.get_by_role("button", name="Se connecter")).to_be_visible()
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(x) for x in background[4:-1].split(",")[:3])
        assert red + green + blue < 120, background
        await page.get_by_label("Nom d'utilisateur").fill("alice")
        await page.get_by_label("Mot de passe").fill("demo")
        await page.get_by_role("button", name="Se connecter").click()
        await expect(page.get_by_role("heading", name="Appels du jour")).to_be_visible()
        assert await page.evaluate("document.documentElement.lang") == "fr"
    finally:
        await context.close()
