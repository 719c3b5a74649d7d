"""Customer search on PostgreSQL at scale: ``python -m bench.customer_search [--customers N]``.

Builds (or reuses) a database ``screenpop_search_bench`` on the local server with N customers
(default 1,000,000): fictional names, e-mails, references and one phone number each, migrated
with the project's migrations (so the ``pg_trgm`` indexes are the real ones). Then times
``search_customers`` for the kinds of query an agent types, each repeated, and prints one JSON
object as the last line: per kind, p50 and p95 in milliseconds and the rows found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.customers import search
from app.customers.fiction import FIRST, LAST
from app.db import create_engine

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = "screenpop_search_bench"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"


async def build(customers: int) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{DB}"')
    finally:
        await admin.close()
    await migrate.upgrade_async(URL)
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB}")
    try:
        have = await conn.fetchval("SELECT count(*) FROM customers")
        if have >= customers:
            return
        await conn.execute("TRUNCATE customers CASCADE")
        firsts, lasts = list(FIRST), list(LAST)
        await conn.execute(
            """
            INSERT INTO customers (id, external_ref, name, customer_type, language,
                                   marketing_consent, email, created_at)
            SELECT g, 'B-' || g,
                   ($1::text[])[1 + g % cardinality($1::text[])] || ' ' ||
                   ($2::text[])[1 + (g / 7) % cardinality($2::text[])] || ' ' || g,
                   'consumer', 'en', g % 3 = 0,
                   'user' || g || '@example.com', now()
            FROM generate_series(1, $3::int) AS g
            """,
            firsts,
            lasts,
            customers,
        )
        await conn.execute(
            """
            INSERT INTO customer_phones (customer_id, raw, e164, last_digits, label)
            SELECT g, '+447' || lpad(g::text, 9, '0'), '+447' || lpad(g::text, 9, '0'),
                   lpad(g::text, 9, '0'), 'main'
            FROM generate_series(1, $1::int) AS g
            """,
            customers,
        )
        await conn.execute("SELECT setval('customers_id_seq', $1)", customers)
        await conn.execute("ANALYZE customers; ANALYZE customer_phones")
    finally:
        await conn.close()


QUERIES: dict[str, list[str]] = {
    "name_part": ["smith", "jon", "baker", "patel", "khan"],
    "full_name": ["olivia smith", "james khan", "amelia baker", "noah patel", "emma jones"],
    "email": ["user123456@example.com", "user98765@example", "user4242@"],
    "short_prefix": ["ol", "ja"],
    "phone_national": ["07000 900123", "+44 7000 123456", "(07000) 555555"],
    "reference": ["B-123456", "B-42", "B-999999"],
}


async def measure(repeat: int) -> dict[str, Any]:
    engine = create_engine(URL)
    out: dict[str, Any] = {}
    try:
        async with AsyncSession(engine) as session:
            for kind, queries in QUERIES.items():
                times: list[float] = []
                found = 0
                for _ in range(repeat):
                    for q in queries:
                        started = time.perf_counter()
                        rows = await search.search_customers(session, q, limit=20)
                        times.append((time.perf_counter() - started) * 1000)
                        found = max(found, len(rows))
                times.sort()
                out[kind] = {
                    "p50_ms": round(statistics.median(times), 2),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
                    "max_rows": found,
                }
    finally:
        await engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(build(args.customers))
    built_s = time.perf_counter() - started
    result = asyncio.run(measure(args.repeat))
    print(json.dumps({"customers": args.customers, "build_s": round(built_s, 1), **result}))


if __name__ == "__main__":
    main()
