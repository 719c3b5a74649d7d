"""``screenpop evaluate``: score the stored next needs against later purchases.

The protocol is ``metrics.py``'s. Inputs: holdout lines with quantity > 0 and a product code
(postage, fees, manual lines excluded); the customers in the database (by ``external_ref``)
who bought products both before (in the database) and in the holdout file; their
``next_needs`` in rank order (as the profile API shows them).

Beside the model, the same run scores two simple baselines on the same customers:
- ``popularity``: the products bought by most customers in the last 60 days of the database
  (for cross-sell: the most popular ones the customer never bought);
- ``repeat_then_popular``: the customer's own products by orders x exp(-days / 90), then the
  popular ones they never bought.
"""

from __future__ import annotations

import json
import math
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
from app.insights import metrics
from app.insights.history import STREAM_CHUNK, is_product_code
from app.insights.models import NextNeed
from app.settings import Settings

POPULARITY_DAYS = 60


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
    """The evaluation of what ``train`` stored (the README, "Evaluation"), as JSON-ready data."""
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
    model = metrics.score(needs, before, later, k)
    pop_lists = {ref: _popularity(popular, old, k) for ref, old in before.items()}
    own = _own_products(dated, {str(cid) for cid in refs})
    repeat_lists = {
        ref: _baseline(own.get(str(cid), []), popular, before[ref], k)
        for cid, ref in refs.items()
        if ref in before
    }
    pop = metrics.score(pop_lists, before, later, k)
    return {
        "customers": model["reorder_or_new"]["customers"],
        "k": k,
        **model,
        "popularity": {
            "reorder_or_new_hit_rate": pop["reorder_or_new"]["hit_rate"],
            "cross_sell_hit_rate": pop["cross_sell"]["hit_rate"],
        },
        "baselines": {
            "popularity": pop,
            "repeat_then_popular": metrics.score(repeat_lists, before, later, k),
        },
    }


def _popularity(popular: list[str], old: set[str], k: int) -> list[tuple[str, str]]:
    """The k most popular products, then more of the popular ones never bought (k in all)."""
    new = [s for s in popular if s not in old][:k]
    top = [(s, "reorder" if s in old else "cross_sell") for s in popular[:k]]
    return top + [(s, "cross_sell") for s in new if s not in popular[:k]]


def _baseline(own: list[str], popular: list[str], old: set[str], k: int) -> list[tuple[str, str]]:
    """The customer's own products first (re-orders), then popular ones never bought."""
    new = [(s, "cross_sell") for s in islice((s for s in popular if s not in old), k)]
    return [(s, "reorder") for s in own[:k]] + new


def _own_products(dated: list[tuple[Any, str, str]], wanted: set[str]) -> dict[str, list[str]]:
    """Each wanted customer's products by lines x exp(-days since / 90), most first."""
    if not dated:
        return {}
    newest = max(at for at, _, _ in dated)
    heat: dict[str, dict[str, float]] = {}
    for at, sku, cid in dated:
        if cid in wanted:
            days = (newest - at).total_seconds() / 86_400
            mine = heat.setdefault(cid, {})
            mine[sku] = mine.get(sku, 0.0) + math.exp(-days / 90)
    return {
        cid: [sku for sku, _ in sorted(h.items(), key=lambda kv: (-kv[1], kv[0]))]
        for cid, h in heat.items()
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
