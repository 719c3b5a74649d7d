"""``python -m bench --ab REV``: the latency scenario, this tree against another revision.

The other revision is checked out with a virtualenv of its own (bench/ab_tree.py). Both trees
are served alternately on the same prepared database: round 1 old, round 1 new, round 2 old,
... (``--rounds``, at least 3). Each run starts that tree's own server (its own interpreter,
its own code), on a quiet floor (the live tables emptied), connects the agents, posts a short
warm-up, then the measured load: the same planned calls for both trees within a round. Per
run: pop latency p50 and p99 (``offered`` POST sent -> pop frame read) and the server's CPU
time per event over the measured window (utime + stime from ``/proc``).

The comparison takes the median of the runs on each side and the ratio new / old; a figure
is "no worse" when the ratio is at most 1 + ``--threshold`` (10 %). The last line of stdout is
one JSON object with every run and the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import uvloop

from app.users.security import issue_token
from bench import dataset, phones
from bench.ab_tree import RevisionTree, TreeServer, describe_worktree, migration_heads
from bench.floor import Figures, prewarm
from bench.load import (
    EVENTS_PER_CALL,
    Agent,
    PlannedEvent,
    close_agents,
    connect_agents,
    plan_calls,
    run_events,
)
from bench.pg_server import BenchServer
from tests.support.server import ROOT

SIDES = ("old", "new")
METRICS = ("p50_ms", "p99_ms", "cpu_ms_per_event")
# The main latency scenario (python -m bench's defaults) and --quick's smaller one.
MAIN = {"customers": 1_000_000, "lines": 10_000_000, "agents": 2000, "rate": 200, "duration": 30}
QUICK = {"customers": 10_000, "lines": 100_000, "agents": 200, "rate": 200, "duration": 15}
WARMUP_S = 3.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("A/B against another revision")
    g.add_argument("--ab", metavar="REV", help="compare this tree with git revision REV")
    g.add_argument("--rounds", type=_at_least_3, default=3, help="runs per side (default 3)")
    g.add_argument(
        "--quick",
        action="store_true",
        help="with --ab: 10k customers, 200 agents, 200 events/s, 15 s runs (a few minutes)",
    )
    g.add_argument("--threshold", type=float, default=0.10, help="allowed new/old - 1 (0.10)")


def _at_least_3(text: str) -> int:
    n = int(text)
    if n < 3:
        raise argparse.ArgumentTypeError(f"--rounds must be at least 3, got {n}")
    return n


@dataclass(frozen=True)
class Scenario:
    customers: int
    lines: int
    agents: int
    rate: float
    duration: float


def scenario(args: argparse.Namespace) -> Scenario:
    """The A/B scenario: the main run's or --quick's, with any size given on the command line."""
    base = QUICK if args.quick else MAIN
    picked = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in base.items()}
    return Scenario(**picked)


def run_order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in the order run: old and new alternating, old first in each round."""
    return [(r, side) for r in range(1, rounds + 1) for side in SIDES]


@dataclass
class Run:
    round: int
    side: str
    p50_ms: float
    p99_ms: float
    cpu_ms_per_event: float
    pops: int
    events: int
    errors: int
    lost: int
    load_1min: float


@dataclass(frozen=True)
class Comparison:
    metric: str
    old: float  # median of the old side's runs
    new: float
    ratio: float  # new / old
    verdict: str  # "ok", "worse" or "no data"
    old_spread: float  # max / min of the old side's runs: the noise to read the ratio against
    round_ratios: tuple[float, ...]  # new / old within each round (the two runs back to back)


def verdict(ratio: float, threshold: float) -> str:
    if math.isnan(ratio):
        return "no data"
    return "ok" if ratio <= 1 + threshold else "worse"


def _spread(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) / min(finite) if finite and min(finite) > 0 else math.nan


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def compare(runs: Sequence[Run], threshold: float) -> list[Comparison]:
    """Per figure: the median of each side's runs (runs without the figure left out)."""
    out = []
    for metric in METRICS:
        per_side = {s: [getattr(r, metric) for r in runs if r.side == s] for s in SIDES}
        old, new = (_median(per_side[s]) for s in SIDES)
        out.append(
            Comparison(
                metric, old, new, _ratio(new, old), verdict(_ratio(new, old), threshold),
                _spread(per_side["old"]), _round_ratios(runs, metric),
            )
        )  # fmt: skip
    return out


def _ratio(new: float, old: float) -> float:
    return new / old if old > 0 else math.nan


def _round_ratios(runs: Sequence[Run], metric: str) -> tuple[float, ...]:
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.side] = getattr(r, metric)
    return tuple(
        _ratio(sides["new"], sides["old"])
        for _, sides in sorted(by_round.items())
        if len(sides) == len(SIDES)
    )


def overall(comparisons: Sequence[Comparison], runs: Sequence[Run]) -> str:
    """'pass' when every figure is no worse and the new tree lost or failed nothing."""
    failed = any(r.errors or r.lost for r in runs if r.side == "new")
    return "pass" if not failed and all(c.verdict == "ok" for c in comparisons) else "fail"


def report(runs: Sequence[Run], comparisons: Sequence[Comparison], threshold: float) -> list[str]:
    lines = ["  round side   p50 ms   p99 ms  CPU ms/event   pops  errors  lost  load"]
    for r in runs:
        lines.append(
            f"  {r.round:>5} {r.side:<4} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.cpu_ms_per_event:>13.3f} {r.pops:>6} {r.errors:>7} {r.lost:>5}  {r.load_1min:.2f}"
        )
    lines.append(f"  median of the runs; ratio new/old; 'ok' means at most {1 + threshold:.2f}")
    lines.append("  figure              old        new   ratio  verdict  old max/min  each round")
    for c in comparisons:
        each = " ".join(f"{r:.2f}" for r in c.round_ratios)
        lines.append(
            f"  {c.metric:<16} {c.old:>9.3f}  {c.new:>9.3f}  {c.ratio:>6.3f}  {c.verdict:<7}  "
            f"{c.old_spread:>11.2f}  {each}"
        )
    if any(c.old_spread > 1 + threshold for c in comparisons):
        lines.append(
            f"  note: the old tree's own runs differ by more than {threshold:.0%} on some "
            "figure; read the ratios against that noise (a quieter machine, more --rounds)"
        )
    return lines


def _finite(value: Any) -> Any:
    """NaN -> None (so the JSON line is valid JSON); ratios to 4 places."""
    if isinstance(value, tuple | list):
        return [_finite(v) for v in value]
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value


def result_json(
    old: str, new: str, sc: Scenario, runs: Sequence[Run], comparisons: Sequence[Comparison]
) -> dict[str, Any]:
    return {
        "ab": {"old": old, "new": new},
        "scenario": asdict(sc),
        "runs": [{k: _finite(v) for k, v in asdict(r).items()} for r in runs],
        "comparison": {
            c.metric: {k: _finite(v) for k, v in asdict(c).items() if k != "metric"}
            for c in comparisons
        },
        "verdict": overall(comparisons, runs),
    }


# --- measuring -----------------------------------------------------------------------------------
@dataclass
class Prepared:
    dsn: str
    db_url: str
    callers: tuple[list[str], list[str]]


async def prepare(sc: Scenario, seed: int) -> Prepared:
    build = await dataset.ensure_database(
        sc.customers, sc.lines, seed=seed, log=lambda m: print("  " + m, flush=True)
    )
    dsn = dataset.asyncpg_dsn(build.name)
    await dataset.ensure_agents(dsn, sc.agents)
    await prewarm(dsn)
    return Prepared(dsn, dataset.sqlalchemy_url(build.name), await dataset.callers(dsn))


def _plan(
    sc: Scenario, agents: Sequence[Agent], db: Prepared, duration: float, seed: int
) -> list[PlannedEvent]:
    by_queue: dict[str, list[str]] = {}
    for a in agents:
        by_queue.setdefault(a.queue, []).append(a.username)
    dids = {dataset.queue_name(q): dataset.queue_did(q) for q in range(dataset.QUEUES)}
    return plan_calls(
        call_rate=sc.rate / EVENTS_PER_CALL,
        duration=duration,
        agents_by_queue=by_queue,
        dids={q: dids[q] for q in by_queue},
        buyers=db.callers[0],
        others=db.callers[1],
        unknown=phones.unknown_numbers(),
        seed=seed,
    )


@dataclass(frozen=True)
class Secrets:
    webhook: str
    jwt: str

    def token(self, username: str) -> str:
        return issue_token(self.jwt, username=username, role="agent", ttl_s=3600)


async def measure(server: TreeServer, sc: Scenario, db: Prepared, keys: Secrets,
                  round_: int, side: str) -> Run:  # fmt: skip
    """One run on a started server: agents, warm-up, measured load; the figures."""
    agents = [
        Agent(name, keys.token(name), dataset.queue_name(dataset.queue_of_agent(i)), server.ws_url)
        for i, name in ((i, dataset.agent_name(i)) for i in range(sc.agents))
    ]
    readers = await connect_agents(agents, "/ws/agent?token={token}")
    try:
        await asyncio.sleep(3)  # connect-time work (replay, presence)
        post = [server.url + "/telephony/generic/events"]
        warm = _plan(sc, agents, db, WARMUP_S, seed=10_000 + round_)
        await run_events(warm, post_urls=post, secret=keys.webhook, rate=sc.rate,
                         duration=WARMUP_S, settle_s=1)  # fmt: skip
        events = _plan(sc, agents, db, sc.duration, seed=round_)  # same calls for both sides
        cpu = server.cpu_seconds()
        outcome = await run_events(
            events, post_urls=post, secret=keys.webhook, rate=sc.rate, duration=sc.duration
        )
        cpu = server.cpu_seconds() - cpu
        for line in outcome.error_samples:
            say(f"    error: {line}")
    finally:
        await close_agents(agents, readers)
    lat, lost = outcome.latencies({a.username: a for a in agents})
    fig = Figures.of(lat, lost, outcome.errors)
    cpu_ms = round(cpu * 1000 / max(1, outcome.events_sent), 3)
    return Run(round_, side, fig.p50_ms, fig.p99_ms, cpu_ms, fig.n, outcome.events_sent,
               outcome.errors, lost, round(os.getloadavg()[0], 2))  # fmt: skip


async def run_rounds(
    trees: dict[str, tuple[Path, Path]], sc: Scenario, rounds: int, seed: int
) -> list[Run]:
    """Every run of run_order(rounds); ``trees`` maps a side to (python, tree)."""
    db = await prepare(sc, seed)
    keys = Secrets(secrets.token_hex(32), secrets.token_hex(32))
    env = {
        "SCREENPOP_DATABASE_URL": db.db_url,
        "SCREENPOP_JWT_SECRET": keys.jwt,
        "SCREENPOP_WEBHOOK_SECRET": keys.webhook,
        "SCREENPOP_LOG_LEVEL": "WARNING",
        "SCREENPOP_LOG_JSON": "true",
    }
    analyzer = asyncio.create_task(dataset.keep_analyzed(db.dsn))  # as autovacuum would
    runs: list[Run] = []
    try:
        for round_, side in run_order(rounds):
            await dataset.clear_live_data(db.dsn)
            python, tree = trees[side]
            server = TreeServer(python, tree, env)
            try:
                server.start()
                say(f"  round {round_} {side}: server pid {server.proc and server.proc.pid} "
                    f"from {tree} ({load_note()})")  # fmt: skip
                run = await measure(server, sc, db, keys, round_, side)
                if server.proc and server.proc.poll() is not None:
                    raise RuntimeError(f"the {side} server exited (code {server.proc.returncode}) "
                                       f"during round {round_}; see {server.log_path}")  # fmt: skip
            finally:
                server.stop()
            say(f"    p50 {run.p50_ms} ms  p99 {run.p99_ms} ms  CPU {run.cpu_ms_per_event} ms "
                f"per event  ({run.pops} pops, {run.errors} errors, {run.lost} lost)")  # fmt: skip
            runs.append(run)
    finally:
        analyzer.cancel()
        await asyncio.gather(analyzer, return_exceptions=True)
    return runs


def say(message: str) -> None:
    print(message, flush=True)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f}"


def schema_note(old: RevisionTree) -> None:
    """Say so when the two trees' migrations end at different revisions: the database is
    migrated to this tree's head and the old server runs on it as it is (``--no-migrate``)."""
    heads = migration_heads(old.python, old.path), migration_heads(Path(sys.executable), ROOT)
    if heads[0] != heads[1]:
        say(f"note: the old tree's migrations end at {heads[0]}, this tree's at {heads[1]}: "
            "the old server runs on this tree's schema as it is")  # fmt: skip


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def cli(args: argparse.Namespace) -> None:
    """Run the A/B of ``args.ab`` against this tree; print the table, then the JSON line."""
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on kill as on Ctrl-C
    try:
        _run(args)
    except KeyboardInterrupt:
        say("A/B interrupted: servers stopped, the checkout removed")
        raise SystemExit(130) from None


def _run(args: argparse.Namespace) -> None:
    sc = scenario(args)
    new = describe_worktree(ROOT)
    started = time.perf_counter()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        say(f"note: the machine is busy ({load_note()} on {os.cpu_count()} cores): "
            "the figures will be noisy")  # fmt: skip
    with RevisionTree(ROOT, args.ab) as old:
        say(f"A/B: old {args.ab} = {old.sha[:10]} (checked out in {old.path}), new {new} "
            f"({ROOT}); {args.rounds} rounds; {asdict(sc)}")  # fmt: skip
        schema_note(old)
        server = BenchServer(args.pg_shared_buffers_mb) if args.pg == "own" else None
        dataset.SERVER = server.start() if server else args.pg.rstrip("/")
        say(f"PostgreSQL: {server.describe() if server else dataset.SERVER}")
        try:
            trees = {"old": (old.python, old.path), "new": (Path(sys.executable), ROOT)}
            runs = uvloop.run(run_rounds(trees, sc, args.rounds, args.seed))
        finally:
            if server:
                server.stop()
    comparisons = compare(runs, args.threshold)
    for line in report(runs, comparisons, args.threshold):
        say(line)
    result = result_json(old.sha, new, sc, runs, comparisons)
    say(f"A/B took {time.perf_counter() - started:.0f} s; verdict: {result['verdict']}")
    print(json.dumps(result), flush=True)
