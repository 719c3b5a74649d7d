"""Systems of record at pop time: does a live source delay the agent's pop?

    .venv/bin/python -m bench.sources [--calls 150] [--lead-ms 120]   (or ``make bench-sources``)

Starts screenpop (real uvicorn, PostgreSQL with the demo data) three times: without sources,
with an HTTP source answering in 50 ms, and with one that hangs (budget 100 ms). Each run
connects agent alice by websocket and plays --calls calls one after another: ``queued``, then
--lead-ms later ``offered`` to alice; the figure is POST offered sent -> pop frame read, and
whether the offer's pop already carried the source's part. The source is the test CRM
process (tests/sources/crm_server.py) on loopback.

With --sync-customers N it also syncs the README's ERP example from a MariaDB database
(127.0.0.1:3306) of N customers (two phones each, typed as people type them), 4 orders of
3 lines each and 3 invoices per customer into PostgreSQL, twice: rows/s of the first run, and
the second (incremental, nothing changed). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets
from sqlalchemy import select

from app import demo, migrate
from app.customers.models import CustomerPhone
from app.db import create_engine
from app.settings import Settings
from app.sources.config import parse_config
from app.sources.sync import sync_source
from app.users.security import issue_token
from bench.load import percentile
from telephony.generic import sign_generic
from tests.sources.support import (
    CRM_TOKEN,
    EXAMPLE_ENV,
    CrmProcess,
    create_mariadb,
    drop_mariadb,
    examples_config,
    readme_example,
    run_sql,
)
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.server import ServerProcess

SECRET = "bench-webhook-secret"
JWT = "bench-jwt-secret-long-enough-for-hs256-signing"
SOURCE = """
[sources.billing]
kind = "http"
budget_ms = {budget}
timeout_ms = 3000
cache_s = 0
headers = {{ Authorization = "Bearer {token}" }}
[sources.billing.live.balance]
url = "{url}?phone={{e164}}&ms=50"
map = {{ amount = "amount", currency = "currency" }}
"""


async def _post(http: aiohttp.ClientSession, url: str, event: dict[str, Any]) -> None:
    body = orjson.dumps(event)
    headers = {"content-type": "application/json",
               "X-Screenpop-Signature": sign_generic(SECRET, body, int(time.time()))}  # fmt: skip
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 202:
            raise RuntimeError(f"event refused: {response.status}")


async def play(
    server: ServerProcess, callers: list[str], calls: int, lead_s: float
) -> dict[str, Any]:
    token = issue_token(JWT, username="alice", role="agent", ttl_s=3600)
    pops: dict[str, tuple[float, bool]] = {}
    arrived: dict[str, asyncio.Event] = {}
    ws = await websockets.connect(f"{server.ws_url}/ws/agent?token={token}")

    async def read() -> None:
        async for raw in ws:
            message = orjson.loads(raw)
            call_id = (message.get("call") or {}).get("id", "")
            if message.get("type") == "pop" and call_id not in pops:
                parts = {s["name"] for s in message.get("sources") or []}
                pops[call_id] = (time.perf_counter(), "billing" in parts)
                arrived.setdefault(call_id, asyncio.Event()).set()

    reader = asyncio.create_task(read())
    latencies, with_part = [], 0
    url = server.url + "/telephony/generic/events"
    run = f"{os.getpid()}-{time.monotonic_ns()}"
    async with aiohttp.ClientSession() as http:
        for n in range(calls):
            call = f"src-{run}-{n}"
            base = {"call_id": f"{call}", "caller": callers[n % len(callers)],
                    "dialed": "+448081570001"}  # fmt: skip
            await _post(http, url, {**base, "event_id": f"{call}-q", "kind": "queued"})
            await asyncio.sleep(lead_s)
            event = arrived.setdefault(f"generic:{call}", asyncio.Event())
            sent = time.perf_counter()
            await _post(http, url, {**base, "event_id": f"{call}-o", "kind": "offered",
                                    "agent": "alice"})  # fmt: skip
            await asyncio.wait_for(event.wait(), 10)
            at, has_part = pops[f"generic:{call}"]
            latencies.append((at - sent) * 1000)
            with_part += has_part
            await _post(http, url, {**base, "event_id": f"{call}-e", "kind": "abandoned"})
    reader.cancel()
    await ws.close()
    return {
        "calls": calls,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "offer_pops_with_source_part": with_part,
    }


FILL_ERP = """
INSERT INTO customers (customer_no, first_name, last_name, email, lang, newsletter, sales_rep,
  credit_limit, updated_at)
SELECT CONCAT('E-', seq), 'Ann', CONCAT('Lee ', seq), CONCAT('c', seq, '@example.org'), 'en',
  seq % 2, 'maria', 1000, TIMESTAMPADD(SECOND, seq, '2026-01-01') FROM seq_1_to_{n};
INSERT INTO customer_phones (customer_id, phone)
SELECT seq, CONCAT('020 7946 ', LPAD(seq % 10000, 4, '0')) FROM seq_1_to_{n};
INSERT INTO customer_phones (customer_id, phone)
SELECT seq, CONCAT('+44 (0)7700 9', LPAD(seq % 100000, 5, '0')) FROM seq_1_to_{n};
INSERT INTO orders (order_no, customer_id, ordered_at, total, updated_at)
SELECT CONCAT('SO-', seq), 1 + seq % {n}, TIMESTAMPADD(HOUR, seq, '2025-01-01'), 30,
  TIMESTAMPADD(SECOND, seq, '2026-02-01') FROM seq_1_to_{orders};
INSERT INTO order_lines (order_id, line_no, sku, description, qty, unit_price)
SELECT o.seq, l.seq, CONCAT('SKU-', l.seq), 'Widget', 1, 10 FROM seq_1_to_{orders} o
  JOIN seq_1_to_3 l;
INSERT INTO invoices (invoice_no, customer_id, issued_at, due_at, amount, paid, updated_at)
SELECT CONCAT('IN-', seq), 1 + seq % {n}, '2026-10-01', '2026-10-31', 30, 0,
  TIMESTAMPADD(SECOND, seq, '2026-03-01') FROM seq_1_to_{invoices}
"""


async def sync_figures(customers: int) -> dict[str, Any]:
    """Sync the README's ERP example, N customers, from MariaDB into PostgreSQL, twice."""
    erp = await create_mariadb()
    own = await create_pg_database()
    try:
        await run_sql(erp, readme_example("erp-schema"))
        await run_sql(erp, FILL_ERP.format(n=customers, orders=customers * 4,
                                           invoices=customers * 3))  # fmt: skip
        config = parse_config(examples_config(erp, "http://127.0.0.1:9"), EXAMPLE_ENV)
        await migrate.upgrade_async(own)
        engine = create_engine(own)
        try:
            started = time.perf_counter()
            first = await sync_source(engine, "erp", config.sources["erp"])
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            second = await sync_source(engine, "erp", config.sources["erp"])
            second_s = time.perf_counter() - started
        finally:
            await engine.dispose()
        rows = sum(r.rows for r in first.values())
        return {
            "customers": customers,
            "rows": rows,
            "first_s": round(first_s, 1),
            "rows_per_s": round(rows / first_s),
            "second_s": round(second_s, 2),
            "second_rows": sum(r.rows for r in second.values()),
            "bad": sum(len(r.records.bad) for r in first.values()),
        }
    finally:
        await drop_mariadb(erp)
        await drop_pg_database(own)


async def main(calls: int, lead_ms: float) -> dict[str, Any]:
    url = await create_pg_database()
    crm = CrmProcess().start()
    results: dict[str, Any] = {"lead_ms": lead_ms}
    try:
        await migrate.upgrade_async(url)
        await demo.seed(Settings(database_url=url))
        engine = create_engine(url)
        async with engine.connect() as conn:
            query = select(CustomerPhone.e164).where(CustomerPhone.e164.is_not(None)).limit(500)
            callers = [str(e) for e in (await conn.execute(query)).scalars()]
        await engine.dispose()
        env = {"SCREENPOP_DATABASE_URL": url, "SCREENPOP_WEBHOOK_SECRET": SECRET,
               "SCREENPOP_JWT_SECRET": JWT}  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            modes = {
                "no_source": None,
                "source_50ms": SOURCE.format(
                    budget=300, token=CRM_TOKEN, url=crm.url + "/api/delay"
                ),
                "source_hangs_budget_100ms": SOURCE.format(
                    budget=100, token=CRM_TOKEN, url=crm.url + "/api/slow"
                ),
            }
            for name, config in modes.items():
                mode_env = dict(env)
                if config is not None:
                    path = Path(tmp) / f"{name}.toml"
                    path.write_text(config)
                    mode_env["SCREENPOP_SOURCES_FILE"] = str(path)
                with ServerProcess(mode_env) as server:
                    results[name] = await play(server, callers, calls, lead_ms / 1000)
    finally:
        crm.stop()
        await drop_pg_database(url)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--lead-ms", type=float, default=120)
    parser.add_argument("--sync-customers", type=int, default=0)
    args = parser.parse_args()
    figures = asyncio.run(main(args.calls, args.lead_ms)) if args.calls else {}
    if args.sync_customers:
        figures["sync"] = asyncio.run(sync_figures(args.sync_customers))
        print(f"sync: {figures['sync']}")
    for mode in ("no_source", "source_50ms", "source_hangs_budget_100ms"):
        if mode not in figures:
            continue
        f = figures[mode]
        print(
            f"{mode:28} pop p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms; "
            f"offer pops with the source's part: {f['offer_pops_with_source_part']}/{f['calls']}"
        )
    print(json.dumps(figures))
