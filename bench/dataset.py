"""Build (or reuse) a PostgreSQL database of N customers and M order lines for the benchmark.

The database is named for its size (``screenpop_bench_1m_10m``) and reused when a previous
build finished (a marker in the database comment). Steps: migrate, drop the bulk tables'
indexes and constraints, stream generated rows with ``COPY`` (text format, generated in numpy
chunks while PostgreSQL ingests the previous one), rebuild indexes and constraints, ANALYZE.

Shape: each synthetic customer draws a real customer's invoice count and each invoice a real
invoice's line count (both thinned so the totals hit the requested sizes); lines are real
(sku, description, quantity, price) rows of the shared retail file. Numbers: bench/phones.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np

from app import migrate
from app.customers.fiction import FIRST, LAST, ORG_SUFFIX
from app.users.security import hash_password
from bench import phones
from bench.shape import load_shape

# The server the bench databases live on (``python -m bench`` points it at its own server).
SERVER = os.environ.get("SCREENPOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BUILD_VERSION = "screenpop-bench-v1"
BULK_TABLES = (
    "customers",
    "customer_phones",
    "accounts",
    "products",
    "orders",
    "order_lines",
    "customer_insights",
    "next_needs",
)
CHUNK = 250_000
NEEDS_PER_CUSTOMER = 8
LINES_SCALE = 0.5  # invoices half the size of a wholesale gift shop's: a consumer-ish mix
AGENT_PASSWORD = "bench-agent-password"
SEGMENTS = ("loyal", "discount", "impulsive", "need_based", "wandering")
STAGES = ("exploration", "awareness", "expansion", "commitment", "dissolution")
CUSTOMER_TYPES = ("consumer", "industrial", "institutional", "government")


def human(n: int) -> str:
    """1000000 -> '1m', 10000 -> '10k'."""
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def database_name(customers: int, lines: int) -> str:
    return f"screenpop_bench_{human(customers)}_{human(lines)}"


def sqlalchemy_url(name: str) -> str:
    return asyncpg_dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)


def asyncpg_dsn(name: str) -> str:
    return f"{SERVER}/{name}"


@dataclass
class BuildResult:
    name: str
    reused: bool
    seconds: float
    counts: dict[str, int]


def _esc(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


async def _copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[bytes]
) -> None:
    """COPY text-format chunks; each chunk is produced while the server ingests the last."""

    async def source() -> AsyncIterator[bytes]:
        for chunk in rows:
            yield chunk
            await asyncio.sleep(0)

    await conn.copy_to_table(table, source=source(), columns=columns, format="text")


def _chunks(n: int, make: Callable[[int, int], list[str]]) -> Iterator[bytes]:
    for start in range(0, n, CHUNK):
        yield "".join(make(start, min(n, start + CHUNK))).encode()


async def _database_state(name: str) -> str | None:
    conn = await asyncpg.connect(asyncpg_dsn("postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            return None
        comment = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
        )
        return str(comment or "")
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def ensure_database(
    customers: int,
    lines: int,
    *,
    seed: int = 42,
    rebuild: bool = False,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """The database for this size, built unless a finished build is already there."""
    name = database_name(customers, lines)
    state = await _database_state(name)
    marker = f"{BUILD_VERSION} customers={customers} lines={lines} seed={seed}"
    if state is not None and state.startswith(marker) and not rebuild:
        # Someone may have added a migration since: bring the schema to head (cheap when current).
        await migrate.upgrade_async(sqlalchemy_url(name))
        counts = json.loads(state.split(" counts=", 1)[1]) if " counts=" in state else {}
        log(f"reusing database {name} ({state})")
        return BuildResult(name, True, 0.0, counts)
    if state is not None:
        await drop_database(name)
    started = time.perf_counter()
    admin = await asyncpg.connect(asyncpg_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await migrate.upgrade_async(sqlalchemy_url(name))
    log(f"migrated {name} in {time.perf_counter() - started:.1f} s")
    conn = await asyncpg.connect(asyncpg_dsn(name))
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'; SET synchronous_commit = off")
        saved = await _drop_constraints_and_indexes(conn)
        counts = await _load(conn, customers, lines, seed, log)
        t = time.perf_counter()
        await _restore(conn, saved)
        log(f"indexes and constraints rebuilt in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE in {time.perf_counter() - t:.1f} s")
        elapsed = time.perf_counter() - started
        note = f"{marker} built_s={elapsed:.0f} counts={json.dumps(counts, separators=(',', ':'))}"
        await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{note}'")
    finally:
        await conn.close()
    return BuildResult(name, False, elapsed, counts)


@dataclass
class _Saved:
    foreign_keys: list[tuple[str, str, str]]  # (table, name, definition)
    constraints: list[tuple[str, str, str]]
    indexes: list[str]


async def _drop_constraints_and_indexes(conn: asyncpg.Connection) -> _Saved:
    """Drop what slows COPY on the bulk tables; remember the definitions to rebuild."""
    tables = list(BULK_TABLES)
    fks = await conn.fetch(
        """SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c
           WHERE c.contype = 'f' AND (c.conrelid::regclass::text = ANY($1)
                                      OR c.confrelid::regclass::text = ANY($1))""",
        tables,
    )
    cons = await conn.fetch(
        """SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c
           WHERE c.contype IN ('p', 'u') AND c.conrelid::regclass::text = ANY($1)""",
        tables,
    )
    idx = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i
           WHERE i.indrelid::regclass::text = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        tables,
    )
    for r in fks:
        await conn.execute(f'ALTER TABLE {r["tbl"]} DROP CONSTRAINT "{r["conname"]}"')
    for r in cons:
        await conn.execute(f'ALTER TABLE {r["tbl"]} DROP CONSTRAINT "{r["conname"]}"')
    for r in idx:
        await conn.execute(f"DROP INDEX {r['name']}")
    return _Saved(
        [(r["tbl"], r["conname"], r["def"]) for r in fks],
        [(r["tbl"], r["conname"], r["def"]) for r in cons],
        [r["def"] for r in idx],
    )


async def _restore(conn: asyncpg.Connection, saved: _Saved) -> None:
    for tbl, name, definition in saved.constraints:
        await conn.execute(f'ALTER TABLE {tbl} ADD CONSTRAINT "{name}" {definition}')
    for definition in saved.indexes:
        await conn.execute(definition)
    for tbl, name, definition in saved.foreign_keys:
        await conn.execute(f'ALTER TABLE {tbl} ADD CONSTRAINT "{name}" {definition}')


def _stochastic_round(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    floor = np.floor(values)
    rounded: np.ndarray = (floor + (rng.random(values.size) < (values - floor))).astype(np.int64)
    return rounded


def _ts(epoch: np.ndarray) -> list[str]:
    return [
        datetime.fromtimestamp(int(s), UTC).strftime("%Y-%m-%d %H:%M:%S+00") for s in epoch.tolist()
    ]


async def _load(
    conn: asyncpg.Connection, n_customers: int, n_lines: int, seed: int, log: Callable[[str], None]
) -> dict[str, int]:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    shape = load_shape()
    log(f"retail shape from {shape.source} in {time.perf_counter() - t0:.1f} s")
    now = int(time.time())
    ids = np.arange(1, n_customers + 1, dtype=np.int64)

    # --- orders per customer and lines per order, thinned to hit n_lines -----------------
    lpo_scaled = np.maximum(1, np.round(shape.lines_per_order * LINES_SCALE))
    mean_lines_per_order = float(lpo_scaled.mean())
    mean_orders = float(shape.orders_per_customer.mean())
    # Overshoot a little (returns are short), then trim the tail to the exact total.
    thin = 1.25 * n_lines / (n_customers * mean_orders * mean_lines_per_order)
    orders_of = _stochastic_round(rng.choice(shape.orders_per_customer, n_customers) * thin, rng)
    n_orders = int(orders_of.sum())
    order_customer = np.repeat(ids, orders_of)
    lines_of = _stochastic_round(
        rng.choice(shape.lines_per_order, n_orders) * LINES_SCALE, rng
    ).clip(min=1)
    is_return = rng.random(n_orders) < shape.return_share
    # Returns are small: one to three lines.
    lines_of = np.where(is_return, np.minimum(lines_of, rng.integers(1, 4, n_orders)), lines_of)
    # Trim or top up the last order(s) so the line total is exactly what was asked.
    cum = np.cumsum(lines_of)
    if cum[-1] > n_lines:
        keep = int(np.searchsorted(cum, n_lines)) + 1
        lines_of, is_return, order_customer = (
            lines_of[:keep],
            is_return[:keep],
            order_customer[:keep],
        )
        lines_of[-1] -= int(cum[keep - 1] - n_lines)
    else:
        lines_of[-1] += n_lines - int(cum[-1])
    n_orders = int(lines_of.size)
    order_ids = np.arange(1, n_orders + 1, dtype=np.int64)
    order_time = now - rng.integers(3600, 730 * 86400, n_orders)

    # --- lines: real (sku, description, quantity, price) rows ----------------------------
    pick = rng.integers(0, len(shape.lines_sku), n_lines)
    line_order = np.repeat(order_ids, lines_of)
    starts = np.repeat(np.cumsum(lines_of) - lines_of, lines_of)
    line_no = np.arange(n_lines, dtype=np.int64) - starts + 1
    sign = np.where(np.repeat(is_return, lines_of), -1, 1)
    qty = shape.lines_quantity[pick] * sign
    price = shape.lines_price[pick]
    totals = np.bincount(line_order - 1, weights=qty * price, minlength=n_orders)
    log(f"generated the order shape in {time.perf_counter() - t0:.1f} s")

    # --- per-customer aggregates (insights, balances) ------------------------------------
    cust_of_order = order_customer
    clv = np.bincount(cust_of_order - 1, weights=totals, minlength=n_customers)
    n_orders_c = np.bincount(cust_of_order - 1, minlength=n_customers)
    last_order = np.zeros(n_customers, dtype=np.int64)
    np.maximum.at(last_order, cust_of_order - 1, order_time)
    recent = order_time > now - 30 * 86400
    balance = np.bincount(cust_of_order[recent] - 1, weights=totals[recent], minlength=n_customers)

    # --- customers -------------------------------------------------------------------------
    t = time.perf_counter()
    first = rng.integers(0, len(FIRST), n_customers)
    last = rng.integers(0, len(LAST), n_customers)
    ctype = rng.choice(4, n_customers, p=[0.9, 0.07, 0.02, 0.01])
    consent = rng.random(n_customers) < 0.62
    country_idx = rng.choice(len(shape.countries), n_customers, p=shape.country_weights)
    countries = [_esc(c) for c in shape.countries]
    langs = {"United Kingdom": "en", "Germany": "de", "France": "fr", "Spain": "es"}
    lang_of = [langs.get(c, "en") for c in shape.countries]
    created = _ts(now - rng.integers(30 * 86400, 6 * 365 * 86400, n_customers))

    def customer_rows(a: int, b: int) -> list[str]:
        out = []
        for i in range(a, b):
            if ctype[i] == 0:
                name = f"{FIRST[first[i]]} {LAST[last[i]]}"
            else:
                name = f"{LAST[last[i]]} {ORG_SUFFIX[first[i] % len(ORG_SUFFIX)]}"
            c = country_idx[i]
            out.append(
                f"{i + 1}\tB{i + 1}\t{name}\t{CUSTOMER_TYPES[ctype[i]]}\t{lang_of[c]}\t"
                f"{'t' if consent[i] else 'f'}\t{countries[c]}\t\\N\t{created[i]}\n"
            )
        return out

    await _copy(
        conn,
        "customers",
        ["id", "external_ref", "name", "customer_type", "language", "marketing_consent",
         "country", "email", "created_at"],
        _chunks(n_customers, customer_rows),
    )  # fmt: skip

    # --- phones: callable fictional numbers spread over the table, filler for the rest ----
    assignable = phones.assignable_numbers()
    n_callable = min(len(assignable), n_customers)
    callable_pos = np.sort(rng.choice(n_customers, n_callable, replace=False))
    number_of: list[str] = [""] * n_customers
    for k, pos in enumerate(callable_pos.tolist()):
        # A family on one line: this customer shares the previous callable customer's number.
        src = k - 1 if k % phones.SHARE_EVERY == 1 else k
        number_of[pos] = assignable[src]
    filler = 0
    for i in range(n_customers):
        if not number_of[i]:
            number_of[i] = phones.filler_number(filler)
            filler += 1

    def phone_rows(a: int, b: int) -> list[str]:
        return [
            f"{i + 1}\t{i + 1}\t{number_of[i]}\t{number_of[i]}\t{number_of[i][-9:]}\tmain\n"
            for i in range(a, b)
        ]

    await _copy(
        conn,
        "customer_phones",
        ["id", "customer_id", "raw", "e164", "last_digits", "label"],
        _chunks(n_customers, phone_rows),
    )
    credit = np.maximum(500, np.ceil(np.abs(clv) / 12 * 2 / 100) * 100)

    def account_rows(a: int, b: int) -> list[str]:
        return [
            f"{i + 1}\t{i + 1}\t{balance[i]:.2f}\t{credit[i]:.2f}\tGBP\tactive\n"
            for i in range(a, b)
        ]

    await _copy(
        conn,
        "accounts",
        ["id", "customer_id", "balance", "credit_limit", "currency", "status"],
        _chunks(n_customers, account_rows),
    )
    log(f"customers, phones, accounts loaded in {time.perf_counter() - t:.1f} s")

    # --- products, orders, lines ----------------------------------------------------------
    t = time.perf_counter()
    products = shape.products
    await _copy(
        conn,
        "products",
        ["sku", "name"],
        iter(["".join(f"{_esc(s)}\t{_esc(n)}\n" for s, n in products.items()).encode()]),
    )
    order_ts = _ts(order_time)
    order_country = [countries[c] for c in country_idx.tolist()]

    def order_rows(a: int, b: int) -> list[str]:
        return [
            f"{i + 1}\t{order_customer[i]}\t{'C' if is_return[i] else 'S'}{i + 1:09d}\t"
            f"{order_ts[i]}\t{'t' if is_return[i] else 'f'}\t{totals[i]:.2f}\t"
            f"{order_country[order_customer[i] - 1]}\n"
            for i in range(a, b)
        ]

    await _copy(
        conn,
        "orders",
        ["id", "customer_id", "invoice_no", "ordered_at", "is_return", "total", "country"],
        _chunks(n_orders, order_rows),
    )
    log(f"{n_orders:,} orders loaded in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    # One text fragment per real line: sku, description and price are pasted, not formatted.
    frag = [
        f"{_esc(s)}\t{_esc(d)}\t"
        for s, d in zip(shape.lines_sku, shape.lines_description, strict=True)
    ]
    price_txt = [f"{p:.3f}" for p in shape.lines_price.tolist()]

    def line_rows(a: int, b: int) -> list[str]:
        p = pick[a:b].tolist()
        return [
            f"{i}\t{o}\t{n}\t{frag[k]}{q}\t{price_txt[k]}\n"
            for i, o, n, k, q in zip(
                range(a + 1, b + 1),
                line_order[a:b].tolist(),
                line_no[a:b].tolist(),
                p,
                qty[a:b].tolist(),
                strict=True,
            )
        ]

    await _copy(
        conn,
        "order_lines",
        ["id", "order_id", "line_no", "sku", "description", "quantity", "unit_price"],
        _chunks(n_lines, line_rows),
    )
    log(f"{n_lines:,} order lines loaded in {time.perf_counter() - t:.1f} s")

    # --- insights and next needs ------------------------------------------------------------
    t = time.perf_counter()
    order_rank = np.argsort(np.argsort(clv)) / max(1, n_customers - 1)
    tier = np.where(order_rank >= 0.8, "high", np.where(order_rank >= 0.4, "medium", "low"))
    segment = rng.choice(len(SEGMENTS), n_customers)
    days_since = np.where(n_orders_c > 0, (now - last_order) // 86400, -1)
    stage = np.select(
        [n_orders_c == 0, days_since > 270, n_orders_c >= 8, n_orders_c >= 3],
        [0, 4, 3, 2],
        default=1,
    )
    churn = np.clip(days_since / 365, 0, 1)
    now_txt = _ts(np.array([now]))[0]

    def insight_rows(a: int, b: int) -> list[str]:
        out = []
        for i in range(a, b):
            details = (
                f'{{"orders": {n_orders_c[i]}, "days_since_last_order": {days_since[i]}, '
                f'"aov": {clv[i] / max(1, n_orders_c[i]):.2f}}}'
            )
            treat = (
                "priority handling"
                if tier[i] == "high"
                else "retention offer"
                if stage[i] == 4
                else "\\N"
            )
            out.append(
                f"{i + 1}\t{clv[i]:.2f}\t{clv[i] * 1.4:.2f}\t{tier[i]}\t"
                f"{'t' if tier[i] == 'low' and n_orders_c[i] >= 3 else 'f'}\t"
                f"{SEGMENTS[segment[i]]}\t{STAGES[stage[i]]}\t{churn[i]:.3f}\t\\N\t{treat}\t"
                f"{details}\t{now_txt}\n"
            )
        return out

    await _copy(
        conn,
        "customer_insights",
        ["customer_id", "clv_historic", "clv_forecast", "value_tier", "potential", "segment",
         "stage", "churn_risk", "satisfaction_trend", "treatment", "details", "computed_at"],
        _chunks(n_customers, insight_rows),
    )  # fmt: skip
    buyers = np.flatnonzero(n_orders_c > 0) + 1
    need_customer = np.repeat(buyers, NEEDS_PER_CUSTOMER)
    need_pick = rng.integers(0, len(shape.lines_sku), need_customer.size)
    n_needs = int(need_customer.size)

    def need_rows(a: int, b: int) -> list[str]:
        out = []
        for i in range(a, b):
            rank = i % NEEDS_PER_CUSTOMER + 1
            k = int(need_pick[i])
            kind = "reorder" if rank <= 3 else "cross_sell"
            reason = (
                f"bought {rank + 1} times, last {rank * 2} weeks ago"
                if kind == "reorder"
                else "often bought with your recent items"
            )
            cid = int(need_customer[i])
            out.append(
                f"{i + 1}\t{cid}\t{rank}\t{frag[k]}{kind}\t{1 - rank / 10:.3f}\t{reason}\t"
                f"{'t' if consent[cid - 1] else 'f'}\t{now_txt}\n"
            )
        return out

    await _copy(
        conn,
        "next_needs",
        ["id", "customer_id", "rank", "sku", "name", "kind", "score", "reason", "may_offer",
         "computed_at"],
        _chunks(n_needs, need_rows),
    )  # fmt: skip
    log(f"insights and {n_needs:,} next needs loaded in {time.perf_counter() - t:.1f} s")
    for table in (
        "customers",
        "customer_phones",
        "accounts",
        "orders",
        "order_lines",
        "next_needs",
    ):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )
    return {
        "customers": n_customers,
        "phones": n_customers,
        "callable_numbers": n_callable,
        "orders": n_orders,
        "order_lines": n_lines,
        "products": len(products),
        "next_needs": n_needs,
        "customers_with_orders": int(buyers.size),
    }


# --- agents and queues ------------------------------------------------------------------------
QUEUES = 10


def agent_name(i: int) -> str:
    return f"bench{i:05d}"


def queue_name(q: int) -> str:
    return f"bench_q{q}"


def queue_did(q: int) -> str:
    # Dialed numbers from Ofcom's drama non-geographic range 0808 157 0xxx.
    return f"+44808157{q + 100:04d}"


def queue_of_agent(i: int) -> int:
    return i % QUEUES


# What earlier runs left behind: each run starts on a quiet floor (no calls today), so the
# server's start-up rebuild and its heap are the same from run to run.
LIVE_TABLES = ("pop_deliveries", "profile_views", "call_events", "calls", "agent_presence")


async def clear_live_data(dsn: str) -> None:
    """Remove calls, the journal, pop receipts, audit rows and presence of earlier runs."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(LIVE_TABLES)}")
    finally:
        await conn.close()


async def keep_analyzed(dsn: str, every_s: float = 10.0) -> None:
    """ANALYZE the live tables every ``every_s`` until cancelled.

    This machine's PostgreSQL runs with ``autovacuum = off``; without statistics the planner
    keeps treating the tables each run filled from empty as empty (sequential scans for the
    receipts' join, say), which no production database with autovacuum on would do.
    """
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            await conn.execute(f"ANALYZE {', '.join(LIVE_TABLES)}")
            await asyncio.sleep(every_s)
    finally:
        await conn.close()


async def ensure_agents(dsn: str, n_agents: int) -> None:
    """N agent users (one password hash shared by all: argon2 is slow on purpose) and queues."""
    conn = await asyncpg.connect(dsn)
    try:
        have = await conn.fetchval("SELECT count(*) FROM users WHERE username LIKE 'bench%'")
        if (
            have == n_agents
            and await conn.fetchval("SELECT count(*) FROM queues WHERE name LIKE 'bench_q%'")
            == QUEUES
        ):
            return
        shared_hash = hash_password(AGENT_PASSWORD)
        async with conn.transaction():
            await conn.execute("DELETE FROM users WHERE username LIKE 'bench%'")
            now = datetime.now(UTC)
            await conn.copy_records_to_table(
                "users",
                records=[
                    (
                        agent_name(i),
                        shared_hash,
                        "agent",
                        f"7{i:05d}",
                        None,
                        json.dumps([queue_name(queue_of_agent(i))]),
                        True,
                        now,
                    )
                    for i in range(n_agents)
                ],
                columns=["username", "password_hash", "role", "extension", "worker_id", "queues",
                         "active", "created_at"],
            )  # fmt: skip
            for q in range(QUEUES):
                qid = await conn.fetchval(
                    """INSERT INTO queues (name, service_level_s, pop_mode, created_at)
                       VALUES ($1, 20, 'offer', $2)
                       ON CONFLICT (name) DO UPDATE SET pop_mode = 'offer' RETURNING id""",
                    queue_name(q),
                    now,
                )
                await conn.execute(
                    """INSERT INTO queue_numbers (number, queue_id) VALUES ($1, $2)
                       ON CONFLICT (number) DO UPDATE SET queue_id = $2""",
                    queue_did(q),
                    qid,
                )
    finally:
        await conn.close()


async def callers(dsn: str, limit: int = 200_000) -> tuple[list[str], list[str]]:
    """(callable numbers of customers with orders, callable numbers of customers without)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT p.e164, EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = p.customer_id)
                      AS buyer
               FROM customer_phones p
               WHERE p.e164 NOT LIKE '+441632%' OR p.e164 LIKE '+441632960%'
               LIMIT $1""",
            limit,
        )
    finally:
        await conn.close()
    buyers = [r["e164"] for r in rows if r["buyer"]]
    others = [r["e164"] for r in rows if not r["buyer"]]
    return buyers, others


async def drop_all_but(keep: set[str]) -> list[str]:
    """Drop bench databases not in ``keep`` (disk is limited); returns the names dropped."""
    conn = await asyncpg.connect(asyncpg_dsn("postgres"))
    try:
        names = [
            r["datname"]
            for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'screenpop_bench_%'"
            )
        ]
    finally:
        await conn.close()
    dropped = [n for n in names if n not in keep]
    for name in dropped:
        await drop_database(name)
    return dropped


def days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
