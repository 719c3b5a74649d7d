"""The reports page in a real browser: a supervisor reads the call reports, switches what they
are shown by, and downloads one as CSV; an agent is refused.

The page draws four reports; this file checks the two call reports (offers made in calls,
satisfaction) and only that the other two have their sections: their endpoints belong to
another part of the work and may answer an error until they exist.
"""

from __future__ import annotations

import csv
import io
import uuid

from playwright.async_api import Page, expect

from tests.frontend.conftest import JANE_PHONE, SALES_DID, LiveServer, artifact, sign_in


async def wrapped_up_call(live_server: LiveServer) -> None:
    """A call from Jane that alice answers, offers two products in, and wraps up graded 4."""
    call_id = f"rep-{uuid.uuid4().hex[:10]}"
    await live_server.post_event(
        call_id=call_id, kind="queued", caller=JANE_PHONE, dialed=SALES_DID
    )
    for kind in ("offered", "answered", "ended"):
        await live_server.post_event(call_id=call_id, kind=kind, caller=JANE_PHONE, agent="alice")
    # The shared server's sales queue may have its own dispositions (test_desk sets some).
    listed = await live_server.get("/api/dispositions", "alice")
    disposition = (listed["queues"].get("sales") or listed["default"])[0]["code"]
    await live_server.post_json(
        f"/api/calls/generic:{call_id}/wrapup",
        "alice",
        {
            "disposition": disposition,
            "satisfaction": 4,
            "satisfaction_kind": "caller",
            "offers": [
                {"sku": "T85123A", "outcome": "accepted"},
                {"sku": "T22727", "outcome": "declined"},
            ],
        },
    )


async def test_a_supervisor_reads_switches_and_downloads_the_call_reports(
    live_server: LiveServer, page: Page
) -> None:
    await wrapped_up_call(live_server)
    await sign_in(page, live_server.url, "/reports", "sam")
    for title in (
        "Retention and defection",
        "Value of the customer base",
        "Offers made in calls",
        "Satisfaction",
    ):
        await expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()

    offers = page.locator("#report-offers")
    await expect(offers.locator("th")).to_contain_text(["SKU", "Product", "Calls", "Offered"])
    heart = offers.locator("tr", has_text="WHITE HANGING HEART T-LIGHT HOLDER")
    await expect(heart.locator("td.num").nth(2)).not_to_have_text("0")  # accepted at least once
    await offers.get_by_label("Show").select_option("agent")
    await expect(offers.locator("th").first).to_have_text("Agent")
    await expect(offers.locator("tbody tr", has_text="alice")).to_have_count(1)

    satisfaction = page.locator("#report-satisfaction")
    await expect(satisfaction.locator("tbody tr", has_text="sales").first).to_be_visible()
    await satisfaction.get_by_label("Show").select_option("agent")
    await expect(satisfaction.locator("th").nth(1)).to_have_text("Agent")
    await satisfaction.get_by_label("Whose grades").select_option("caller")
    await expect(satisfaction.locator("tbody tr", has_text="alice").first).to_be_visible()
    await page.screenshot(path=artifact("reports-desktop.png"), full_page=True)

    async with page.expect_download() as info:
        await offers.get_by_role("button", name="Download CSV").click()
    download = await info.value
    assert download.suggested_filename == "offers.csv"
    text = (await download.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["agent"] for r in rows if r["agent"] == "alice"] == ["alice"]  # by agent, as shown
    assert int(next(r for r in rows if r["agent"] == "alice")["accepted"]) >= 1
    assert page.script_errors == []  # type: ignore[attr-defined]


async def test_agents_cannot_open_the_reports(live_server: LiveServer, page: Page) -> None:
    await sign_in(page, live_server.url, "/reports", "alice")
    await expect(page.locator("#sign-in-error")).to_contain_text("not allowed")
    await expect(page.locator("#reports")).to_be_hidden()
