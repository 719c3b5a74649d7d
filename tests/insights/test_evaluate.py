"""`evaluate` follows DESIGN.md's protocol on a tiny shop whose right answers are known."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.customers.models import Customer
from app.insights import evaluate as evaluation
from app.insights import metrics
from app.insights.models import NextNeed
from app.settings import Settings
from tests.insights.data import Line, write_csv

BEFORE = datetime(2011, 5, 2, 10)
LATER = datetime(2011, 7, 1, 10)
A, B, X, Y = "10001", "10002", "30001", "30002"


async def _shop(engine: AsyncEngine, tmp_path: Path) -> Path:
    train = [
        Line("11111", "500001", BEFORE, A),
        Line("11111", "500001", BEFORE, B),
        Line("22222", "500002", BEFORE, A),
        Line("33333", "500003", BEFORE, A),
        Line("33333", "500003", BEFORE, "POST"),
        Line("55555", "C500004", BEFORE, A, -1),  # only a return: bought nothing
    ]
    await import_orders(engine, write_csv(tmp_path / "train.csv", train))
    async with engine.begin() as conn:
        ids = dict((await conn.execute(select(Customer.external_ref, Customer.id))).all())
        needs = {
            "11111": [(A, "reorder"), (X, "cross_sell"), (Y, "cross_sell")],
            "22222": [(A, "reorder"), (B, "cross_sell")],
            "33333": [(B, "cross_sell")],
            "55555": [(A, "cross_sell")],
        }
        await conn.execute(
            insert(NextNeed),
            [
                {"customer_id": ids[ref], "rank": rank, "sku": sku, "name": sku, "kind": kind,
                 "score": 1.0 / rank, "reason": "test"}
                for ref, rows in needs.items()
                for rank, (sku, kind) in enumerate(rows, start=1)
            ],
        )  # fmt: skip
    holdout = [
        Line("11111", "600001", LATER, X, 2),
        Line("11111", "600001", LATER, "POST", 1),
        Line("22222", "600002", LATER, A),
        Line("33333", "600003", LATER, "POST"),  # postage only: not a product buyer
        Line("33333", "C600004", LATER, B, -1),  # a return is not a purchase
        Line("44444", "600005", LATER, A),  # unknown to the database
        Line("55555", "600006", LATER, A),  # bought nothing before
    ]
    return write_csv(tmp_path / "holdout.csv", holdout)


def _figures(part: dict[str, object]) -> dict[str, object]:
    return {key: part[key] for key in ("hit_rate", "recall", "mrr", "customers")}


async def test_protocol_counts_known_answers(clean_engine: AsyncEngine, tmp_path: Path) -> None:
    holdout = await _shop(clean_engine, tmp_path)
    result = await evaluation.evaluate(clean_engine, holdout, k=10)
    assert result["customers"] == 2 and result["k"] == 10
    # 11111 bought X (2nd of its list), 22222 bought A (1st of its list).
    assert _figures(result["reorder_or_new"]) == {
        "hit_rate": 1.0, "recall": 1.0, "mrr": 0.75, "customers": 2
    }  # fmt: skip
    # Only 11111 bought something new (X): its first cross-sell. 22222 is not counted.
    assert _figures(result["cross_sell"]) == {
        "hit_rate": 1.0, "recall": 1.0, "mrr": 1.0, "customers": 1
    }  # fmt: skip
    # Popular: A (3 buyers), then B. 22222 bought A; nobody bought an unseen popular one.
    assert result["popularity"] == {"reorder_or_new_hit_rate": 0.5, "cross_sell_hit_rate": 0.0}
    # Own products first: 11111 gets A, B (missed X), 22222 gets A (hit).
    repeat = result["baselines"]["repeat_then_popular"]
    assert repeat["reorder_or_new"]["hit_rate"] == 0.5
    top1 = await evaluation.evaluate(clean_engine, holdout, k=1)
    assert _figures(top1["reorder_or_new"]) == {
        "hit_rate": 0.5, "recall": 0.5, "mrr": 0.5, "customers": 2
    }  # fmt: skip
    assert top1["cross_sell"]["hit_rate"] == 1.0  # the first cross-sell, whatever its rank


def test_bootstrap_interval_brackets_the_mean() -> None:
    rows = [(1.0, 0.5, 1.0)] * 30 + [(0.0, 0.0, 0.0)] * 70
    out = metrics.summarise(rows)
    assert out["hit_rate"] == 0.3 and out["customers"] == 100
    lo, hi = out["ci95"]["hit_rate"]
    assert 0.18 < lo < 0.3 < hi < 0.42
    assert metrics.summarise([(1.0, 1.0, 1.0)] * 5)["ci95"]["mrr"] == [1.0, 1.0]


async def test_cli_prints_one_json_line_last(
    clean_engine: AsyncEngine,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    holdout = await _shop(clean_engine, tmp_path)
    await evaluation.run_cli(settings, holdout, 10, Console(stderr=True))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    data = json.loads(last)
    assert set(data) == {
        "customers", "k", "reorder_or_new", "cross_sell", "popularity", "baselines"
    }  # fmt: skip
    assert set(data["reorder_or_new"]) == set(data["cross_sell"]) == {
        "hit_rate", "recall", "mrr", "customers", "ci95"
    }  # fmt: skip
    assert set(data["popularity"]) == {"reorder_or_new_hit_rate", "cross_sell_hit_rate"}
    assert data["customers"] == 2 and data["k"] == 10


def test_score_lists_definitions() -> None:
    assert metrics.score_lists(["a", "b", "c"], {"c", "d"}, 3) == (1.0, 0.5, 1 / 3)
    assert metrics.score_lists(["a", "b", "c"], {"c"}, 2) == (0.0, 0.0, 0.0)
    assert metrics.score_lists(["a"], set(), 10) == (0.0, 0.0, 0.0)
