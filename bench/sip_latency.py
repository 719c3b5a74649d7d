"""INVITE sent -> pop frame received, through a real SIP chain on loopback.

    .venv/bin/python -m bench.sip_latency [--calls 50] [--warmup 3] [--backend sqlite|postgresql]

A raw SIP caller sends an INVITE to Kamailio running the shipped
``telephony/kamailio/kamailio.cfg``; Kamailio posts ``offered`` with ``http_client`` to
screenpop (real uvicorn, SQLite or PostgreSQL) and rings a baresip agent phone registered as
extension 201; screenpop pushes the pop to alice's ``WS /ws/agent``. The clock starts when the
INVITE leaves the caller's socket and stops when the pop frame is read off the websocket. Each
call is then CANCELled (abandoned) before the next one. Prints p50/p99 and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.sip.chain import (
    CALLER,
    DID,
    EXTENSION,
    KAMAILIO_TOKEN,
    PASSWORD,
    AgentSocket,
    Baresip,
    Kamailio,
    RawCaller,
    missing_binaries,
    seed_database,
)
from tests.support.databases import drop_database, new_database
from tests.support.server import ServerProcess

JWT_SECRET = "bench-jwt-secret-that-is-long-enough-for-hs256"


def _pop_of(call_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == "pop" and m["call"]["id"] == call_id


def _abandoned(call_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (
        m.get("type") == "call.state" and m["call_id"] == call_id and m["state"] == "abandoned"
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def run(calls: int, warmup: int, workdir: Path, backend: str) -> dict[str, object]:
    url = asyncio.run(new_database(backend, workdir))
    try:
        return _run(url, calls, warmup, workdir) | {"database": backend}
    finally:
        asyncio.run(drop_database(url))


def _run(url: str, calls: int, warmup: int, workdir: Path) -> dict[str, object]:
    asyncio.run(seed_database(url))
    server = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": url,
            "SCREENPOP_JWT_SECRET": JWT_SECRET,
            "SCREENPOP_KAMAILIO_TOKEN": KAMAILIO_TOKEN,
        }
    )
    kamailio = Kamailio(
        workdir / "kamailio",
        screenpop_url=f"{server.url}/telephony/kamailio/events",
        token=KAMAILIO_TOKEN,
        did_routes={DID: EXTENSION},
    )
    phone = Baresip(
        workdir / "agent-phone",
        account=f"<sip:{EXTENSION}@{kamailio.host};transport=udp>;regint=600;answermode=manual",
        name="agent-phone",
    )
    started: list[ServerProcess | Kamailio | Baresip] = []
    caller: RawCaller | None = None
    socket: AgentSocket | None = None
    try:
        for process in (server, kamailio, phone):
            process.start()
            started.append(process)
        phone.wait_registered()
        token = httpx.post(
            f"{server.url}/api/auth/login",
            json={"username": "alice", "password": PASSWORD},
            timeout=5,
        ).json()["token"]
        socket = AgentSocket(server.ws_url, token)
        caller = RawCaller(kamailio.host, from_user=CALLER)
        latencies: list[float] = []
        for index in range(warmup + calls):
            call = caller.invite(DID)
            call_id = f"kamailio:{call.call_id}"
            arrived, _ = socket.next(_pop_of(call_id), f"pop for {call_id}")
            if index >= warmup:
                latencies.append((arrived - call.sent_at) * 1000)
            caller.wait_status(call, range(180, 190))
            caller.cancel(call)
            caller.wait_status(call, range(400, 700))
            socket.next(_abandoned(call_id), f"abandoned for {call_id}")
            phone.wait_event("CALL_CLOSED")
    finally:
        if socket is not None:
            socket.close()
        if caller is not None:
            caller.close()
        for process in reversed(started):
            process.stop()
    return {
        "bench": "sip_latency",
        "calls": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "max_ms": round(max(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    missing = missing_binaries()
    if missing:
        sys.exit(f"sip_latency needs {' and '.join(missing)} (apt-get install kamailio "
                 "kamailio-utils-modules baresip-core)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="screenpop-sip-bench-") as tmp:
        started = time.perf_counter()
        result = run(args.calls, args.warmup, Path(tmp), args.backend)
    print(
        f"INVITE sent -> pop frame received over {result['calls']} calls: "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
        f"(mean {result['mean_ms']} ms, max {result['max_ms']} ms; {result['database']}; "
        f"{time.perf_counter() - started:.0f} s wall)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
