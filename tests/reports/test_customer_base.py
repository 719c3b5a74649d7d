"""Retention, defection and the value of the customer base on a hand-made history, through the
API, on SQLite and PostgreSQL (the figures are worked out by hand in tests/reports/hand_shop.py)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.insights.models import CustomerInsight
from app.reports.customer_base import RefreshOptions, refresh
from app.reports.models import RetentionMonth, ValueDay
from tests.calls.support import bearer
from tests.reports import hand_shop

SUPERVISOR = bearer("sam", "supervisor")
OPTIONS = RefreshOptions(defection_intervals=3)


async def _refreshed(engine: AsyncEngine, tmp_path: Path) -> dict[str, int]:
    ids = await hand_shop.load(engine, tmp_path)
    report = await refresh(engine, OPTIONS, as_of=hand_shop.AS_OF, today=hand_shop.TODAY)
    assert report.as_of.isoformat() == "2011-06-30"
    assert report.customers == 6  # E only returned something
    return ids


async def _get(client: httpx.AsyncClient, url: str, **headers: str) -> dict[str, Any]:
    response = await client.get(url, headers=headers or SUPERVISOR)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_retention_by_month_and_by_segment_match_the_hand_count(
    client: httpx.AsyncClient, clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _refreshed(clean_engine, tmp_path)
    by_month = await _get(client, "/api/reports/retention")
    assert by_month["rows"] == hand_shop.rows(hand_shop.BY_MONTH, "month")
    assert by_month["columns"] == ["month", *hand_shop.COLUMNS]
    assert (by_month["as_of"], by_month["defection_intervals"]) == ("2011-06-30", 3.0)
    by_segment = await _get(client, "/api/reports/retention?by=segment")
    assert by_segment["rows"] == hand_shop.rows(hand_shop.BY_SEGMENT, "segment")
    # The range picks whole months: Feb 15 to Apr 10 is February, March and April.
    part = await _get(client, "/api/reports/retention?start=2011-02-15&end=2011-04-10")
    assert [r["month"] for r in part["rows"]] == ["2011-02", "2011-03", "2011-04"]
    # loyal over those months: active 2 + 2 + 2, defected B (Feb), A and B (Apr).
    seg = await _get(client, "/api/reports/retention?by=segment&start=2011-02-01&end=2011-04-30")
    loyal = next(r for r in seg["rows"] if r["segment"] == "loyal")
    assert (loyal["active_start"], loyal["defected"], loyal["defection_rate"]) == (6, 3, 0.5)
    wandering = next(r for r in seg["rows"] if r["segment"] == "wandering")
    assert (wandering["active_start"], wandering["new"]) == (5, 1)  # C; C D; C D. New: D


async def test_a_larger_n_moves_the_defections(
    client: httpx.AsyncClient, clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    """N = 4: A defects Feb 9 + 78 d = Apr 28, B on Jan 11 + 40 d = Feb 20 is after its Feb
    10 purchase (no defection, no win-back in February); G after Feb 2: 28 d -> Mar 2, before
    Mar 10: defects in March, not February."""
    await hand_shop.load(clean_engine, tmp_path)
    await refresh(clean_engine, RefreshOptions(defection_intervals=4), as_of=hand_shop.AS_OF)
    rows = {r["month"]: r for r in (await _get(client, "/api/reports/retention"))["rows"]}
    assert (rows["2011-02"]["defected"], rows["2011-02"]["won_back"]) == (0, 0)
    assert (rows["2011-03"]["defected"], rows["2011-03"]["won_back"]) == (1, 1)  # G, G


async def test_csv_holds_the_same_table_as_json(
    client: httpx.AsyncClient, clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await _refreshed(clean_engine, tmp_path)
    for url in ("/api/reports/retention?by=segment", "/api/reports/retention",
                "/api/reports/value"):  # fmt: skip
        table = await _get(client, url)
        response = await client.get(f"{url}{'&' if '?' in url else '?'}format=csv",
                                    headers=SUPERVISOR)  # fmt: skip
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        found = list(csv.reader(io.StringIO(response.text)))
        assert found[0] == table["columns"]
        expected = [["" if r[c] is None else str(r[c]) for c in table["columns"]]
                    for r in table["rows"]]  # fmt: skip
        assert found[1:] == expected and len(expected) >= 1


async def test_agents_are_refused_and_bad_parameters_named(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    for url in ("/api/reports/retention", "/api/reports/value"):
        assert (await client.get(url, headers=bearer("alice", "agent"))).status_code == 403
        assert (await client.get(url)).status_code == 401
        upside_down = await client.get(f"{url}?start=2011-05-01&end=2011-04-01",
                                       headers=SUPERVISOR)  # fmt: skip
        assert upside_down.status_code == 422 and "after end" in upside_down.text
    bad_by = await client.get("/api/reports/retention?by=week", headers=SUPERVISOR)
    assert bad_by.status_code == 422
    assert (await client.get("/api/reports/retention", headers=bearer("root", "admin"))).json()[
        "rows"
    ] == []  # nothing refreshed yet: an empty table, not an error


async def test_value_snapshot_per_day_and_tier_the_days_last_run_wins(
    client: httpx.AsyncClient, clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    ids = await _refreshed(clean_engine, tmp_path)
    day = hand_shop.TODAY
    # high: A + B = 2 customers, forecast 900.50 + 600.00; medium F G; low C D.
    first = {
        "day": day.isoformat(), "customers": 6, "clv_forecast": 1695.75, "clv_historic": 1618.0,
        "high_customers": 2, "high_clv_forecast": 1500.5, "medium_customers": 2,
        "medium_clv_forecast": 180.0, "low_customers": 2, "low_clv_forecast": 15.25,
    }  # fmt: skip
    assert (await _get(client, "/api/reports/value"))["rows"] == [first]
    # A later run the same day replaces the day's rows: A's forecast falls by 500.50.
    async with clean_engine.begin() as conn:
        await conn.execute(
            update(CustomerInsight)
            .where(CustomerInsight.customer_id == ids["A"])
            .values(clv_forecast=Decimal("400.00"))
        )
    await refresh(clean_engine, OPTIONS, as_of=hand_shop.AS_OF, today=day)
    second = {**first, "clv_forecast": 1195.25, "high_clv_forecast": 1000.0}
    assert (await _get(client, "/api/reports/value"))["rows"] == [second]
    # The next day adds a row; the range picks days.
    await refresh(clean_engine, OPTIONS, as_of=hand_shop.AS_OF, today=day + timedelta(days=1))
    rows = (await _get(client, "/api/reports/value"))["rows"]
    assert [r["day"] for r in rows] == [day.isoformat(), (day + timedelta(days=1)).isoformat()]
    only = await _get(client, f"/api/reports/value?start={day + timedelta(days=1)}")
    assert [r["clv_forecast"] for r in only["rows"]] == [1195.25]


async def test_two_refreshes_at_once_take_turns(clean_engine: AsyncEngine, tmp_path: Path) -> None:
    """A scheduled train and the command may refresh together: both succeed, one set of rows."""
    await hand_shop.load(clean_engine, tmp_path)
    day = hand_shop.TODAY
    runs = (refresh(clean_engine, OPTIONS, as_of=hand_shop.AS_OF, today=day) for _ in "ab")
    reports = await asyncio.gather(*runs)
    assert {r.rows for r in reports} == {16}
    async with clean_engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(RetentionMonth))).scalar() == 16
        assert (await conn.execute(select(func.count()).select_from(ValueDay))).scalar() == 3
