"""`evaluate` (database reads) and a scorer reading the profile API give the same figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.insights import metrics
from app.insights.evaluate import evaluate, read_holdout
from app.insights.train import train
from bench.profile_scorer import bought_before, profile_lists
from tests.conftest import add_user
from tests.customers.factories import bearer
from tests.insights.data import NOW, Line, shop, write_csv


def _new_lines() -> list[Line]:
    # In the holdout, some customers try the other group's products (new to them).
    return [
        Line(f"1{n:04d}", f"8{n:05d}", NOW - timedelta(days=10), "20001") for n in range(0, 12, 2)
    ]


async def test_evaluate_agrees_with_the_profile_api(
    clean_engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    cut = NOW - timedelta(days=60)
    lines = shop() + _new_lines()
    train_csv = write_csv(tmp_path / "train.csv", [ln for ln in lines if ln.at < cut])
    holdout_csv = write_csv(tmp_path / "holdout.csv", [ln for ln in lines if ln.at >= cut])
    await import_orders(clean_engine, train_csv)
    await train(clean_engine)
    ours = await evaluate(clean_engine, holdout_csv, k=3)

    await add_user(clean_engine, "alice")
    client.headers.update(bearer("alice"))
    later, _ = read_holdout(holdout_csv)
    before = bought_before(train_csv)
    lists = await profile_lists(client, sorted(r for r in later if r in before))
    theirs = metrics.score(lists, before, later, k=3)

    assert ours["customers"] == 24
    assert ours["cross_sell"]["customers"] == 6
    for kind in ("reorder_or_new", "cross_sell"):
        assert theirs[kind] == ours[kind]
