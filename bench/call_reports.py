"""Time the call reports (offers made in calls, satisfaction) on PostgreSQL at scale.

    .venv/bin/python -m bench.call_reports [--interactions 1000000] [--samples 20]
        [--database screenpop_bench_reports] [--keep | --reuse]

Builds a database ``--database`` on the machine's PostgreSQL (``SCREENPOP_TEST_PG_DSN``'s
server; dropped at the end unless ``--keep``; ``--reuse`` measures a kept one again): 10 queues
(and calls with no queue), 200 agents, 3,000 products, and ``--interactions`` wrap-ups over the
last 365 days, each on its own call but one in twenty a second leg of a transferred call
(3 % of calls name no queue); a third carry one to three offers (accepted, declined or not
offered), two in five a grade (1-5, by the caller or the agent).
Then rolls up the ended days (``call_rollup.ensure_rolled_up``: the first roll-up, timed; then
yesterday again, the daily increment, timed), asks the API (the app with its lifespan, over
ASGI) for each report over the last month and over the last year, as an admin (every queue)
and as a supervisor of three queues, and prints p50/p99/max in milliseconds and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import and_, delete, insert, or_, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrate
from app.db import create_engine
from app.main import create_app
from app.reports import call_rollup
from app.reports.call_period import add_months
from app.reports.models import CallRollup
from app.settings import Settings
from app.users import security
from app.users.models import User
from tests.support.databases import PG_DSN

CHUNK = 200_000
QUEUES = 10
AGENTS = 200
PRODUCTS = 3000
SAM = ["q1", "q2", "q3"]  # the supervisor's queues
JWT_SECRET = "bench-jwt-secret-that-is-long-enough-for-hs256"

FILL_SQL = [
    """INSERT INTO products (sku, name)
       SELECT 'SKU' || g, 'Product ' || g FROM generate_series(0, {products} - 1) g""",
    # One call per wrap-up, except that one in twenty is the second leg of the call before.
    """INSERT INTO calls (id, source, channel, state, caller_raw, caller_withheld, queue,
           agent, offered_to, match, pop_version, first_seen_at, version)
       SELECT 'bench:' || g, 'bench', 'phone', 'ended', '', false,
              CASE WHEN random() < 0.03 THEN NULL ELSE 'q' || floor(random() * {queues}) END,
              NULL, '[]'::jsonb, '{{}}'::jsonb, 1, now() - random() * interval '365 days', 1
       FROM generate_series({lo}, {hi}) g WHERE g % 20 <> 1""",
    # Offers favour the first products (as sales do); random() per row of the CTE. The agent
    # is a function of g, so the two legs of a transferred call have different agents.
    """WITH w AS (
           SELECT g, random() AS graded, random() AS offers, random() AS at
           FROM generate_series({lo}, {hi}) g
       )
       INSERT INTO interactions (customer_id, channel, call_id, agent, queue, disposition,
           satisfaction, satisfaction_kind, offer_outcomes, created_at)
       SELECT NULL, 'phone', 'bench:' || (CASE WHEN g % 20 = 1 THEN g - 1 ELSE g END),
              'agent' || ((g / 20 * 37 + g % 20 * 53) % {agents}),
              (SELECT queue FROM calls
               WHERE id = 'bench:' || (CASE WHEN g % 20 = 1 THEN g - 1 ELSE g END)),
              'done',
              CASE WHEN graded < 0.4 THEN 1 + floor(graded * 12.5) END,
              CASE WHEN graded < 0.1 THEN 'caller' WHEN graded < 0.4 THEN 'agent' END,
              CASE WHEN offers < 0.33 THEN (
                  SELECT jsonb_agg(jsonb_build_object(
                      'sku', 'SKU' || floor(power(random(), 2) * {products}),
                      'outcome', (ARRAY['accepted', 'declined', 'declined', 'not_offered'])
                                 [1 + floor(random() * 4)::int]))
                  FROM generate_series(1, 1 + g % 3) o)
              ELSE '[]'::jsonb END,
              now() - at * interval '365 days'
       FROM w""",
]


async def fill(engine: AsyncEngine, interactions: int) -> None:
    """Products, calls and ``interactions`` wrap-ups, in chunks; then ANALYZE."""
    sizes = {"products": PRODUCTS, "queues": QUEUES, "agents": AGENTS}
    async with engine.begin() as conn:
        await conn.execute(text(FILL_SQL[0].format(**sizes)))
    for lo in range(0, interactions, CHUNK):
        hi = min(lo + CHUNK, interactions) - 1
        async with engine.begin() as conn:
            for sql in FILL_SQL[1:]:
                # Only integers we computed are formatted in: no injection surface.
                await conn.execute(text(sql.format(lo=lo, hi=hi, **sizes)))
        print(f"  {hi + 1:,} wrap-ups", file=sys.stderr, flush=True)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    async with engine.begin() as conn:
        await conn.execute(
            insert(User),
            [
                {"username": "root", "password_hash": "!", "role": "admin", "queues": []},
                {"username": "sam", "password_hash": "!", "role": "supervisor", "queues": SAM},
            ],
        )


@asynccontextmanager
async def database(name: str, keep: bool) -> AsyncIterator[str]:
    """A new database ``name`` (refused if it exists), dropped afterwards unless ``keep``."""
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            conn = await asyncpg.connect(PG_DSN, timeout=5)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max": round(ordered[-1], 1),
    }


def cases(today: date) -> list[tuple[str, str, dict[str, str]]]:
    """(label, report, query) for each report, by, and range (last month, last year)."""
    month = {"start": (today - timedelta(days=30)).isoformat(), "end": today.isoformat()}
    year = {"start": (today - timedelta(days=364)).isoformat(), "end": today.isoformat()}
    found = []
    for report, bys in (("offers", ("product", "agent")), ("satisfaction", ("queue", "agent"))):
        for by in bys:
            for span, period in (("month", month), ("year", year)):
                found.append((f"{report} by {by}, {span}", report, {"by": by, **period}))
    return found


async def time_rollup(url: str, timezone: str) -> dict[str, float]:
    """Seconds of the first roll-up (every ended day) and of one day's (yesterday's again)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:  # from scratch, as a new install would
            for table in (*call_rollup.TABLES, CallRollup):
                await conn.execute(delete(table))
        now = datetime.now(UTC)
        started = time.perf_counter()
        await call_rollup.ensure_rolled_up(engine, timezone, now)
        first = time.perf_counter() - started
        today = now.astimezone(ZoneInfo(timezone)).date()
        yesterday = today - timedelta(days=1)
        async with engine.begin() as conn:  # forget yesterday (and its month, if it ended)
            for table in call_rollup.TABLES:
                await conn.execute(
                    delete(table).where(
                        or_(
                            table.day == yesterday,
                            and_(table.whole_month, table.day == add_months(yesterday, 0)),
                        )
                    )
                )
            await conn.execute(update(CallRollup).values(rolled_to=yesterday))
        started = time.perf_counter()
        await call_rollup.ensure_rolled_up(engine, timezone, now)
        return {"first_s": round(first, 2), "one_day_s": round(time.perf_counter() - started, 3)}
    finally:
        await engine.dispose()


async def measure(url: str, samples: int) -> dict[str, Any]:
    settings = Settings(database_url=url, jwt_secret=JWT_SECRET, log_json=False)
    results: dict[str, Any] = {"rollup": await time_rollup(url, settings.timezone)}
    app = create_app(settings)
    key = settings.jwt_key()
    users = {"admin": ("root", "admin"), "supervisor of 3 queues": ("sam", "supervisor")}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for who, (username, role) in users.items():
                token = security.issue_token(key, username=username, role=role, ttl_s=3600)
                headers = {"Authorization": f"Bearer {token}"}
                for label, report, query in cases(datetime.now(UTC).date()):
                    timings = []
                    for n in range(samples + 2):  # two warm-up requests
                        t0 = time.perf_counter()
                        response = await http.get(
                            f"/api/reports/{report}", params=query, headers=headers
                        )
                        elapsed = (time.perf_counter() - t0) * 1000
                        response.raise_for_status()
                        if n >= 2:
                            timings.append(elapsed)
                    rows = len(response.json()["rows"])
                    results[f"{who}: {label}"] = {**_summary(timings), "rows": rows}
    return results


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.reuse:
        base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{base}/{args.database}"
        started = time.perf_counter()
        await migrate.upgrade_async(url)
        migrated = round(time.perf_counter() - started, 1)
        return {
            "database": args.database,
            "migrate_s": migrated,
            **await measure(url, args.samples),
        }
    async with database(args.database, args.keep) as url:
        await migrate.upgrade_async(url)
        engine = create_engine(url)
        started = time.perf_counter()
        await fill(engine, args.interactions)
        print(f"  filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        await engine.dispose()
        return {"interactions": args.interactions, **await measure(url, args.samples)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20, help="requests per case")
    parser.add_argument("--database", default="screenpop_bench_reports")
    parser.add_argument("--keep", action="store_true", help="leave the database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    for label, f in result.items():
        if isinstance(f, dict) and "p50" in f:
            print(f"{label:>50}: p50 {f['p50']} ms  p99 {f['p99']} ms  max {f['max']} ms")
    print(json.dumps(result))
