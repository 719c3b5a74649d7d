"""The screen-pop benchmark: ``make bench`` or ``.venv/bin/python -m bench [options]``.

1. Starts the bench's own PostgreSQL server, sized for the data (bench/pg_server.py; --pg URL
   uses another), and builds (or reuses) on it a database of --customers customers and --lines
   order lines shaped like the shared retail data, with fictional numbers (bench/dataset.py,
   bench/phones.py), and --agents agent users spread over ten queues.
2. Measures the floor on this machine: a bare prepared lookup (also on a 10k-customer database,
   to show the index scales), and event-in -> lookup -> frame-out through a bare uvicorn app.
3. Starts screenpop (real uvicorn, ``python -m app.cli serve --no-migrate``; one instance, or
   two sharing Redis with --instances 2), connects the agents by websocket (RSS before/after),
   and posts signed generic events open-loop at --rate events/s for --duration s; for every
   offer, POST sent -> pop frame read on that agent's websocket.
4. Steps the rate up until p99 >= 50 ms, errors or lost pops; the last rate that held is
   ``max_rate_p99_under_50ms``.

``--ab REV [--rounds 3] [--quick]`` runs the main scenario alternately on this tree and on git
revision REV, each served by its own code, and compares them instead (bench/ab.py).

The last line of stdout is ONE JSON object (keys in RESULT_KEYS). Loopback only.
``--customers-from-shared`` runs issue 4's smaller benchmark instead (bench/shared_mode.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import uvloop

from app.users.security import issue_token
from bench import ab, dataset, phones
from bench.floor import Figures, lookup_floor, prewarm, server_floor
from bench.load import (
    EVENTS_PER_CALL,
    Agent,
    Outcome,
    close_agents,
    connect_agents,
    percentile,
    plan_calls,
    run_events,
)
from bench.pg_server import DEFAULT_SHARED_BUFFERS_MB, BenchServer
from bench.pyspy import summarise_raw
from tests.support.server import ROOT, ServerProcess

RESULT_KEYS = (
    "customers", "agents", "rate", "pops", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    "floor_p50_ms", "floor_p99_ms", "ratio_p99", "errors", "lost", "rss_mb_per_1k_ws",
    "max_rate_p99_under_50ms",
)  # fmt: skip
STEP_RATES = (200, 350, 500, 700, 1000, 1400)
P99_LIMIT_MS = 50.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, help="default 1,000,000")
    p.add_argument("--lines", type=int, help="default 10,000,000")
    p.add_argument("--agents", type=int, help="default 2000 (200 with --customers-from-shared)")
    p.add_argument("--rate", type=float, help="events per second (all kinds); default 200")
    p.add_argument("--duration", type=float, help="seconds of load at --rate; default 30")
    p.add_argument("--instances", type=int, default=1, choices=(1, 2))
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument(
        "--pg",
        default=os.environ.get("SCREENPOP_BENCH_PG", "own"),
        help="'own' (default): the bench's own PostgreSQL server, sized for the data "
        "(bench/pg_server.py); or a server URL such as postgresql://postgres@127.0.0.1:5432",
    )
    p.add_argument("--pg-shared-buffers-mb", type=int, default=DEFAULT_SHARED_BUFFERS_MB)
    p.add_argument("--step-duration", type=float, default=15, help="seconds per max-rate step")
    p.add_argument("--no-steps", action="store_true", help="skip the max-rate search")
    p.add_argument("--profile", type=Path, help="py-spy the server during the main run into DIR")
    p.add_argument("--rebuild", action="store_true", help="rebuild the database even if present")
    p.add_argument("--keep-other-dbs", action="store_true", help="do not drop other bench DBs")
    p.add_argument("--floor-duration", type=float, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--customers-from-shared",
        action="store_true",
        help="issue 4's benchmark: the shared retail data imported, 200 agents, 50/200 calls/s",
    )
    ab.add_arguments(p)
    args = p.parse_args(argv)
    if args.customers_from_shared and args.agents is None:
        args.agents = 200
    if not args.ab:  # (the A/B fills in its own scenario: bench/ab.py)
        for key, value in ab.MAIN.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    return args


def say(message: str) -> None:
    print(message, flush=True)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} on {os.cpu_count()} cores"


def figures_of(outcome: Outcome, agents: dict[str, Agent]) -> dict[str, Any]:
    lat, lost = outcome.latencies(agents)
    f = Figures.of(lat, lost, outcome.errors)
    return {
        "pops": f.n,
        "p50_ms": f.p50_ms,
        "p95_ms": f.p95_ms,
        "p99_ms": f.p99_ms,
        "max_ms": f.max_ms,
        "errors": outcome.errors,
        "lost": lost,
        "offers": len(outcome.offer_sent),
        "events": outcome.events_sent,
        "post_p99_ms": round(percentile(outcome.post_ms, 99), 2),
        "client_lag_p99_ms": round(percentile(outcome.loop_lag_ms, 99), 2),
        "generator_late_events": len(outcome.late_ms),
        "error_samples": outcome.error_samples,
    }


def show(label: str, fig: dict[str, Any]) -> None:
    say(
        f"  {label}: {fig['pops']} pops  p50 {fig['p50_ms']} ms  p95 {fig['p95_ms']} ms  "
        f"p99 {fig['p99_ms']} ms  max {fig['max_ms']} ms  errors {fig['errors']}  "
        f"lost {fig['lost']}  (events {fig['events']}, POST p99 {fig['post_p99_ms']} ms, "
        f"client loop lag p99 {fig['client_lag_p99_ms']} ms, late events "
        f"{fig['generator_late_events']}, server CPU {fig.get('server_cpu_ms_per_event')} ms "
        "per event)"
    )
    for sample in fig["error_samples"]:
        say(f"    error: {sample}")


class Cluster:
    """One or two screenpop servers on loopback, sharing the database (and Redis for two)."""

    def __init__(self, db_url: str, instances: int, redis_url: str | None) -> None:
        self.jwt_secret = secrets.token_hex(32)
        self.webhook_secret = secrets.token_hex(32)
        env = {
            "SCREENPOP_DATABASE_URL": db_url,
            "SCREENPOP_JWT_SECRET": self.jwt_secret,
            "SCREENPOP_WEBHOOK_SECRET": self.webhook_secret,
            "SCREENPOP_LOG_LEVEL": "WARNING",
            "SCREENPOP_LOG_JSON": "true",
        }
        if instances > 1 and redis_url:
            env["SCREENPOP_REDIS_URL"] = redis_url
            env["SCREENPOP_REDIS_PREFIX"] = f"bench-{secrets.token_hex(4)}"
        self.servers = [ServerProcess(env) for _ in range(instances)]

    def __enter__(self) -> Cluster:
        for server in self.servers:
            server.start(timeout=60)
            say(f"  server pid {server.proc.pid if server.proc else '?'} at {server.url}, "
                f"log {server.log_path}")  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()

    @property
    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.servers if s.proc is not None]

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the server processes."""
        total = 0.0
        for pid in self.pids:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        return total

    def rss_bytes(self) -> int:
        return sum(psutil.Process(pid).memory_info().rss for pid in self.pids)

    def post_urls(self) -> list[str]:
        return [s.url + "/telephony/generic/events" for s in self.servers]

    def token(self, username: str) -> str:
        return issue_token(self.jwt_secret, username=username, role="agent", ttl_s=6 * 3600)


async def ingest_ready(url: str) -> str | None:
    """None when the generic ingest and agent websocket exist, else what is missing."""
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/telephony/generic/events", data=b"{}") as resp:
            if resp.status in (404, 405):
                return "POST /telephony/generic/events is not there yet"
    return None


class Profiler:
    """py-spy record on the server(s) for a while, raw stacks summarised afterwards."""

    def __init__(self, out_dir: Path | None, pids: list[int], seconds: float) -> None:
        self.out_dir = out_dir
        self.pids = pids
        self.seconds = seconds
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> None:
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if self.out_dir is None:
            return
        if exe is None:
            say("  (py-spy not installed: .venv/bin/pip install py-spy)")
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for pid in self.pids:
            # One sampler per server, only samples holding the GIL (on-CPU Python work; an
            # event loop waiting in epoll is not counted), raw stacks for summarise_raw.
            out = self.out_dir / f"server-{pid}.txt"
            cmd = [exe, "record", "--pid", str(pid), "-d", str(int(self.seconds)), "-r", "100",
                   "--gil", "--nonblocking", "-f", "raw", "-o", str(out)]  # fmt: skip
            self.procs.append(
                (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
            )

    def finish(self) -> None:
        for proc, out in self.procs:
            proc.wait(self.seconds + 30)
            if out.exists() and out.suffix == ".txt":
                say(f"  profile {out} (py-spy raw stacks, GIL-holding samples)")
                for line in summarise_raw(out.read_text(), top=15):
                    say("    " + line)


async def run_rates(
    cluster: Cluster,
    agents: list[Agent],
    args: argparse.Namespace,
    callers: tuple[list[str], list[str]],
    rate: float,
    duration: float,
    seed: int,
    answer_after_s: float = 2.0,
) -> tuple[Outcome, dict[str, Any]]:
    by_queue: dict[str, list[str]] = {}
    for a in agents:
        by_queue.setdefault(a.queue, []).append(a.username)
    dids = {dataset.queue_name(q): dataset.queue_did(q) for q in range(dataset.QUEUES)}
    events = plan_calls(
        call_rate=rate / EVENTS_PER_CALL,
        duration=duration,
        agents_by_queue=by_queue,
        dids={q: dids[q] for q in by_queue},
        buyers=callers[0],
        others=callers[1],
        unknown=phones.unknown_numbers(),
        seed=seed,
        answer_after_s=answer_after_s,
    )
    cpu_before = cluster.cpu_seconds()
    outcome = await run_events(
        events,
        post_urls=cluster.post_urls(),
        secret=cluster.webhook_secret,
        rate=rate,
        duration=duration,
    )
    fig = figures_of(outcome, {a.username: a for a in agents})
    fig["server_cpu_ms_per_event"] = round(
        (cluster.cpu_seconds() - cpu_before) * 1000 / max(1, outcome.events_sent), 2
    )
    return outcome, fig


async def connect_cluster_agents(
    cluster: Cluster, n_agents: int
) -> tuple[list[Agent], list[asyncio.Task[None]], float]:
    """Connect the agents (round-robin over instances); RSS growth per 1,000 sockets in MB."""
    agents = [
        Agent(
            dataset.agent_name(i),
            cluster.token(dataset.agent_name(i)),
            dataset.queue_name(dataset.queue_of_agent(i)),
            cluster.servers[i % len(cluster.servers)].ws_url,
        )
        for i in range(n_agents)
    ]
    await asyncio.sleep(2)
    before = cluster.rss_bytes()
    readers = await connect_agents(agents, "/ws/agent?token={token}")
    await asyncio.sleep(5)  # let connect-time work (replay, presence) finish
    after = cluster.rss_bytes()
    per_1k = (after - before) / 2**20 / n_agents * 1000
    cpu = cluster.cpu_seconds()
    await asyncio.sleep(5)
    idle = (cluster.cpu_seconds() - cpu) / 5 * 100
    say(f"  idle with {n_agents} agents connected: server CPU {idle:.0f}% of one core")
    say(
        f"  {n_agents} agents connected: server RSS {before / 2**20:.0f} MB -> "
        f"{after / 2**20:.0f} MB = {per_1k:.1f} MB per 1,000 websockets "
        f"({per_1k * 1024 / 1000:.0f} KB each)"
    )
    return agents, readers, per_1k


async def main(args: argparse.Namespace) -> dict[str, Any]:
    say(f"screenpop bench on {os.cpu_count()} cores; {load_note()}")
    say(f"database: {args.customers:,} customers, {args.lines:,} order lines")
    build = await dataset.ensure_database(
        args.customers,
        args.lines,
        seed=args.seed,
        rebuild=args.rebuild,
        log=lambda m: say("  " + m),
    )
    if not build.reused:
        say(f"  build time {build.seconds:.1f} s  {build.counts}")
    small_lines = max(1, args.lines * 10_000 // max(1, args.customers))
    small = await dataset.ensure_database(10_000, small_lines, seed=args.seed, log=lambda m: None)
    if not args.keep_other_dbs:
        dropped = await dataset.drop_all_but({build.name, small.name, "screenpop_bench_shared"})
        if dropped:
            say(f"  dropped old bench databases: {', '.join(dropped)}")
    dsn = dataset.asyncpg_dsn(build.name)
    await dataset.clear_live_data(dsn)
    await dataset.ensure_agents(dsn, args.agents)
    callers = await dataset.callers(dsn)
    say(f"  callers: {len(callers[0]):,} with orders, {len(callers[1]):,} without")

    say(f"floor ({load_note()}):")
    small_dsn = dataset.asyncpg_dsn(small.name)
    await prewarm(dsn)
    await prewarm(small_dsn)
    look, look_small = await lookup_floor(
        [(dsn, callers[0]), (small_dsn, (await dataset.callers(small_dsn))[0])]
    )
    lookup_ratio = look.p99_ms / look_small.p99_ms
    say(f"  bare lookup, {args.customers:,} customers: p50 {look.p50_ms} ms  p99 {look.p99_ms} ms")
    say(f"  bare lookup, 10,000 customers: p50 {look_small.p50_ms} ms  p99 {look_small.p99_ms} ms"
        f"  -> p99 ratio {lookup_ratio:.2f} (target <= 1.3)")  # fmt: skip
    push = await server_floor(None, callers[0], rate=args.rate, duration=args.floor_duration)
    say(f"  bare websocket round trip (POST -> frame): p50 {push.p50_ms} ms  p99 {push.p99_ms} ms"
        f"  ({push.rss_kb_per_ws} KB RSS per idle websocket in bare uvicorn)")  # fmt: skip
    floor = await server_floor(dsn, callers[0], rate=args.rate, duration=args.floor_duration)
    say(f"  floor, event -> lookup -> frame (bare uvicorn + asyncpg): p50 {floor.p50_ms} ms  "
        f"p99 {floor.p99_ms} ms  lost {floor.lost}")  # fmt: skip

    result: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    result.update(customers=args.customers, agents=args.agents, rate=args.rate,
                  floor_p50_ms=floor.p50_ms, floor_p99_ms=floor.p99_ms)  # fmt: skip
    redis_url = args.redis_url if args.instances > 1 else None
    say(f"screenpop x{args.instances}{' with Redis' if redis_url else ''}:")
    analyzer = asyncio.create_task(dataset.keep_analyzed(dsn))  # autovacuum is off here
    with Cluster(dataset.sqlalchemy_url(build.name), args.instances, redis_url) as cluster:
        missing = await ingest_ready(cluster.servers[0].url)
        if missing:
            say(f"  cannot load the server: {missing}")
            return result
        agents, readers, per_1k = await connect_cluster_agents(cluster, args.agents)
        result["rss_mb_per_1k_ws"] = round(per_1k, 1)
        try:
            say(f"  main run: {args.rate:g} events/s for {args.duration:g} s ({load_note()})")
            profiler = Profiler(args.profile, cluster.pids, min(20, args.duration))
            profiler.start()
            _, fig = await run_rates(cluster, agents, args, callers, args.rate, args.duration, 1)
            profiler.finish()
            show(f"{args.rate:g}/s", fig)
            result.update({k: fig[k] for k in ("pops", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                                                "errors", "lost")})  # fmt: skip
            if fig["p99_ms"] == fig["p99_ms"] and floor.p99_ms:
                result["ratio_p99"] = round(fig["p99_ms"] / floor.p99_ms, 2)
            if not args.no_steps:
                held = None
                for step, rate in enumerate(r for r in STEP_RATES if r >= args.rate):
                    await asyncio.sleep(3)
                    say(f"  step {rate}/s for {args.step_duration:g} s ({load_note()})")
                    _, f = await run_rates(cluster, agents, args, callers, rate,
                                           args.step_duration, 100 + step)  # fmt: skip
                    show(f"{rate}/s", f)
                    if f["errors"] or f["lost"] or not f["p99_ms"] < P99_LIMIT_MS:
                        break
                    held = rate
                result["max_rate_p99_under_50ms"] = held
        finally:
            await close_agents(agents, readers)
    analyzer.cancel()  # (an early return leaves it to the event loop's shutdown)
    return result


def cli(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    if args.ab:
        ab.cli(args)
        return
    server = BenchServer(args.pg_shared_buffers_mb) if args.pg == "own" else None
    dataset.SERVER = server.start() if server else args.pg.rstrip("/")
    say(f"PostgreSQL: {server.describe() if server else dataset.SERVER}")
    try:
        if args.customers_from_shared:
            from bench import shared_mode

            result = uvloop.run(shared_mode.main(args))
        else:
            started = time.perf_counter()
            result = uvloop.run(main(args))
            say(f"bench took {time.perf_counter() - started:.0f} s")
    finally:
        if server:
            server.stop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    cli()
