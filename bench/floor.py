"""Measure the floor on this machine: a bare indexed lookup, and event-in to frame-out bare.

* ``lookup_floor``: one prepared asyncpg statement (customer by phone, account, insights and
  20 order lines as JSON), called back to back for random known callers; p50/p99.
* ``server_floor``: bench/floor_server.py under uvicorn (uvloop + httptools), agents connected
  by websocket, events posted open-loop at the given rate; for each, POST sent -> frame read.
  With ``lookup=False`` the frame is pushed without the lookup (the bare websocket round trip).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import psutil

from bench.floor_server import LOOKUP_SQL
from bench.load import Agent, close_agents, connect_agents, percentile
from tests.support.server import ROOT, free_port


@dataclass
class Figures:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    n: int
    lost: int = 0
    errors: int = 0
    rss_kb_per_ws: float = float("nan")

    @classmethod
    def of(cls, values: Sequence[float], lost: int = 0, errors: int = 0) -> Figures:
        return cls(
            round(percentile(values, 50), 3),
            round(percentile(values, 95), 3),
            round(percentile(values, 99), 3),
            round(max(values) if values else float("nan"), 3),
            len(values),
            lost,
            errors,
        )


async def prewarm(dsn: str) -> None:
    """Read every table and index of the database once, as a database that has been serving
    for a while would hold them: into PostgreSQL's shared buffers when the database fits
    there, else into the OS cache (PostgreSQL's buffers keep what fits)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        fits = await conn.fetchval(
            """SELECT pg_database_size(current_database())
                      < 0.9 * pg_size_bytes(current_setting('shared_buffers'))"""
        )
        await conn.execute(
            """SELECT pg_prewarm(c.oid::regclass, $1) FROM pg_class c
               WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i')""",
            "buffer" if fits else "read",
        )
    finally:
        await conn.close()


async def lookup_floor(
    targets: Sequence[tuple[str, Sequence[str]]], n: int = 8000, seed: int = 1
) -> list[Figures]:
    """Prepared lookups of random callers on each (dsn, callers), interleaved one by one so a
    noisy neighbour on the machine hurts every database alike; after a warm-up of 1,000."""
    rng = random.Random(seed)
    conns = [await asyncpg.connect(dsn) for dsn, _ in targets]
    try:
        stmts = [await c.prepare(LOOKUP_SQL) for c in conns]
        for stmt, (_, callers) in zip(stmts, targets, strict=True):
            for _ in range(1000):
                await stmt.fetchval(rng.choice(callers))
        times: list[list[float]] = [[] for _ in targets]
        for _ in range(n):
            for k, (stmt, (_, callers)) in enumerate(zip(stmts, targets, strict=True)):
                caller = rng.choice(callers)
                t = time.perf_counter()
                await stmt.fetchval(caller)
                times[k].append((time.perf_counter() - t) * 1000)
    finally:
        for c in conns:
            await c.close()
    return [Figures.of(t) for t in times]


class FloorServer:
    """bench.floor_server under uvicorn in a child process."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FloorServer:
        env = {**os.environ, "FLOOR_DSN": self.dsn or ""}
        self.proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before measuring)
            [sys.executable, "-m", "uvicorn", "bench.floor_server:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
             "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("floor server did not start")

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


async def server_floor(
    dsn: str | None,
    callers: Sequence[str],
    *,
    rate: float,
    duration: float,
    n_agents: int = 200,
    seed: int = 2,
) -> Figures:
    """Event POST -> frame on the agent's websocket through the bare server, open loop."""
    rng = random.Random(seed)
    path = "/event" if dsn else "/push"
    async with FloorServer(dsn) as server:
        ws_base = server.url.replace("http", "ws")
        agents = [Agent(f"f{i}", "", "", ws_base) for i in range(n_agents)]
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        before = proc.memory_info().rss
        readers = await connect_agents(agents, "/ws?agent={username}")
        await asyncio.sleep(1)
        rss_kb = (proc.memory_info().rss - before) / 1024 / n_agents
        by_name = {a.username: a for a in agents}
        sent: dict[str, tuple[float, str]] = {}
        errors = 0
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

            async def post(call_id: str, agent: str, caller: str) -> None:
                nonlocal errors
                body = orjson.dumps({"call_id": call_id, "agent": agent, "caller": caller})
                sent[call_id] = (time.perf_counter(), agent)
                try:
                    async with session.post(server.url + path, data=body) as resp:
                        await resp.read()
                        errors += resp.status != 202
                except aiohttp.ClientError:
                    errors += 1

            # Warm up (connections, prepared statements), then measure.
            for i in range(50):
                await post(f"warm{i}", agents[i % n_agents].username, rng.choice(callers))
            sent.clear()
            start = time.perf_counter()
            t = 0.0
            i = 0
            while True:
                t += rng.expovariate(rate)
                if t >= duration:
                    break
                delay = start + t - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                i += 1
                task = asyncio.create_task(
                    post(f"floor{i}", rng.choice(agents).username, rng.choice(callers))
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=10)
            await asyncio.sleep(0.5)
        values = []
        lost = 0
        for call_id, (t0, agent) in sent.items():
            got = by_name[agent].pops.get(f"generic:{call_id}")
            if got is None:
                lost += 1
            else:
                values.append((got - t0) * 1000)
        await close_agents(agents, readers)
    figures = Figures.of(values, lost, errors)
    figures.rss_kb_per_ws = round(rss_kb, 1)
    return figures


def floor_server_path() -> Path:
    return Path(__file__).with_name("floor_server.py")
