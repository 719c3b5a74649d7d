"""The serving process's collector settings: applied for the app's life, undone after."""

from __future__ import annotations

import gc

from asgi_lifespan import LifespanManager

from app import gc_policy
from app.main import create_app
from tests.conftest import make_settings


async def test_the_lifespan_freezes_start_up_objects_and_restores_the_collector(
    database_url: str,
) -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    async with LifespanManager(create_app(make_settings(database_url))):
        assert gc.get_threshold() == (
            gc_policy.YOUNG_THRESHOLD,
            gc_policy.MIDDLE_THRESHOLD,
            gc_policy.OLD_THRESHOLD,
        )
        # The modules, metadata and caches built at start-up are out of the collector's scans.
        assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
