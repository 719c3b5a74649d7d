"""The scheduled refresh: off by default; one tick runs `train --since` after a full run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.insights import runtime
from app.insights.models import InsightRun
from app.settings import Settings
from app.state import State
from tests.insights.data import shop, write_csv


async def test_refresh_once_runs_full_then_since(
    clean_engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    await import_orders(clean_engine, write_csv(tmp_path / "shop.csv", shop()))
    await runtime.refresh_once(clean_engine, settings)
    await runtime.refresh_once(clean_engine, settings)
    async with clean_engine.connect() as conn:
        rows = (
            await conn.execute(
                select(InsightRun.kind, InsightRun.customers).order_by(InsightRun.id)
            )
        ).all()
    # The second tick only sees the customers whose orders fall in the overlap window.
    assert [r.kind for r in rows] == ["full", "since"]
    assert rows[0].customers == 24 and rows[1].customers < 24


async def test_start_is_off_by_default_and_stops(settings: Settings, engine: AsyncEngine) -> None:
    state = cast(State, {"settings": settings, "engine": engine, "services": {}})
    await runtime.start(state)
    assert "insights_refresh" not in state["services"]
    on = cast(State, {**cast(dict[str, Any], state), "services": {}})
    on["settings"] = settings.model_copy(update={"insights_refresh_s": 3600})
    await runtime.start(on)
    task = on["services"]["insights_refresh"]
    assert not task.done()
    await runtime.stop(on)
    assert task.cancelled() and "insights_refresh" not in on["services"]
