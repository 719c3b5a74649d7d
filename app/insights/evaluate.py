"""``screenpop evaluate``: score the stored next needs against later purchases (DESIGN.md).

Protocol:
- holdout lines: quantity > 0 and a product code (postage, fees, manual lines excluded);
- customers: those in the database (by ``external_ref``) who bought products both before (in the
  database) and in the holdout file;
- ``reorder_or_new``: the first k of the customer's ``next_needs`` (rank order, both kinds)
  against every product they bought in the holdout;
- ``cross_sell``: the first k suggestions of kind ``cross_sell`` against the products they bought
  in the holdout and never before (a customer with none counts as a miss);
- per customer: hit = at least one of the k was bought; recall = hits / min(k, relevant);
  reciprocal rank = 1 / position of the first hit (0 without one); each averaged over customers;
- ``popularity``: the same hit rates for the k products bought by most customers in the last
  60 days of the database (for ``cross_sell``: the most popular the customer never bought).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import BadRow, ImportFileError, open_text, parse_rows
from app.customers.models import Customer, Order, OrderLine
from app.db import create_engine
from app.insights.history import STREAM_CHUNK, is_product_code
from app.insights.models import NextNeed
from app.settings import Settings

POPULARITY_DAYS = 60


def score_lists(
    predictions: Sequence[str], relevant: set[str], k: int
) -> tuple[float, float, float]:
    """(hit, recall, reciprocal rank) of the first ``k`` predictions for one customer."""
    if not relevant:
        return 0.0, 0.0, 0.0
    top = list(predictions)[:k]
    positions = [n for n, sku in enumerate(top, start=1) if sku in relevant]
    if not positions:
        return 0.0, 0.0, 0.0
    return 1.0, len(positions) / min(k, len(relevant)), 1.0 / positions[0]


def _mean(rows: list[tuple[float, float, float]]) -> dict[str, float]:
    n = max(len(rows), 1)
    return {
        "hit_rate": round(sum(r[0] for r in rows) / n, 4),
        "recall": round(sum(r[1] for r in rows) / n, 4),
        "mrr": round(sum(r[2] for r in rows) / n, 4),
    }


def read_holdout(path: Path) -> tuple[dict[str, set[str]], list[BadRow]]:
    """Products bought per customer ref in the holdout file (protocol filters applied)."""
    bought: dict[str, set[str]] = {}
    bad: list[BadRow] = []
    with open_text(path) as fh:
        for row in parse_rows(fh, bad):
            if row.quantity > 0 and is_product_code(row.sku):
                bought.setdefault(row.customer_ref, set()).add(row.sku)
    return bought, bad


async def evaluate(engine: AsyncEngine, holdout: Path, k: int = 10) -> dict[str, Any]:
    """The DESIGN.md evaluation of what ``train`` stored, as the JSON-ready dict."""
    later, _bad = read_holdout(holdout)
    async with engine.connect() as conn:
        refs: dict[int, str] = {}
        query = select(Customer.id, Customer.external_ref).where(Customer.external_ref.is_not(None))
        async for part0 in (await conn.stream(query)).partitions(STREAM_CHUNK):
            for cid, ref in part0:
                if ref in later:
                    refs[cid] = ref
        before: dict[str, set[str]] = {}
        dated: list[tuple[Any, str, str]] = []
        lines = (
            select(Order.customer_id, OrderLine.sku, Order.ordered_at)
            .join(OrderLine, OrderLine.order_id == Order.id)
            .where(OrderLine.quantity > 0, Order.is_return.is_(False))
        )
        async for part1 in (await conn.stream(lines)).partitions(STREAM_CHUNK):
            for cid, sku, at in part1:
                if not is_product_code(sku):
                    continue
                dated.append((at, sku, str(cid)))
                ref = refs.get(cid)
                if ref is not None:
                    before.setdefault(ref, set()).add(sku)
        needs: dict[str, list[tuple[str, str]]] = {}
        query_needs = select(NextNeed.customer_id, NextNeed.sku, NextNeed.kind).order_by(
            NextNeed.customer_id, NextNeed.rank
        )
        async for part2 in (await conn.stream(query_needs)).partitions(STREAM_CHUNK):
            for cid, sku, kind in part2:
                ref = refs.get(cid)
                if ref is not None:
                    needs.setdefault(ref, []).append((sku, kind))

    popular = _popular(dated)
    customers = sorted(ref for ref in later if ref in before)
    any_rows, cross_rows, pop_any, pop_cross = [], [], [], []
    for ref in customers:
        bought, old = later[ref], before[ref]
        new = bought - old
        preds = needs.get(ref, [])
        any_rows.append(score_lists([s for s, _ in preds], bought, k))
        cross_rows.append(score_lists([s for s, kind in preds if kind == "cross_sell"], new, k))
        pop_any.append(score_lists(popular[:k], bought, k))
        pop_cross.append(score_lists(list(islice((s for s in popular if s not in old), k)), new, k))
    return {
        "customers": len(customers),
        "k": k,
        "reorder_or_new": _mean(any_rows),
        "cross_sell": _mean(cross_rows),
        "popularity": {
            "reorder_or_new_hit_rate": _mean(pop_any)["hit_rate"],
            "cross_sell_hit_rate": _mean(pop_cross)["hit_rate"],
        },
    }


def _popular(dated: list[tuple[Any, str, str]]) -> list[str]:
    """Products by distinct buyers in the last ``POPULARITY_DAYS`` of the database, most first."""
    if not dated:
        return []
    newest = max(at for at, _, _ in dated)
    start = newest - timedelta(days=POPULARITY_DAYS)
    buyers: dict[str, set[str]] = {}
    for at, sku, cid in dated:
        if at >= start:
            buyers.setdefault(sku, set()).add(cid)
    # Ties broken by sku so the baseline is deterministic.
    return [sku for sku, _ in sorted(buyers.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


async def run_cli(settings: Settings, holdout: Path, k: int, console: Console) -> None:
    """`screenpop evaluate --holdout FILE [--k 10]`: the JSON line is the last line of stdout."""
    import typer

    if k < 1:
        console.print("[red]--k must be at least 1[/red]")
        raise typer.Exit(2)
    engine = create_engine(settings.database_url)
    try:
        result = await evaluate(engine, holdout, k)
    except ImportFileError as exc:
        console.print(f"[red]cannot read the holdout:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        await engine.dispose()
    console.print(
        f"[bold]evaluate[/bold] {result['customers']} customers, k={k}: "
        f"reorder_or_new hit {result['reorder_or_new']['hit_rate']}, "
        f"cross_sell hit {result['cross_sell']['hit_rate']}"
    )
    print(json.dumps(result), flush=True)
