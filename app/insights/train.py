"""``screenpop train``: compute insights and next needs for every customer and write them in bulk.

A full run reads the history (one streaming query per table), fits the next-need rankers on
past time windows (``ranker.py``), computes every customer's insight block and ranked next
needs with their reasons, and replaces the rows in ``customer_insights`` / ``next_needs`` batch
by batch (delete + insert per batch, one transaction each, so the hot path always sees a
complete set for a customer).

A ``--since`` run recomputes only the customers with orders or touch points since the date. It
reuses the last full run's rankers and population thresholds (tier cut-offs, medians) and
recomputes the generators' inputs (popularity, co-purchase, neighbours) from the current data.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from rich.console import Console
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import create_engine, utcnow
from app.insights import next_needs as model
from app.insights import ranker, segments
from app.insights.aggregates import HORIZON_DAYS
from app.insights.history import History, Ints, from_day, load_history, to_day
from app.insights.models import CustomerInsight, InsightRun, NextNeed
from app.insights.progress import Report, StageBars, silent
from app.insights.reasons import Reasons
from app.reports import customer_base
from app.settings import Settings

WRITE_BATCH_CUSTOMERS = 2_000
ACCEPT_BOOST_DAYS = 365.0


@dataclass
class TrainReport:
    """What a run did; ``as_dict`` is what the CLI prints."""

    kind: str  # full | since
    as_of: datetime
    since: datetime | None
    customers: int
    next_needs: int
    refitted: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "as_of": self.as_of.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "customers": self.customers,
            "next_needs": self.next_needs,
            "refitted": self.refitted,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class _Computed:
    insights: list[dict[str, Any]]
    needs: list[dict[str, Any]]
    params: dict[str, Any]
    refitted: bool


def parse_since(value: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC. Raises ValueError when unreadable."""
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def train(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    decline_suppress_days: int = 90,
    reports: customer_base.RefreshOptions | None = None,
    progress: Report = silent,
) -> TrainReport:
    """Recompute insights and next needs (all customers, or those active since ``since``),
    then the customer-base reports as of the same moment (``reports``: their settings).

    ``now`` is the moment the predictions are for; by default just after the newest order in
    the database (the data's "as of": wrap-ups arrive live and do not move it, but those after
    it still apply), so a database of old orders is scored as of its end. With an explicit
    ``now`` nothing dated at or after it is read.
    """
    started = time.perf_counter()
    started_at = utcnow()
    say = progress
    async with engine.connect() as conn:
        say("reading history", 0, 1)
        history = await load_history(conn)
        last_full = await _last_full_params(conn) if since is not None else None
    as_of = now or _as_of(history)
    now_day = to_day(as_of)
    # An explicit ``now`` reads nothing after it. By default "now" is the newest order, and the
    # wrap-ups recorded since (declines, grades) still count: they are the live part.
    history = history.before(now_day, now_day if now is not None else np.inf)
    if since is None:
        targets = np.arange(history.n_customers, dtype=np.int64)
    else:
        s = to_day(since)
        active = np.concatenate(
            [
                history.line_customer[history.line_day >= s],
                history.touch_customer[history.touch_day >= s],
            ]
        )
        targets = np.unique(active).astype(np.int64)
    say("reading history", 1, 1)
    computed = await asyncio.to_thread(
        _compute, history, now_day, targets, last_full, decline_suppress_days, say
    )
    async with engine.connect() as conn:
        await _write(conn, history.customer_ids[targets], computed, say)
        await conn.execute(
            insert(InsightRun),
            [
                {
                    "kind": "full" if since is None else "since",
                    "as_of": as_of,
                    "since": since,
                    "started_at": started_at,
                    "finished_at": utcnow(),
                    "customers": len(computed.insights),
                    "next_needs": len(computed.needs),
                    "params": computed.params,
                }
            ],
        )
        await conn.commit()
    say("reports", 0, 1)
    await customer_base.refresh(engine, reports or customer_base.RefreshOptions(), as_of=as_of)
    say("reports", 1, 1)
    return TrainReport(
        kind="full" if since is None else "since",
        as_of=as_of,
        since=since,
        customers=len(computed.insights),
        next_needs=len(computed.needs),
        refitted=computed.refitted,
        seconds=time.perf_counter() - started,
    )


def _as_of(history: History) -> datetime:
    """Just after the newest order: the data's "as of" (wrap-ups are live, so not the clock)."""
    newest = float(history.line_day.max(initial=-np.inf))
    if not np.isfinite(newest):
        return utcnow()
    return from_day(newest) + timedelta(minutes=1)


async def _last_full_params(conn: AsyncConnection) -> dict[str, Any] | None:
    query = (
        select(InsightRun.params)
        .where(InsightRun.kind == "full")
        .order_by(InsightRun.id.desc())
        .limit(1)
    )
    params = (await conn.execute(query)).scalar_one_or_none()
    return params if params and "rankers" in params else None


def _feedback(
    history: History, now: float, suppress_days: int
) -> tuple[dict[int, set[int]], dict[int, list[int]]]:
    """Declined products per customer (suppressed), and accepted ones (their neighbours boosted).

    The newest outcome for a (customer, product) wins: accepted after declining lifts the ban.
    """
    newest: dict[tuple[int, int], tuple[float, str]] = {}
    for o in history.outcomes:
        if o.item < 0 or o.day >= now:
            continue
        key = (o.customer, o.item)
        if key not in newest or newest[key][0] <= o.day:
            newest[key] = (o.day, o.outcome)
    exclude: dict[int, set[int]] = {}
    boost: dict[int, list[int]] = {}
    for (c, item), (day, outcome) in newest.items():
        if outcome == "declined" and now - day <= suppress_days:
            exclude.setdefault(c, set()).add(item)
        elif outcome == "accepted" and now - day <= ACCEPT_BOOST_DAYS:
            boost.setdefault(c, []).append(item)
    return exclude, boost


def _compute(
    history: History,
    now: float,
    targets: Ints,
    last_full: dict[str, Any] | None,
    suppress_days: int,
    say: Report,
) -> _Computed:
    """The CPU part (run in a worker thread so a scheduled refresh never blocks the loop)."""
    if last_full is not None and not ranker.Rankers.fits(last_full["rankers"]):
        last_full = None  # fitted on other features (an older version): refit now
    refitted = last_full is None
    if last_full is None:
        rankers = ranker.fit_rankers(history, now, say)
        thresholds = None
    else:
        rankers = ranker.Rankers.from_dict(last_full["rankers"])
        thresholds = segments.Thresholds.from_dict(last_full["thresholds"])
    say("segments and value", 0, 1)
    insights, thresholds = segments.compute(history, now, targets, thresholds)
    feedback_day = max(now, float(history.touch_day.max(initial=now)) + 1e-6)
    exclude, boost = _feedback(history, feedback_day, suppress_days)
    say("segments and value", 1, 1)
    say(f"scoring {len(targets)} customers", 0, 1)
    suggestions, agg, _ = model.suggest(
        history, now, rankers, targets, exclude=exclude, boost=boost
    )
    say(f"scoring {len(targets)} customers", 1, 1)
    computed_at = utcnow()
    accepted = {(c, i) for c, items in boost.items() for i in items}
    need_rows = _need_rows(history, suggestions, Reasons(history, agg, accepted), computed_at)
    insight_rows = _insight_rows(history, insights, computed_at)
    params = {
        "rankers": rankers.as_dict(),
        "thresholds": thresholds.as_dict(),
        "horizon_days": HORIZON_DAYS,
    }
    if last_full is not None:
        params = {**last_full, "horizon_days": HORIZON_DAYS}
    return _Computed(insight_rows, need_rows, params, refitted)


def _insight_rows(
    history: History, insights: dict[int, segments.Insight], computed_at: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": int(history.customer_ids[c]),
            "clv_historic": Decimal(str(ins.clv_historic)),
            "clv_forecast": Decimal(str(ins.clv_forecast)),
            "value_tier": ins.value_tier,
            "potential": ins.potential,
            "segment": ins.segment,
            "stage": ins.stage,
            "churn_risk": ins.churn_risk,
            "satisfaction_trend": ins.satisfaction_trend,
            "treatment": ins.treatment,
            "details": ins.details,
            "computed_at": computed_at,
        }
        for c, ins in insights.items()
    ]


def _need_rows(
    history: History, found: model.Suggestions, reasons: Reasons, computed_at: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": int(history.customer_ids[c]),
            "rank": int(rank),
            "sku": history.skus[i][:32],
            "name": (history.names[i] or history.skus[i])[:200],
            "kind": str(kind),
            "score": round(float(p), 5),
            "reason": reasons.reason(c, i, kind, driver, anchor, x)[:300],
            "may_offer": bool(history.consent[c]),
            "computed_at": computed_at,
        }
        for c, i, kind, p, rank, anchor, driver, x in zip(
            found.c.tolist(),
            found.i.tolist(),
            found.kind.tolist(),
            found.score.tolist(),
            found.rank.tolist(),
            found.anchor.tolist(),
            found.driver.tolist(),
            found.x,
            strict=True,
        )
    ]


async def _write(
    conn: AsyncConnection, customer_ids: Ints, computed: _Computed, say: Report
) -> None:
    """Replace the rows of the given customers, one transaction per batch of customers."""
    by_customer: dict[int, list[dict[str, Any]]] = {}
    for row in computed.needs:
        by_customer.setdefault(row["customer_id"], []).append(row)
    insights = {row["customer_id"]: row for row in computed.insights}
    ids = [int(x) for x in customer_ids]
    say("writing", 0, len(ids))
    for start in range(0, len(ids), WRITE_BATCH_CUSTOMERS):
        batch = ids[start : start + WRITE_BATCH_CUSTOMERS]
        await conn.execute(delete(NextNeed).where(NextNeed.customer_id.in_(batch)))
        await conn.execute(delete(CustomerInsight).where(CustomerInsight.customer_id.in_(batch)))
        ins_rows = [insights[c] for c in batch if c in insights]
        need_rows = [row for c in batch for row in by_customer.get(c, [])]
        await _insert(conn, CustomerInsight.__table__, ins_rows)
        await _insert(conn, NextNeed.__table__, need_rows)
        await conn.commit()
        say("writing", start + len(batch), len(ids))


async def _insert(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # COPY through asyncpg: ~10x faster than executemany for 100k rows.
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        columns = list(rows[0])
        records = [
            tuple(json.dumps(r[c]) if c == "details" else r[c] for c in columns) for r in rows
        ]
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
    else:
        await conn.execute(insert(table), rows)


async def run_cli(settings: Settings, since: str | None, console: Console) -> None:
    """`screenpop train [--since DATE]`: run, print progress and a JSON summary."""
    import typer

    since_at: datetime | None = None
    if since is not None:
        try:
            since_at = parse_since(since)
        except ValueError:
            console.print(f"[red]--since {since!r} is not an ISO date (e.g. 2011-08-01)[/red]")
            raise typer.Exit(2) from None
    engine = create_engine(settings.database_url)
    try:
        with StageBars(console) as bars:
            report = await train(
                engine,
                since=since_at,
                decline_suppress_days=settings.decline_suppress_days,
                reports=customer_base.RefreshOptions.of(settings),
                progress=bars,
            )
    finally:
        await engine.dispose()
    console.print_json(data=report.as_dict())
