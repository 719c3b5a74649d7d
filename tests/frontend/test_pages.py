"""The page routes over HTTP (no browser): landing page, both screens, static modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app import migrate, pages
from app.main import create_app
from tests.conftest import make_settings
from tests.support.databases import drop_database, new_database


@pytest.fixture(scope="module")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await new_database("sqlite", tmp_path_factory.mktemp("pages-db"))
    await migrate.upgrade_async(url)
    yield url
    await drop_database(url)


def pages_only_app(url: str, *, demo: bool) -> FastAPI:
    """Just the pages router with settings in the lifespan state: demo mode without the
    call simulator the full app would start."""
    settings = make_settings(url, demo=demo)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"settings": settings}

    app = FastAPI(lifespan=lifespan)
    app.include_router(pages.router)
    return app


async def fetch(url: str, path: str, *, demo: bool) -> httpx.Response:
    # The whole app where demo mode is not involved; the pages router alone where it is.
    app = pages_only_app(url, demo=True) if demo else create_app(make_settings(url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get(path)


async def test_landing_links_both_screens_and_shows_demo_credentials(sqlite_url: str) -> None:
    response = await fetch(sqlite_url, "/", demo=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/agent"' in response.text
    assert 'href="/supervisor"' in response.text
    assert 'href="/reports"' in response.text
    assert "<kbd>alice</kbd>" in response.text
    assert "<kbd>sam</kbd>" in response.text
    assert "<kbd>demo</kbd>" in response.text


async def test_landing_hides_credentials_outside_demo(sqlite_url: str) -> None:
    response = await fetch(sqlite_url, "/", demo=False)
    assert response.status_code == 200
    assert 'href="/agent"' in response.text
    assert "<kbd>alice</kbd>" not in response.text
    assert "demo-credentials" not in response.text


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("/agent", "/static/js/agent.js"),
        ("/supervisor", "/static/js/supervisor.js"),
        ("/reports", "/static/js/reports.js"),
    ],
)
async def test_screens_have_the_sign_in_form(sqlite_url: str, path: str, module: str) -> None:
    response = await fetch(sqlite_url, path, demo=False)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    page = response.text
    # English in the document; data-i18n marks text the catalogue translates.
    assert '<label for="username" data-i18n>Username</label>' in page
    assert '<label for="password" data-i18n>Password</label>' in page
    assert '<button type="submit" class="btn btn-primary" data-i18n>Sign in</button>' in page
    assert f'<script type="module" src="{module}">' in page
    # The reports page marks each report's body live (drawn by its script).
    assert 'aria-live="polite"' in page or path in ("/supervisor", "/reports")


@pytest.mark.parametrize(
    "path",
    [
        "/static/js/agent.js",
        "/static/js/supervisor.js",
        "/static/js/reports.js",
        "/static/js/live.js",
        "/static/js/session.js",
        "/static/js/ui.js",
        "/static/js/i18n.js",
        "/static/js/desk.js",
        "/static/js/wrapup.js",
        "/static/i18n/fr.json",
        "/static/screenpop.css",
    ],
)
async def test_static_files_are_served(sqlite_url: str, path: str) -> None:
    response = await fetch(sqlite_url, path, demo=False)
    assert response.status_code == 200
    expected = {"css": "text/css", "json": "json"}.get(path.rsplit(".", 1)[1], "javascript")
    assert expected in response.headers["content-type"]


async def test_agent_screen_is_marked_for_the_demo_phone_in_demo_mode_only(
    sqlite_url: str,
) -> None:
    demo = await fetch(sqlite_url, "/agent", demo=True)
    assert demo.status_code == 200
    assert demo.headers["cache-control"] == "no-cache"
    assert pages.DEMO_AGENT_META in demo.text
    assert '<label for="username" data-i18n>Username</label>' in demo.text
    plain = await fetch(sqlite_url, "/agent", demo=False)
    assert 'name="screenpop-demo"' not in plain.text
    assert (await fetch(sqlite_url, "/static/js/demo_phone.js", demo=False)).status_code == 200
