"""axe-core (from npm: ``npm ci`` installs it into node_modules/) run inside the real pages:
the agent's desk with a pop and its wrap-up, a customer opened from search, the wallboard
(normal and TV), the reports, light and dark. No serious or critical violation of WCAG 2 A/AA
rules."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.frontend.conftest import (
    DESKTOP,
    JANE_PHONE,
    SALES_DID,
    LiveServer,
    sign_in,
    wait_live,
)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa"]}});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
}"""


def axe_script() -> str:
    if not AXE.exists():
        message = f"axe-core not installed at {AXE} (npm ci)"
        if os.environ.get("SCREENPOP_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " and SCREENPOP_REQUIRE_BROWSER=1")
        pytest.skip(message)
    return AXE.read_text()


async def violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(content=axe_script())
    found: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_desk_and_the_wallboard_have_no_serious_violations(
    live_server: LiveServer, browser: Browser, scheme: str
) -> None:
    axe_script()
    context = await browser.new_context(viewport=DESKTOP, color_scheme=scheme)  # type: ignore[arg-type]
    call_id = f"a11y-{uuid.uuid4().hex[:10]}"
    try:
        page = await context.new_page()
        await page.goto(live_server.url + "/agent")
        assert await violations(page) == [], "sign-in"
        await sign_in(page, live_server.url, "/agent", "alice")
        await wait_live(page)
        for kind in ("queued", "offered", "answered"):
            await live_server.post_event(
                call_id=call_id, kind=kind, caller=JANE_PHONE, dialed=SALES_DID, agent="alice"
            )
        card = page.locator(f'article.pop[data-call-id="generic:{call_id}"]')
        await expect(card.locator("form.wrapup-form")).to_be_visible()
        await page.get_by_role("searchbox", name="Find a customer").fill("jane")
        await (
            page.locator("#finder .search-result").first.get_by_role("button", name="Open").click()
        )
        await expect(page.locator(".customer-card .timeline-item").first).to_be_visible()
        assert await violations(page) == [], "agent desk"

        board = await context.new_page()
        await board.goto(live_server.url + "/supervisor")
        await sign_in(board, live_server.url, "/supervisor", "sam")
        await wait_live(board)
        await expect(board.locator(".queue-tile").first).to_be_visible()
        assert await violations(board) == [], "wallboard"
        await board.get_by_role("button", name="TV mode").click()
        assert await violations(board) == [], "wallboard in TV mode"
    finally:
        await live_server.post_event(call_id=call_id, kind="ended", caller=JANE_PHONE)
        await context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_reports_have_no_serious_violations(
    live_server: LiveServer, browser: Browser, scheme: str
) -> None:
    axe_script()
    context = await browser.new_context(viewport=DESKTOP, color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        await page.goto(live_server.url + "/reports")
        assert await violations(page) == [], "reports sign-in"
        await sign_in(page, live_server.url, "/reports", "sam")
        for name in ("offers", "satisfaction"):  # drawn: a table or "nothing to show"
            body = page.locator(f"#report-{name} .report-body")
            await expect(body.locator("table, p.muted").first).to_be_visible()
        assert await violations(page) == [], "reports"
    finally:
        await context.close()
