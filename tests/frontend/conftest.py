"""Real-browser fixtures: Debian's Chromium driven by Playwright, against a real server.

Without /usr/bin/chromium these tests skip with a message, unless
``SCREENPOP_REQUIRE_BROWSER=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from app import demo, migrate
from app.customers.models import (
    Account,
    Customer,
    CustomerPhone,
    Interaction,
    Order,
    OrderLine,
    Product,
)
from app.db import create_engine
from app.insights.models import CustomerInsight, NextNeed
from telephony.generic import sign_generic
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, make_settings
from tests.support.databases import drop_database, new_database, sqlite_file
from tests.support.server import ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
DEMO_PASSWORD = "demo"

# Hand-made customers whose every figure the tests know.
JANE_PHONE = "+442079460123"
SHARED_PHONE = "+447700900123"
UNKNOWN_PHONE = "+447700900999"
SALES_DID = "+448081570001"


def require_browser() -> None:
    if CHROMIUM.exists():
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("SCREENPOP_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " and SCREENPOP_REQUIRE_BROWSER=1")
    pytest.skip(message)


@dataclass
class Seeded:
    """Ids of the hand-made customers."""

    jane: int = 0
    tom: int = 0
    sarah: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LiveServer:
    """The server process, its database and the signed-event helper."""

    process: ServerProcess
    database_url: str
    seeded: Seeded

    @property
    def url(self) -> str:
        return self.process.url

    async def post_event(self, **event: Any) -> dict[str, Any]:
        """POST one signed generic event; returns the 202 answer."""
        return await self.post_signed("/telephony/generic/events", event)

    async def post_contact(self, channel: str, **event: Any) -> dict[str, Any]:
        """POST one signed contact event (``/contacts/{channel}/events``); the 202 answer."""
        return await self.post_signed(f"/contacts/{channel}/events", event)

    async def post_signed(self, path: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("event_id", uuid.uuid4().hex)
        event.setdefault("occurred_at", datetime.now(UTC).isoformat())
        body = orjson.dumps(event)
        headers = {
            "Content-Type": "application/json",
            "X-Screenpop-Signature": sign_generic(TEST_WEBHOOK_SECRET, body, int(time.time())),
        }
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.post(path, content=body, headers=headers)
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def token(self, username: str) -> str:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.post(
                "/api/auth/login", json={"username": username, "password": DEMO_PASSWORD}
            )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def post_json(self, path: str, username: str, body: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {await self.token(username)}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def get(self, path: str, username: str) -> Any:
        headers = {"Authorization": f"Bearer {await self.token(username)}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.get(path, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def _add_customer(
    session: AsyncSession,
    *,
    name: str,
    phone: str,
    external_ref: str,
    consent: bool = True,
    balance: str = "0",
    credit: str = "500",
) -> int:
    customer = Customer(
        name=name,
        external_ref=external_ref,
        customer_type="consumer",
        language="en",
        marketing_consent=consent,
        country="United Kingdom",
        created_at=_ago(800),
    )
    session.add(customer)
    await session.flush()
    session.add(
        CustomerPhone(customer_id=customer.id, raw=phone, e164=phone, last_digits=phone[-9:])
    )
    session.add(
        Account(
            customer_id=customer.id,
            balance=Decimal(balance),
            credit_limit=Decimal(credit),
            currency="GBP",
        )
    )
    await session.flush()
    return customer.id


async def seed_known_customers(database_url: str) -> Seeded:
    """Jane Smith (every profile field known) and two customers sharing one number."""
    engine = create_engine(database_url)
    seeded = Seeded()
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            seeded.jane = await _add_customer(
                session,
                name="Jane Smith",
                phone=JANE_PHONE,
                external_ref="T-JANE",
                balance="1234.50",
                credit="2500",
            )
            for sku, name in (
                ("T85123A", "WHITE HANGING HEART T-LIGHT HOLDER"),
                ("T22727", "ALARM CLOCK BAKELIKE RED"),
                ("T22633", "HAND WARMER UNION JACK"),
            ):
                if await session.get(Product, sku) is None:
                    session.add(Product(sku=sku, name=name))
            order = Order(
                customer_id=seeded.jane,
                invoice_no="T-536365",
                ordered_at=_ago(20),
                total=Decimal("15.30"),
                country="United Kingdom",
            )
            returned = Order(
                customer_id=seeded.jane,
                invoice_no="T-C536379",
                ordered_at=_ago(35),
                is_return=True,
                total=Decimal("-11.10"),
                country="United Kingdom",
            )
            session.add_all([order, returned])
            await session.flush()
            session.add_all(
                [
                    OrderLine(
                        order_id=order.id,
                        line_no=1,
                        sku="T85123A",
                        description="WHITE HANGING HEART T-LIGHT HOLDER",
                        quantity=6,
                        unit_price=Decimal("2.55"),
                    ),
                    OrderLine(
                        order_id=returned.id,
                        line_no=1,
                        sku="T22633",
                        description="HAND WARMER UNION JACK",
                        quantity=-6,
                        unit_price=Decimal("1.85"),
                    ),
                ]
            )
            session.add(
                CustomerInsight(
                    customer_id=seeded.jane,
                    clv_historic=Decimal("4310.20"),
                    clv_forecast=Decimal("1830.00"),
                    value_tier="high",
                    potential=False,
                    segment="loyal",
                    stage="commitment",
                    churn_risk=0.12,
                    treatment="Priority handling: high value, high service",
                    details={},
                )
            )
            session.add_all(
                [
                    NextNeed(
                        customer_id=seeded.jane,
                        rank=1,
                        sku="T85123A",
                        name="WHITE HANGING HEART T-LIGHT HOLDER",
                        kind="reorder",
                        score=0.9,
                        reason="bought 6 times, last 3 weeks ago",
                        may_offer=True,
                    ),
                    NextNeed(
                        customer_id=seeded.jane,
                        rank=2,
                        sku="T22727",
                        name="ALARM CLOCK BAKELIKE RED",
                        kind="cross_sell",
                        score=0.5,
                        reason="often bought with ALARM CLOCK BAKELIKE PINK",
                        may_offer=True,
                    ),
                ]
            )
            session.add(
                Interaction(
                    customer_id=seeded.jane,
                    channel="phone",
                    agent="bob",
                    disposition="resolved",
                    notes="Asked about the delivery date.",
                    satisfaction=4,
                    created_at=_ago(9),
                )
            )
            seeded.tom = await _add_customer(
                session, name="Tom Baker", phone=SHARED_PHONE, external_ref="T-TOM"
            )
            seeded.sarah = await _add_customer(
                session,
                name="Sarah Baker",
                phone=SHARED_PHONE,
                external_ref="T-SARAH",
                balance="42.00",
            )
            await session.commit()
    finally:
        await engine.dispose()
    return seeded


async def train_demo(database_url: str) -> None:
    """Fill insights and next needs for the demo customers."""
    from app.insights import train

    settings = make_settings(database_url)
    await train.run_cli(settings, since=None, console=Console(file=io.StringIO()))


@pytest.fixture(scope="session")
async def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the demo seeded and trained, made once per session (seeding and
    training take half a minute); each server starts from a copy of it."""
    require_browser()
    url = await new_database("sqlite", tmp_path_factory.mktemp("frontend-template"))
    await migrate.upgrade_async(url)
    await demo.seed(make_settings(url))
    await train_demo(url)
    return sqlite_file(url)


@asynccontextmanager
async def running_server(
    tmp_path_factory: pytest.TempPathFactory,
    template: Path,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[LiveServer]:
    """A real uvicorn on a free port on a copy of ``template`` (``demo_template``: demo
    customers, users and queues), plus known customers; ``extra_env`` adds settings."""
    require_browser()
    url = await new_database("sqlite", tmp_path_factory.mktemp("frontend-db"))
    copy = sqlite_file(url)
    for suffix in ("", "-wal", "-shm"):  # a checkpointed template has no WAL; copy any left
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, copy.with_name(copy.name + suffix))
    seeded = await seed_known_customers(url)
    env = {
        "SCREENPOP_DATABASE_URL": url,
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_LOG_JSON": "0",
        **(extra_env or {}),
    }
    process = ServerProcess(env)
    process.start()
    try:
        yield LiveServer(process=process, database_url=url, seeded=seeded)
    finally:
        process.stop()
        await drop_database(url)


@pytest.fixture(scope="session")
async def live_server(
    tmp_path_factory: pytest.TempPathFactory, demo_template: Path
) -> AsyncIterator[LiveServer]:
    """One server for the behaviour tests; each test ends the calls it starts."""
    async with running_server(tmp_path_factory, demo_template) as server:
        yield server


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_browser()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.script_errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
async def browser_pages(browser: Browser) -> AsyncIterator[tuple[Page, Page]]:
    """Two separate browsers' worth of pages (own storage each): two agents side by side."""
    first = await browser.new_context(viewport=DESKTOP)
    second = await browser.new_context(viewport=DESKTOP)
    try:
        yield await first.new_page(), await second.new_page()
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def browser_context_phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        yield ctx
    finally:
        await ctx.close()


async def sign_in(page: Page, base_url: str, path: str, username: str) -> None:
    """Open a screen and sign in through its form, as a person would."""
    await page.goto(base_url + path)
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def wait_live(page: Page, timeout_ms: float = 10000) -> None:
    """Wait until the page's websocket is connected (its badge says Live)."""
    await page.locator("#connection.conn-open").wait_for(timeout=timeout_ms)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def publish_screenshots(names: Iterator[str] | list[str]) -> None:
    """Copy fresh screenshots into docs/ when asked (SCREENPOP_UPDATE_SCREENSHOTS=1)."""
    if os.environ.get("SCREENPOP_UPDATE_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(ARTIFACTS / name, DOCS_SCREENSHOTS / name)
