"""In-process CPU per event of ``CallService.ingest`` against PostgreSQL (no HTTP, no websocket).

    .venv/bin/python -m bench.ingest_cpu [--events 2000] [--db screenpop_bench_10k_100k]
                                         [--concurrency 1] [--profile out.prof]

Replays the bench's call mix (queued, offered, answered, ended; abandons, withheld, unknown)
through the real service on the bench database, with a hub that only counts messages. Prints
the process CPU time per event (the figure that does not depend on the neighbours on a shared
machine), wall time per event, and the machine load. Events go through
``telephony.callerid.normalise`` like a webhook's parse does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from app.calls.pg_store import PgStore
from app.calls.service import CallService
from app.calls.store import EventStore, SessionStore
from app.db import create_engine, create_sessionmaker
from app.hot_pool import QueryLog, create_hot_pool
from app.settings import Settings
from bench import dataset
from bench.load import plan_calls
from telephony.callerid import normalise
from telephony.events import CallEvent


class CountingHub:
    """Stands in for the live hub: publishing costs nothing but a counter."""

    def __init__(self) -> None:
        self.published = 0

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.published += 1


def _events(planned: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{ev.call_id}:{ev.kind}",
            "call_id": ev.call_id,
            "kind": ev.kind,
            "caller": ev.caller,
            "dialed": ev.dialed,
            "queue": ev.queue,
            "agent": ev.agent,
        }
        for ev in planned
    ]


def _event(raw: dict[str, Any]) -> CallEvent:
    return CallEvent(
        source="generic",
        event_id=raw["event_id"],
        call_id=raw["call_id"],
        kind=raw["kind"],
        caller=normalise(raw["caller"], "GB"),
        dialed=raw["dialed"],
        queue=raw["queue"],
        agent=raw["agent"],
        occurred_at=datetime.now(UTC),
        raw=raw,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--db", default=dataset.database_name(10_000, 100_000))
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--session-path",
        action="store_true",
        help="ingest through the SQLAlchemy session (as SQLite does), not the hot asyncpg pool",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as the server)")
    parser.add_argument(
        "--count", action="store_true", help="count statements and transactions per event"
    )
    args = parser.parse_args()

    dsn = dataset.asyncpg_dsn(args.db)
    await dataset.ensure_agents(dsn, args.agents)
    buyers, others = await dataset.callers(dsn, limit=20_000)
    agents_by_queue: dict[str, list[str]] = {}
    for i in range(args.agents):
        q = dataset.queue_name(dataset.queue_of_agent(i))
        agents_by_queue.setdefault(q, []).append(dataset.agent_name(i))
    dids = {dataset.queue_name(q): dataset.queue_did(q) for q in range(dataset.QUEUES)}
    rng = random.Random(args.seed)
    unknown = [f"+44163296{rng.randrange(10_000):04d}" for _ in range(200)]
    planned = plan_calls(
        call_rate=50,
        duration=args.events / 50 / 3.9 + 1,
        agents_by_queue={q: a for q, a in agents_by_queue.items() if q in dids},
        dids=dids,
        buyers=buyers,
        others=others,
        unknown=unknown,
        seed=args.seed,
    )[: args.events]
    raws = _events(planned)

    url = dataset.sqlalchemy_url(args.db)
    settings = Settings(database_url=url, pop_budget_ms=1000)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    query_log = QueryLog()
    store: EventStore = SessionStore(sessionmaker)
    if not args.session_path:
        hot_pool = create_hot_pool(engine, size=4, timeout_s=5)
        assert hot_pool is not None
        store = PgStore(
            sessionmaker,
            hot_pool,
            engine.dialect,
            group_commit=None,
            query_log=query_log,
        )
    hub: Any = CountingHub()
    service = CallService(settings, sessionmaker, hub, store=store)
    # Warm up: connections, the directory, SQLAlchemy's compiled cache.
    warm = _events(planned[:50])
    for raw in warm:
        raw["event_id"] += ":warm"
        raw["call_id"] += "-warm"
        await service.ingest(_event(raw))
    await service.drain()

    counts: Counter[str] = Counter()
    if args.count:

        def _count(sql: str) -> None:
            counts[" ".join(sql.split()[:3])[:40]] += 1

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _statement(conn: Any, cursor: Any, sql: str, *rest: Any) -> None:
            _count(sql)

        query_log.listeners.append(_count)  # the hot connections' statements

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            counts["BEGIN"] += 1

        @event.listens_for(engine.sync_engine, "commit")
        def _commit(conn: Any) -> None:
            counts["COMMIT"] += 1

        @event.listens_for(engine.sync_engine.pool, "checkout")
        def _checkout(*_: Any) -> None:
            counts["checkout (+ pre-ping)"] += 1

    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for raw in raws:
        queue.put_nowait(raw)

    async def worker() -> None:
        while not queue.empty():
            await service.ingest(_event(queue.get_nowait()))

    profiler = cProfile.Profile() if args.profile else None
    load_before = os.getloadavg()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    await service.drain()
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await service.close()
    await engine.dispose()
    n = len(raws)
    for what, count in counts.most_common():
        print(f"  {count / n:6.2f} per event  {what}")
    if counts:
        print(f"  {sum(counts.values()) / n:6.2f} per event  all of the above")
    print(
        f"events={n} concurrency={args.concurrency} cpu_ms_per_event={cpu / n * 1000:.3f} "
        f"wall_ms_per_event={wall / n * 1000:.3f} "
        f"load={load_before[0]:.2f}/{os.getloadavg()[0]:.2f} db={args.db}"
    )


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
