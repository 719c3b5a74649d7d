"""The customer-base reports at scale: ``screenpop reports refresh`` and the API's answer times.

    .venv/bin/python -m bench.reports [--customers 1000000] [--requests 300]
    .venv/bin/python -m bench.reports --database screenpop_bench_1m_10m   # an existing database

Without ``--database``, builds (or reuses) ``screenpop_reports_bench`` on the local server:
N customers, each with a synthetic purchase history over two years (first purchase uniform,
a geometric number of invoices, mean 4.5; gaps drawn around the customer's own usual
interval, median 40 days, so some lapse and some come back; 7 % of invoices are returns) and
an insight row (segment, value tier, lifetime values), written with ``COPY``. With
``--database`` it uses that database as it is and writes only the report tables.

Then runs ``screenpop reports refresh`` as its own process (wall seconds and peak RSS of that
process), serves the app (uvicorn, one worker) and times GET ``/api/reports/retention`` (by
month and by segment, JSON and CSV) and ``/api/reports/value``, one request at a time.
Prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import asyncpg
import httpx
import numpy as np

from app import migrate
from app.users.security import issue_token
from tests.support.server import ROOT, ServerProcess

SERVER = "postgresql://postgres@127.0.0.1:5432"
DB = "screenpop_reports_bench"
BUILD_MARK = "screenpop-reports-bench-v1"
CHUNK = 100_000
START = np.datetime64("2009-12-01T00:00:00", "s")
SPAN_DAYS = 730
JWT_SECRET = "bench-jwt-secret-long-enough-for-hs256-signing"
SEGMENTS = ["loyal", "discount", "impulsive", "need-based", "wandering"]
URLS = (
    "/api/reports/retention",
    "/api/reports/retention?by=segment",
    "/api/reports/retention?by=segment&start=2010-06-01&end=2011-05-31",
    "/api/reports/retention?format=csv",
    "/api/reports/value",
)


def orders_chunk(rng: np.random.Generator, first_id: int, customers: range) -> tuple[bytes, int]:
    """COPY text rows of ``orders`` for ``customers``: (id, customer, invoice, at, return, 0)."""
    n = len(customers)
    invoices = np.minimum(rng.geometric(0.22, n), 60)
    usual = rng.lognormal(np.log(40.0), 0.8, n)
    owner = np.repeat(np.asarray(customers, dtype=np.int64), invoices)
    gaps = rng.exponential(np.repeat(usual, invoices))
    first = np.repeat(rng.uniform(0, SPAN_DAYS, n), invoices)
    starts = np.repeat(np.cumsum(invoices) - invoices, invoices)
    gaps[starts == np.arange(len(gaps))] = 0.0  # the first invoice is on the first day
    cumulative = np.cumsum(gaps)
    days = first + cumulative - np.repeat(cumulative[np.cumsum(invoices) - invoices], invoices)
    keep = days < SPAN_DAYS  # a history runs to the end of the data at most
    owner, days = owner[keep], days[keep]
    seconds = (days * 86_400).astype(np.int64) + rng.integers(8 * 3600, 18 * 3600, len(days))
    at = np.datetime_as_string(START + seconds.astype("timedelta64[s]"), unit="s")
    returns = rng.random(len(days)) < 0.07
    ids = range(first_id, first_id + len(days))
    lines = [
        f"{i}\t{c}\t{'C' if r else 'B'}{i}\t{t}+00\t{'t' if r else 'f'}\t0\n"
        for i, c, t, r in zip(ids, owner.tolist(), at.tolist(), returns.tolist(), strict=True)
    ]
    return "".join(lines).encode(), len(days)


async def build(customers: int) -> str:
    """The synthetic database (reused when a finished build of that size is there)."""
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB):
            await admin.execute(f'CREATE DATABASE "{DB}"')
        mark = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", DB
        )
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"
    await migrate.upgrade_async(url)
    if mark == f"{BUILD_MARK} {customers}":
        return url
    conn = await asyncpg.connect(f"{SERVER}/{DB}")
    try:
        await conn.execute("TRUNCATE customers CASCADE")
        await conn.execute(
            "INSERT INTO customers (id, external_ref, name, customer_type, language,"
            " marketing_consent, created_at, emails, attributes)"
            " SELECT g, 'R-' || g, 'Customer ' || g, 'consumer', 'en', false, now(), '[]', '{}'"
            " FROM generate_series(1, $1::int) AS g",
            customers,
        )
        rng = np.random.default_rng(24)
        next_id = 1
        for lo in range(1, customers + 1, CHUNK):
            data, rows = orders_chunk(rng, next_id, range(lo, min(lo + CHUNK, customers + 1)))
            next_id += rows
            await conn.copy_to_table(
                "orders",
                source=io.BytesIO(data),
                columns=["id", "customer_id", "invoice_no", "ordered_at", "is_return", "total"],
            )
        await conn.execute(
            "INSERT INTO customer_insights (customer_id, clv_historic, clv_forecast, value_tier,"
            " potential, segment, stage, churn_risk, details, computed_at)"
            " SELECT g, round((random() * 2000)::numeric, 2), round((random() * 900)::numeric, 2),"
            " (ARRAY['high', 'medium', 'medium', 'low', 'low'])[1 + g % 5], false,"
            " ($2::text[])[1 + (g / 7) % 5], 'commitment', 0.2, '{}', now()"
            " FROM generate_series(1, $1::int) AS g",
            customers,
            SEGMENTS,
        )
        await conn.execute("ANALYZE customers; ANALYZE orders; ANALYZE customer_insights")
        await conn.execute(f"COMMENT ON DATABASE \"{DB}\" IS '{BUILD_MARK} {customers}'")
    finally:
        await conn.close()
    return url


async def sizes(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return {
            "customers": await conn.fetchval("SELECT count(*) FROM customers"),
            "orders": await conn.fetchval("SELECT count(*) FROM orders"),
        }
    finally:
        await conn.close()


def refresh(url: str) -> dict[str, Any]:
    """``screenpop reports refresh`` in its own process: its summary, wall time and peak RSS."""
    env = {**os.environ, "SCREENPOP_DATABASE_URL": url, "SCREENPOP_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "reports", "refresh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024), **summary}


def answer_times(url: str, requests: int) -> dict[str, Any]:
    """p50/p99 in ms per URL, one request at a time against a served app."""
    env = {"SCREENPOP_DATABASE_URL": url, "SCREENPOP_JWT_SECRET": JWT_SECRET}
    token = issue_token(JWT_SECRET, username="bench-supervisor", role="supervisor", ttl_s=3600)
    out: dict[str, Any] = {}
    with ServerProcess(env) as server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {token}"}
        for path in URLS:
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                response = http.get(path, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            times.sort()
            out[path] = {
                "p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(times[max(int(len(times) * 0.99) - 1, 0)], 2),
                "bytes": len(response.content),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database", help="use this database on the local server as it is")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.database:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{args.database}"
    else:
        url = asyncio.run(build(args.customers))
    built_s = round(time.perf_counter() - started, 1)
    result = {
        "database": url.rsplit("/", 1)[1],
        "build_s": built_s,
        **asyncio.run(sizes(url)),
        "refresh": refresh(url),
        "api": answer_times(url, args.requests),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
