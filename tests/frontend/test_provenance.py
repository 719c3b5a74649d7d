"""The pop says where each part came from: a live CRM source (a real HTTP process on loopback)
feeds identity, orders and a part the pop has no slot for; the page shows each with its source."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.frontend.conftest import SALES_DID, LiveServer, running_server, sign_in, wait_live
from tests.sources.support import CRM_TOKEN, WEBHOOK_SECRET, CrmProcess, readme_example

ADA = "+442079460111"  # known to the CRM test server, not to screenpop's own database


@pytest.fixture(scope="module")
def crm_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The README's CRM example as a sources file, pointed at a running CRM test server."""
    crm = CrmProcess().start()
    sources = tmp_path_factory.mktemp("sources") / "sources.toml"
    sources.write_text(readme_example("crm").replace("https://crm.example.com", crm.url))
    yield sources
    crm.stop()


@pytest.fixture(scope="module")
async def crm_server(
    tmp_path_factory: pytest.TempPathFactory, crm_sources: Path, demo_template: Path
) -> AsyncIterator[LiveServer]:
    env = {
        "SCREENPOP_SOURCES_FILE": str(crm_sources),
        "CRM_TOKEN": CRM_TOKEN,
        "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    async with running_server(tmp_path_factory, demo_template, env) as server:
        yield server


async def test_each_part_of_the_pop_says_which_system_it_came_from(
    crm_server: LiveServer, page: Page
) -> None:
    await sign_in(page, crm_server.url, "/agent", "alice")
    await wait_live(page)
    call_id = f"ui-{uuid.uuid4().hex[:12]}"
    await crm_server.post_event(call_id=call_id, kind="queued", caller=ADA, dialed=SALES_DID)
    await crm_server.post_event(call_id=call_id, kind="offered", caller=ADA, agent="alice")
    try:
        card = page.locator(f'article.pop[data-call-id="generic:{call_id}"]')
        await expect(card.get_by_role("heading", name="Ada Byron (CRM)")).to_be_visible(
            timeout=10000
        )
        # The identity, the orders and the CRM's own "segment" part, each with its source.
        await expect(card.locator(".identity-meta .provenance")).to_contain_text("from crm")
        orders = card.locator(".orders")
        await expect(orders.locator("h3 .provenance")).to_contain_text("from crm")
        await expect(orders).to_contain_text("120.50")
        segment = card.locator('.extra[data-part="segment"]')
        await expect(segment.locator("h3")).to_contain_text("Segment")
        await expect(segment.locator("h3 .provenance")).to_contain_text("from crm")
        await expect(segment.locator(".extra-fields")).to_contain_text("gold")
        assert page.script_errors == []  # type: ignore[attr-defined]
    finally:
        await crm_server.post_event(call_id=call_id, kind="ended", caller=ADA)
