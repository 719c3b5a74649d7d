"""Quality, time and memory of `screenpop train` / `evaluate` on the shared retail data.

    .venv/bin/python -m bench.train_eval [--file ../shared/data/retail_train.csv.gz]
                                         [--split 2011-08-09] [--backend postgresql|sqlite]
                                         [--skip-full]

1. Splits the file by time: lines before ``--split`` (train) and the two months from it
   (holdout), written to temporary files.
2. Imports the train part into a fresh database, runs ``screenpop train`` (so predictions are
   as of the newest training order, just before the split) and ``screenpop evaluate`` on the
   holdout: the quality figures, with 95 % bootstrap intervals and the simple baselines.
3. Scores the same suggestions as an outside client sees them, through the profile API of a
   real server (``bench/profile_scorer.py``), and reports whether that agrees with ``evaluate``.
4. Imports the whole file into another fresh database and times ``screenpop train`` on it
   (wall seconds and the peak RSS of the train process): the cost figures.

Prints the figures and, last, one JSON line. Exits cleanly when the shared data is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.profile_scorer import score_through_api

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "data" / "retail_train.csv.gz"
PG_DSN = os.environ.get("SCREENPOP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
SCREENPOP = [sys.executable, "-m", "app.cli"]
SINCE = "2011-10-01"  # the full file's last week


def split(source: Path, cut: date, out_dir: Path) -> tuple[Path, Path]:
    """Train = lines before ``cut``; holdout = lines in [cut, cut + 60 days)."""
    end = (cut + timedelta(days=60)).isoformat()
    start = cut.isoformat()
    train, holdout = out_dir / "train.csv", out_dir / "holdout.csv"
    with (
        gzip.open(source, "rt", newline="") as fh,
        train.open("w", newline="") as tr,
        holdout.open("w", newline="") as ho,
    ):
        header = fh.readline()
        tr.write(header)
        ho.write(header)
        for line in fh:
            # customer_id and invoice_no hold no commas: the third field is the date.
            day = line.split(",", 3)[2]
            if day < start:
                tr.write(line)
            elif day < end:
                ho.write(line)
    return train, holdout


async def new_database(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    name = f"screenpop_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def run(url: str, *args: str, stream: str = "stdout") -> tuple[str, float, float]:
    """Run a screenpop command; (its stdout or stderr, wall seconds, peak RSS MiB)."""
    env = {**os.environ, "SCREENPOP_DATABASE_URL": url, "SCREENPOP_LOG_JSON": "false"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*SCREENPOP, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"screenpop {' '.join(args)} failed:\n{err.decode()[-3000:]}")
    # ru_maxrss of the children so far: the largest child, which is this one when it is alone.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return (out if stream == "stdout" else err).decode(), seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--split", type=date.fromisoformat, default=date(2011, 8, 9))
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--skip-full", action="store_true", help="only the quality figures")
    args = parser.parse_args()
    if not args.file.exists():
        print(f"{args.file} not found (the shared data set is not on this machine): skipped")
        return
    result: dict[str, Any] = {"split": args.split.isoformat(), "backend": args.backend}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        train_csv, holdout_csv = split(args.file, args.split, tmp)
        url = asyncio.run(new_database(args.backend, tmp))
        try:
            run(url, "import", str(train_csv))
            _, train_s, _ = run(url, "train")
            out, _, _ = run(url, "evaluate", "--holdout", str(holdout_csv))
            result["evaluation"] = json.loads(out.strip().splitlines()[-1])
            result["split_train_s"] = round(train_s, 1)
            api = score_through_api(url, train_csv, holdout_csv, k=10)
            result["profile_api"] = api
            result["api_agrees"] = all(
                api[kind][m] == result["evaluation"][kind][m]
                for kind in ("reorder_or_new", "cross_sell")
                for m in ("hit_rate", "recall", "mrr", "customers")
            )
        finally:
            asyncio.run(drop_database(url))
        if not args.skip_full:
            # Separate children so that RUSAGE_CHILDREN's peak is the train process's own:
            # the import child runs first in its own subprocess tree from a fresh helper.
            url = asyncio.run(new_database(args.backend, tmp))
            try:
                helper = [sys.executable, "-m", "bench.train_eval", "--child-train", url]
                run(url, "import", str(args.file))
                proc = subprocess.run(helper, cwd=ROOT, capture_output=True, check=True)
                result["full"] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            finally:
                asyncio.run(drop_database(url))
    ev = result["evaluation"]
    print(f"holdout customers: {ev['customers']} (k={ev['k']})")
    rows = [("model", ev), *((f"baseline {n}", b) for n, b in ev["baselines"].items())]
    for name, figures in rows:
        for kind in ("reorder_or_new", "cross_sell"):
            print(f"{name:32} {kind:15} {_line(figures[kind])}")
    print(f"profile API scorer agrees with evaluate: {result['api_agrees']}")
    if "full" in result:
        full = result["full"]
        print(
            f"full-data train: {full['train_s']} s wall, {full['train_cpu_s']} s CPU,"
            f" peak RSS {full['peak_rss_mib']} MiB"
        )
        print(f"train --since {SINCE}: {full['since_s']} s for {full['since_customers']} customers")
    print(json.dumps(result))


def _line(m: dict[str, Any]) -> str:
    ci = m.get("ci95", {})
    return (
        "  ".join(
            f"{name} {m[name]:.3f} [{ci.get(name, ['-', '-'])[0]}, {ci.get(name, ['-', '-'])[1]}]"
            for name in ("hit_rate", "recall", "mrr")
        )
        + f"  (n={m.get('customers')})"
    )


def child_train(url: str) -> None:
    """Run `screenpop train` alone under this fresh process and report its time and peak RSS,
    then time a `train --since` over the last week of the data."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, seconds, peak = run(url, "train")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # `train` prints its progress and its JSON summary on the console (stderr).
    err, since_s, _ = run(url, "train", "--since", SINCE, stream="stderr")
    report = json.loads(err[err.index("{") :])
    print(
        json.dumps(
            {
                "train_s": round(seconds, 1),
                "train_cpu_s": round(cpu, 1),
                "peak_rss_mib": round(peak),
                "since_s": round(since_s, 1),
                "since_customers": report["customers"],
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-train":
        child_train(sys.argv[2])
    else:
        main()
