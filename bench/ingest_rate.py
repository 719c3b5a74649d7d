"""Events per second through ``POST /telephony/generic/events`` into the journal (PostgreSQL).

    .venv/bin/python -m bench.ingest_rate [--seconds 20] [--concurrency 16]

Starts a real server on a fresh PostgreSQL database with the demo customers, posts signed
generic events as fast as the server takes them (closed loop: ``--concurrency`` requests in
flight; each call is queued -> offered -> answered -> ended, callers drawn from the demo
customers), then counts the journal rows to check that every accepted event was written.
Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from typing import Any

import aiohttp
import orjson
from sqlalchemy import func, select

from app import demo, migrate
from app.calls.models import CallEventRecord
from app.customers.models import CustomerPhone
from app.db import create_engine
from app.settings import Settings
from telephony.generic import sign_generic
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.server import ServerProcess

SECRET = "bench-webhook-secret"


def call_events(n: int, caller: str) -> list[dict[str, Any]]:
    call = f"bench-{os.getpid()}-{n}"
    return [
        {"event_id": f"{call}-{i}", "call_id": call, "kind": kind, "caller": caller,
         "dialed": "+448081570001", **({"agent": "201"} if kind != "queued" else {})}
        for i, kind in enumerate(("queued", "offered", "answered", "ended"))
    ]  # fmt: skip


async def post_events(
    url: str, seconds: float, concurrency: int, callers: list[str]
) -> dict[str, Any]:
    counter = itertools.count()
    accepted = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal accepted, errors
        while time.perf_counter() < deadline:
            n = next(counter)
            for event in call_events(n, callers[n % len(callers)]):
                body = orjson.dumps(event)
                headers = {
                    "content-type": "application/json",
                    "X-Screenpop-Signature": sign_generic(SECRET, body, int(time.time())),
                }
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    latencies.append(time.perf_counter() - started)
                    if response.status == 202:
                        accepted += 1
                    else:
                        errors += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "accepted": accepted,
        "errors": errors,
        "seconds": round(elapsed, 1),
        "events_per_s": round(accepted / elapsed),
        "post_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "post_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
    }


async def main(seconds: float, concurrency: int) -> dict[str, Any]:
    url = await create_pg_database()
    engine = create_engine(url)
    try:
        await migrate.upgrade_async(url)
        await demo.seed(Settings(database_url=url))
        async with engine.connect() as conn:
            callers = [
                e164
                for e164 in (await conn.execute(select(CustomerPhone.e164).limit(300))).scalars()
                if e164 is not None
            ]
        env = {
            "SCREENPOP_DATABASE_URL": url,
            "SCREENPOP_WEBHOOK_SECRET": SECRET,
            "SCREENPOP_JWT_SECRET": "bench-jwt-secret-long-enough-for-hs256-signing",
        }
        with ServerProcess(env) as server:
            result = await post_events(
                server.url + "/telephony/generic/events", seconds, concurrency, callers
            )
        async with engine.connect() as conn:
            journal = (
                await conn.execute(select(func.count()).select_from(CallEventRecord))
            ).scalar_one()
        result["journal_rows"] = journal
        result["concurrency"] = concurrency
        return result
    finally:
        await engine.dispose()
        await drop_pg_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    figures = asyncio.run(main(args.seconds, args.concurrency))
    print(
        f"{figures['events_per_s']} events/s accepted ({figures['accepted']} in "
        f"{figures['seconds']} s, {figures['errors']} errors); "
        f"journal rows {figures['journal_rows']}; "
        f"POST p50 {figures['post_p50_ms']} ms, p99 {figures['post_p99_ms']} ms"
    )
    print(json.dumps(figures))
