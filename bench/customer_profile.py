"""Time caller matching and profile assembly on PostgreSQL at scale (the pop's hot path).

    .venv/bin/python -m bench.customer_profile [--customers 1000000] [--samples 2000]
        [--file ../shared/data/retail_train.csv.gz | --no-import]
    .venv/bin/python -m bench.customer_profile --database screenpop_bench_1m_10m [--samples 2000]

Without ``--database``, builds a fresh database (dropped at the end): the shared retail file
imported (real order histories), then padded with synthetic customers (one phone, an account,
orders with lines, a touch point, insights and next needs) up to ``--customers``. Then, for
random customers, one at a time as a pop would: ``resolve_caller`` by E.164,
``assemble_identity``, ``assemble_profile``. Prints p50/p95/p99/max in milliseconds and one
JSON line. ``--database NAME`` only reads an existing database on the same server (e.g. one
built by ``bench/dataset.py``): no import, no padding, nothing written or dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrate
from app.customers import service
from app.customers.importer import import_orders
from app.db import create_engine, create_sessionmaker
from telephony.callerid import normalise
from tests.support.databases import PG_DSN, create_pg_database, drop_pg_database

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "retail_train.csv.gz"
CHUNK = 100_000

PAD_SQL = [
    """INSERT INTO customers (id, external_ref, name, customer_type, language,
           marketing_consent, country, created_at)
       SELECT g, 'S' || g, 'Synthetic Customer ' || g, 'consumer', 'en', g % 3 = 0,
              'United Kingdom', now() - (g % 900) * interval '1 day'
       FROM generate_series({lo}, {hi}) g""",
    """INSERT INTO customer_phones (customer_id, raw, e164, last_digits, label)
       SELECT g, '+4479' || lpad(g::text, 8, '0'), '+4479' || lpad(g::text, 8, '0'),
              right(lpad(g::text, 8, '0'), 9), 'main'
       FROM generate_series({lo}, {hi}) g""",
    """INSERT INTO accounts (customer_id, balance, credit_limit, currency, status)
       SELECT g, (g % 500)::numeric, 500, 'GBP', 'active' FROM generate_series({lo}, {hi}) g""",
    """INSERT INTO orders (id, customer_id, invoice_no, ordered_at, is_return, total, country)
       SELECT {obase} + (g - {lo}) * {k} + o, g, 'S' || g || '-' || o,
              now() - ((g + o * 37) % 700) * interval '1 day', o = {k} AND g % 7 = 0,
              12.5, 'United Kingdom'
       FROM generate_series({lo}, {hi}) g, generate_series(1, {k}) o""",
    """INSERT INTO order_lines (order_id, line_no, sku, description, quantity, unit_price)
       SELECT {obase} + (g - {lo}) * {k} + o, l, 'SKU' || ((g * 7 + l) % 3000),
              'Synthetic item ' || l, l, 2.5
       FROM generate_series({lo}, {hi}) g, generate_series(1, {k}) o,
            generate_series(1, {lines}) l""",
    """INSERT INTO interactions (customer_id, channel, agent, disposition, notes, satisfaction,
           offer_outcomes, created_at)
       SELECT g, 'phone', 'alice', 'query', 'synthetic', 1 + g % 5, '[]'::jsonb,
              now() - (g % 300) * interval '1 day'
       FROM generate_series({lo}, {hi}) g""",
    """INSERT INTO customer_insights (customer_id, clv_historic, clv_forecast, value_tier,
           potential, segment, stage, churn_risk, satisfaction_trend, treatment, details,
           computed_at)
       SELECT g, 100, 50, 'medium', false, 'loyal', 'commitment', 0.1, 'stable', NULL,
              '{{}}'::jsonb, now()
       FROM generate_series({lo}, {hi}) g""",
    """INSERT INTO next_needs (customer_id, rank, sku, name, kind, score, reason, may_offer,
           computed_at)
       SELECT g, r, 'SKU' || ((g + r) % 3000), 'Product ' || r,
              CASE WHEN r % 2 = 0 THEN 'cross_sell' ELSE 'reorder' END, 1.0 / r,
              'bought 3 times', true, now()
       FROM generate_series({lo}, {hi}) g, generate_series(1, {needs}) r""",
]


async def pad(engine: AsyncEngine, customers: int, orders_each: int, lines_each: int) -> int:
    """Add synthetic customers up to ``customers`` in total; returns how many were added."""
    async with engine.begin() as conn:
        have = int((await conn.execute(text("SELECT count(*) FROM customers"))).scalar_one())
        first = int(
            (await conn.execute(text("SELECT coalesce(max(id),0)+1 FROM customers"))).scalar_one()
        )
        obase = int(
            (await conn.execute(text("SELECT coalesce(max(id),0) FROM orders"))).scalar_one()
        )
    todo = max(0, customers - have)
    for lo in range(first, first + todo, CHUNK):
        hi = min(lo + CHUNK, first + todo) - 1
        params = {
            "lo": lo,
            "hi": hi,
            "k": orders_each,
            "lines": lines_each,
            "needs": 6,
            "obase": obase + (lo - first) * orders_each,
        }
        async with engine.begin() as conn:
            for sql in PAD_SQL:
                # Only integers we computed are formatted in: no injection surface.
                await conn.execute(text(sql.format(**params)))
        print(f"  padded to {have + hi - first + 1:,} customers", file=sys.stderr, flush=True)
    async with engine.begin() as conn:
        for table in (
            "customers",
            "customer_phones",
            "accounts",
            "orders",
            "order_lines",
            "interactions",
            "next_needs",
        ):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
            )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    return todo


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p95": _pct(values, 0.95),
        "p99": _pct(values, 0.99),
        "max": round(max(values), 2),
    }


async def measure(engine: AsyncEngine, samples: int) -> dict[str, Any]:
    factory = create_sessionmaker(engine)
    async with engine.connect() as conn:
        phones = (
            (
                await conn.execute(
                    text(
                        "SELECT e164 FROM customer_phones TABLESAMPLE SYSTEM (1) "
                        "WHERE e164 IS NOT NULL LIMIT :n"
                    ),
                    {"n": samples * 4},
                )
            )
            .scalars()
            .all()
        )
        if len(phones) < samples:  # a small table: its 1 % sample holds too few numbers
            query = text("SELECT e164 FROM customer_phones WHERE e164 IS NOT NULL LIMIT :n")
            phones = (await conn.execute(query, {"n": samples * 4})).scalars().all()
    numbers = random.Random(7).sample(list(phones), min(samples, len(phones)))
    timings: dict[str, list[float]] = {"match": [], "identity": [], "profile": [], "pop": []}
    kinds: dict[str, int] = {}
    for number in numbers:
        async with factory() as session:
            t0 = time.perf_counter()
            match = await service.resolve_caller(session, normalise(number))
            t1 = time.perf_counter()
            kinds[match.kind] = kinds.get(match.kind, 0) + 1
            cid = match.customer_id or (match.candidates[0]["id"] if match.candidates else None)
            if cid is None:
                continue
            await service.assemble_identity(session, cid)
            t2 = time.perf_counter()
            await service.assemble_profile(session, cid)
            t3 = time.perf_counter()
        timings["match"].append((t1 - t0) * 1000)
        timings["identity"].append((t2 - t1) * 1000)
        timings["profile"].append((t3 - t2) * 1000)
        timings["pop"].append((t1 - t0 + t3 - t2) * 1000)
    return {"samples": len(numbers), "kinds": kinds, **{k: _summary(v) for k, v in timings.items()}}


async def seq_scans(engine: AsyncEngine) -> list[str]:
    """EXPLAIN every statement of one match + profile; the plan lines that scan a whole table."""
    statements: list[tuple[str, Any]] = []

    def _capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    factory = create_sessionmaker(engine)
    async with engine.connect() as conn:
        number = (
            await conn.execute(
                text("SELECT e164 FROM customer_phones WHERE e164 IS NOT NULL LIMIT 1")
            )
        ).scalar_one()
    event.listen(engine.sync_engine, "before_cursor_execute", _capture)
    try:
        async with factory() as session:
            match = await service.resolve_caller(session, normalise(number))
            await service.assemble_profile(session, match.candidates[0]["id"])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", _capture)
    found = []
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        for statement, params in statements:
            for row in await driver.fetch("EXPLAIN " + statement, *(params or ())):
                if "Seq Scan" in row[0]:
                    found.append(row[0].strip())
    return found


async def measure_existing(name: str, samples: int) -> dict[str, Any]:
    """Read-only: plans and timings on an existing database (nothing built, padded or dropped)."""
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    engine = create_engine(f"{base}/{name}")
    try:
        scans = await seq_scans(engine)
        await measure(engine, 50)
        result = await measure(engine, samples)
    finally:
        await engine.dispose()
    return {"database": name, "seq_scans": scans, **result}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.database:
        return await measure_existing(args.database, args.samples)
    url = await create_pg_database()
    try:
        await migrate.upgrade_async(url)
        engine = create_engine(url)
        if not args.no_import:
            started = time.perf_counter()
            report = await import_orders(engine, args.file)
            print(
                f"  imported {report.lines_read:,} lines in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
        added = await pad(engine, args.customers, args.orders, args.lines)
        async with engine.connect() as conn:
            sizes = {
                t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
                for t in ("customers", "orders", "order_lines", "next_needs")
            }
        scans = await seq_scans(engine)
        # Warm the connection pool and caches once, as a running service would be.
        await measure(engine, 50)
        result = await measure(engine, args.samples)
        await engine.dispose()
    finally:
        await drop_pg_database(url)
    return {"synthetic_customers": added, "rows": sizes, "seq_scans": scans, **result}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=4, help="orders per synthetic customer")
    parser.add_argument("--lines", type=int, default=3, help="lines per synthetic order")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument(
        "--database", help="measure this existing database only (read-only; no build, no drop)"
    )
    args = parser.parse_args()
    if not args.database and not args.no_import and not args.file.exists():
        sys.exit(f"{args.file} not found; pass --no-import to use synthetic customers only")
    result = asyncio.run(main(args))
    for part in ("match", "identity", "profile", "pop"):
        f = result[part]
        print(
            f"{part:>9}: p50 {f['p50']} ms  p95 {f['p95']} ms  p99 {f['p99']} ms  max {f['max']} ms"
        )
    print(f"sequential scans in the hot-path plans: {result['seq_scans'] or 'none'}")
    print(json.dumps(result))
