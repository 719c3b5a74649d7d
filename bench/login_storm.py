"""Webhook latency while agents sign in: ``.venv/bin/python -m bench.login_storm``.

Starts screenpop (real uvicorn, ``python -m app.cli serve``) on a fresh PostgreSQL database
with ``--users`` agents, then posts signed generic events open-loop at ``--rate`` per second
for ``--duration`` seconds in each of two phases, alternating in ``--blocks`` pairs: quiet,
and during a storm of ``--logins`` successful sign-ins per second (argon2 verification each),
from a client of their own. Each run prints the webhook p50/p99/max of
both phases and ``p99_ratio`` (storm / quiet) on stderr; the last line of stdout is one JSON
object with every run's ratios, their median, the machine's load average at each run's start
and the cost of one verify on this machine. ``--rounds N`` repeats the run; ``--ab REV``
alternates each round with git revision REV served by its own code (``bench.ab_tree``), old
first. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.db import create_engine
from app.users import service as users
from app.users.models import User
from app.users.security import hash_password, verify_password
from bench.ab_tree import RevisionTree, TreeServer
from tests.calls.support import GENERIC, signed
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.server import ROOT, ServerProcess

PASSWORD = "storm-password-1"


class Server(Protocol):
    """A screenpop server process: this tree's (``ServerProcess``) or another's."""

    @property
    def url(self) -> str: ...

    def start(self, timeout: float = ...) -> object: ...

    def stop(self) -> None: ...


def tree_hash(python: str, tree: Path) -> str:
    """``PASSWORD`` hashed by the code of ``tree`` (run by its ``python``, from the tree, so
    ``import app`` finds that tree's): each side of an A/B then verifies hashes with its own
    argon2 parameters (a hash carries them)."""
    code = f"from app.users.security import hash_password; print(hash_password({PASSWORD!r}))"
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, cwd=tree
    )
    return done.stdout.strip()


async def add_users(url: str, count: int, password_hash: str) -> None:
    engine = create_engine(url)
    async with AsyncSession(engine) as session:
        for i in range(count):
            await users.upsert_user(
                session, username=f"agent{i}", role="agent", password=PASSWORD, queues=["sales"]
            )
        await session.execute(update(User).values(password_hash=password_hash))
        await session.commit()
        await session.commit()
    await engine.dispose()


async def post_events(
    http: httpx.AsyncClient, rate: float, duration: float, errors: list[str]
) -> list[float]:
    """Open-loop posts; each answer's latency in ms (failures appended to ``errors``)."""
    latencies: list[float] = []

    async def one(i: int) -> None:
        call_id = uuid.uuid4().hex[:12]
        raw, headers = signed(
            {"event_id": f"{call_id}-1", "call_id": call_id, "kind": "offered",
             "caller": "+447700900123", "agent": f"agent{i % 20}"}
        )  # fmt: skip
        started = time.perf_counter()
        try:
            response = await http.post(GENERIC, content=raw, headers=headers)
        except httpx.TransportError:
            errors.append("transport")
            return
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 202:
            errors.append(str(response.status_code))

    await _open_loop(one, rate, duration)
    return latencies


async def sign_ins(
    http: httpx.AsyncClient, rate: float, duration: float, users: int
) -> list[float]:
    """Successful sign-ins at ``rate`` per second; the latency of each that answered 200."""
    answered: list[float] = []

    async def one(i: int) -> None:
        body = {"username": f"agent{i % users}", "password": PASSWORD}
        started = time.perf_counter()
        try:
            response = await http.post("/api/auth/login", json=body)
        except httpx.TransportError:
            return
        if response.status_code == 200:
            answered.append((time.perf_counter() - started) * 1000)

    await _open_loop(one, rate, duration)
    return answered


async def _open_loop(task: Any, rate: float, duration: float) -> None:
    started = time.perf_counter()
    pending = []
    i = 0
    while (due := started + i / rate) < started + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        pending.append(asyncio.create_task(task(i)))
        i += 1
    await asyncio.gather(*pending)


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 1),
        "max_ms": round(ordered[-1], 1),
    }


def verify_cost_ms(rounds: int = 5) -> dict[str, float]:
    """Wall and CPU time (all threads of this process) of one verify of a stored hash."""
    hashed = hash_password(PASSWORD)
    verify_password(hashed, PASSWORD)  # warm
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        verify_password(hashed, PASSWORD)
    return {
        "wall_ms": round((time.perf_counter() - wall) * 1000 / rounds, 1),
        "cpu_ms": round((time.process_time() - cpu) * 1000 / rounds, 1),
    }


async def measure(
    server: Server, url: str, args: argparse.Namespace, python: str, tree: Path
) -> dict[str, Any]:
    """One run: a fresh database, the server started on it, then ``args.blocks`` pairs of a
    quiet block and a storm block (each ``args.duration / args.blocks`` seconds; a storm
    block ends when its last sign-in is answered), so slow changes in the machine's load
    fall on both phases alike. The PBX and the agents signing in are separate clients.
    ``python`` and ``tree`` are the served tree's interpreter and code, which hash the users'
    password."""
    await migrate.upgrade_async(url)
    await add_users(url, args.users, await asyncio.to_thread(tree_hash, python, tree))
    load = os.getloadavg()[0]
    await asyncio.to_thread(server.start, 90)
    block_s = args.duration / args.blocks
    quiet: list[float] = []
    storm: list[float] = []
    logins: list[float] = []
    errors: list[str] = []
    try:
        limits = httpx.Limits(max_connections=200)
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as pbx,
            httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as agents,
        ):
            await post_events(pbx, args.rate, 2, [])  # warm-up
            await sign_ins(agents, 2, 1, args.users)  # the first sign-in may start a worker
            for _ in range(args.blocks):
                quiet += await post_events(pbx, args.rate, block_s, errors)
                posted, signed_in = await asyncio.gather(
                    post_events(pbx, args.rate, block_s, errors),
                    sign_ins(agents, args.logins, block_s, args.users),
                )
                storm += posted
                logins += signed_in
    finally:
        await asyncio.to_thread(server.stop)
    result: dict[str, Any] = {
        "rate": args.rate,
        "logins_per_s": args.logins,
        "logins_ok": len(logins),
        "login_p50_ms": round(statistics.median(logins), 1) if logins else None,
        "webhook_errors": len(errors),
        "load_average_1m": round(load, 2),
        "quiet": summary(quiet),
        "storm": summary(storm),
    }
    result["p99_ratio"] = round(result["storm"]["p99_ms"] / result["quiet"]["p99_ms"], 2)
    return result


def server_env(url: str) -> dict[str, str]:
    return {
        "SCREENPOP_DATABASE_URL": url,
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_LOG_LEVEL": "WARNING",
    }


async def run(args: argparse.Namespace, old: RevisionTree | None) -> dict[str, Any]:
    """``args.rounds`` runs of this tree, alternating with ``old`` when given (old first)."""
    runs: dict[str, list[dict[str, Any]]] = {"new": []} if old is None else {"old": [], "new": []}
    for n in range(args.rounds):
        for side in runs:
            url = await create_pg_database()
            try:
                if side == "old" and old is not None:
                    server: Server = TreeServer(old.python, old.path, server_env(url))
                    python, tree = str(old.python), old.path
                else:
                    server = ServerProcess(server_env(url))
                    python, tree = sys.executable, ROOT
                result = await measure(server, url, args, python, tree)
            finally:
                await drop_pg_database(url)
            runs[side].append(result)
            print(f"round {n + 1} {side}: {json.dumps(result)}", file=sys.stderr, flush=True)
    out: dict[str, Any] = {"verify": verify_cost_ms(), "cores": os.cpu_count()}
    for side, results in runs.items():
        ratios = [r["p99_ratio"] for r in results]
        out[side] = {
            "p99_ratio_median": statistics.median(ratios),
            "p99_ratios": ratios,
            "quiet_p99_ms": [r["quiet"]["p99_ms"] for r in results],
            "storm_p99_ms": [r["storm"]["p99_ms"] for r in results],
            "logins_ok": [r["logins_ok"] for r in results],
            "login_p50_ms": [r["login_p50_ms"] for r in results],
            "webhook_errors": sum(r["webhook_errors"] for r in results),
            "load_average_1m": [r["load_average_1m"] for r in results],
        }
    if old is not None:
        out["old"]["rev"] = old.sha
    return out


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.ab is None:
        return asyncio.run(run(args, None))
    with RevisionTree(ROOT, args.ab) as old:
        return asyncio.run(run(args, old))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50, help="webhook events per second")
    parser.add_argument("--logins", type=float, default=20, help="sign-ins per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds per phase")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--blocks", type=int, default=2, help="quiet/storm pairs per run")
    parser.add_argument("--rounds", type=int, default=1, help="runs (per side with --ab)")
    parser.add_argument("--ab", metavar="REV", help="alternate runs with git revision REV")
    print(json.dumps(main(parser.parse_args())))
