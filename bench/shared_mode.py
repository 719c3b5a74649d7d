"""Issue 4's benchmark: the full shared retail data imported, 200 agents, 50 and 200 calls/s.

    .venv/bin/python -m bench --customers-from-shared [--duration 30]

The data is imported with the product's own importer (app.customers.importer.import_orders)
into ``screenpop_bench_shared`` (reused when present). Each call is queued, offered 0.5-2 s
later, answered 2 s after the offer and ended 1-4 s after that (4 % abandon while queued).
Besides latency it counts the calls whose pop reached the agent before the answer event was
sent: the target is every one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg

from app import migrate
from app.customers.importer import import_orders
from app.db import create_engine
from bench import dataset
from bench.__main__ import (
    Cluster,
    connect_cluster_agents,
    ingest_ready,
    load_note,
    run_rates,
    say,
    show,
)
from bench.floor import lookup_floor, prewarm, server_floor
from bench.load import EVENTS_PER_CALL, close_agents
from bench.shape import SHARED_FILE

NAME = "screenpop_bench_shared"
MARKER = "screenpop-bench-shared-v1"
CALL_RATES = (50, 200)


async def ensure_shared() -> tuple[str, bool]:
    """The database with the shared file imported; (name, reused)."""
    admin = await asyncpg.connect(dataset.asyncpg_dsn("postgres"))
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            NAME,
        )
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME)
        if exists and comment == MARKER:
            await migrate.upgrade_async(dataset.sqlalchemy_url(NAME))
            return NAME, True
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()
    url = dataset.sqlalchemy_url(NAME)
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    started = time.perf_counter()
    report = await import_orders(engine, SHARED_FILE)
    await engine.dispose()
    say(f"  imported {report.lines_read:,} lines in {time.perf_counter() - started:.0f} s")
    conn = await asyncpg.connect(dataset.asyncpg_dsn(NAME))
    try:
        await conn.execute("ANALYZE")
        await conn.execute(f"COMMENT ON DATABASE \"{NAME}\" IS '{MARKER}'")
    finally:
        await conn.close()
    return NAME, False


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if not SHARED_FILE.exists():
        say(f"{SHARED_FILE} is not on this machine: nothing to import")
        return {"mode": "customers-from-shared", "skipped": "no shared data"}
    say(f"issue 4 benchmark: shared retail data, {args.agents} agents; {load_note()}")
    name, reused = await ensure_shared()
    dsn = dataset.asyncpg_dsn(name)
    await dataset.clear_live_data(dsn)
    await dataset.ensure_agents(dsn, args.agents)
    callers = await dataset.callers(dsn)
    customers = len(callers[0]) + len(callers[1])
    say(f"  {'reused' if reused else 'built'} {name}: {len(callers[0]):,} callable customers")
    await prewarm(dsn)
    (look,) = await lookup_floor([(dsn, callers[0])])
    floor = await server_floor(dsn, callers[0], rate=200, duration=args.floor_duration)
    say(f"  floor: bare lookup p99 {look.p99_ms} ms; event -> lookup -> frame p50 "
        f"{floor.p50_ms} ms p99 {floor.p99_ms} ms")  # fmt: skip
    result: dict[str, Any] = {
        "mode": "customers-from-shared",
        "customers": customers,
        "agents": args.agents,
        "floor_p50_ms": floor.p50_ms,
        "floor_p99_ms": floor.p99_ms,
        "runs": [],
    }
    analyzer = asyncio.create_task(dataset.keep_analyzed(dsn))  # autovacuum is off here
    with Cluster(dataset.sqlalchemy_url(name), 1, None) as cluster:
        missing = await ingest_ready(cluster.servers[0].url)
        if missing:
            say(f"  cannot load the server: {missing}")
            return result
        agents, readers, _per_1k = await connect_cluster_agents(cluster, args.agents)
        try:
            for i, calls in enumerate(CALL_RATES):
                rate = calls * EVENTS_PER_CALL
                say(f"  {calls} calls/s = {rate:.0f} events/s for {args.duration:g} s")
                say(f"    ({load_note()})")
                outcome, fig = await run_rates(
                    cluster, agents, args, callers, rate, args.duration, 200 + i, answer_after_s=2.0
                )
                show(f"{calls} calls/s", fig)
                ok, answered = outcome.popped_before_answer({a.username: a for a in agents})
                say(f"    pops delivered before the answer event: {ok} of {answered}")
                result["runs"].append(
                    {"calls_per_s": calls, "events_per_s": round(rate), **fig,
                     "popped_before_answer": ok, "answered": answered}
                )  # fmt: skip
        finally:
            await close_agents(agents, readers)
    analyzer.cancel()  # (an early return leaves it to the event loop's shutdown)
    return result
