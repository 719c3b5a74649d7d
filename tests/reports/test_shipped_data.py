"""The retention report on the shipped demo data equals a count done by hand: plain Python over
the CSV's rows (datetime and fractions, none of the product's code), on SQLite and PostgreSQL.

Segments are given by the test (from the customer number), so the count does not depend on
what ``train`` decides: customer numbers ending in 0 get no insight row ("unscored").
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.customers.models import Customer
from app.demo import DEMO_FILE
from app.insights.models import CustomerInsight
from app.reports.customer_base import RefreshOptions, refresh
from tests.calls.support import bearer

N = 3
LONDON = ZoneInfo("Europe/London")
SEGMENTS = ("loyal", "wandering", "need-based")


def segment_of(ref: str) -> str:
    return "unscored" if ref.endswith("0") else SEGMENTS[int(ref) % 3]


def read_purchases(path: Path) -> tuple[dict[str, list[date]], date]:
    """Each customer's distinct purchase days (UTC) and the last day of the data."""
    days: dict[str, set[date]] = defaultdict(set)
    last = date.min
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            at = datetime.fromisoformat(row["invoice_date"]).replace(tzinfo=LONDON)
            day = at.astimezone(UTC).date()
            last = max(last, day)
            if not row["invoice_no"].startswith("C"):  # cancellations are not purchases
                days[row["customer_id"]].add(day)
    return {ref: sorted(d) for ref, d in days.items()}, last


def defection_day(bought: list[date]) -> date:
    """N usual intervals after the last of ``bought``, rounded up to a whole day."""
    if len(bought) == 1:
        usual = Fraction(60)
    else:
        usual = max(Fraction(7), Fraction((bought[-1] - bought[0]).days, len(bought) - 1))
    return bought[-1] + timedelta(days=math.ceil(N * usual))


def month_range(first: date, last: date) -> list[tuple[date, date]]:
    """(first day, first day of the next) of every month from ``first``'s to ``last``'s."""
    out = []
    start = first.replace(day=1)
    while start <= last:
        after = (start + timedelta(days=32)).replace(day=1)
        out.append((start, after))
        start = after
    return out


def count_by_hand(purchases: dict[str, list[date]], last: date) -> dict[tuple[str, str], list[int]]:
    """(month "YYYY-MM", segment) -> [active_start, defected, new, won_back]."""
    table: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    first = min(d[0] for d in purchases.values())
    for ref, days in purchases.items():
        # Every defection: the day after purchase k, if nothing was bought before it.
        defections, won_back = [], []
        for k in range(len(days)):
            due = defection_day(days[: k + 1])
            following = days[k + 1] if k + 1 < len(days) else None
            if (following is None or following >= due) and due <= last:
                defections.append(due)
                if following is not None:
                    won_back.append(following)
        for start, after in month_range(first, last):
            before = [d for d in days if d < start]
            active = bool(before) and defection_day(before) >= start
            figures = table[(start.strftime("%Y-%m"), segment_of(ref))]
            figures[0] += active
            figures[1] += active and any(start <= d < after for d in defections)
            figures[2] += start <= days[0] < after
            figures[3] += any(start <= d < after for d in won_back)
    return table


async def _segments(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        customers = (await conn.execute(select(Customer.id, Customer.external_ref))).all()
        rows = [
            {"customer_id": cid, "segment": segment_of(ref), "stage": "commitment",
             "value_tier": "low"}
            for cid, ref in customers
            if segment_of(ref) != "unscored"
        ]  # fmt: skip
        await conn.execute(insert(CustomerInsight), rows)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _expected(figures: list[int]) -> dict[str, Any]:
    active, defected, new, won = figures
    return {
        "active_start": active, "defected": defected, "retained": active - defected,
        "retention_rate": _rate(active - defected, active),
        "defection_rate": _rate(defected, active), "new": new, "won_back": won,
    }  # fmt: skip


async def test_the_report_equals_a_hand_count_on_the_shipped_data(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    purchases, last = read_purchases(DEMO_FILE)
    hand = count_by_hand(purchases, last)
    await import_orders(clean_engine, DEMO_FILE)
    await _segments(clean_engine)
    await refresh(clean_engine, RefreshOptions(defection_intervals=N))
    headers = bearer("sam", "supervisor")

    months: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (month, _), figures in hand.items():
        months[month] = [a + b for a, b in zip(months[month], figures, strict=True)]
    response = await client.get("/api/reports/retention", headers=headers)
    by_month = {row.pop("month"): row for row in response.json()["rows"]}
    assert response.json()["as_of"] == last.isoformat() == "2011-10-07"
    assert by_month == {m: _expected(f) for m, f in months.items() if any(f)}
    # Two months picked out, as a person would check them: defections and win-backs happen.
    assert by_month["2010-11"]["defected"] > 0 and by_month["2011-03"]["won_back"] > 0

    # By segment over 2010-06 .. 2011-05, every segment of the test's own.
    segments: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (month, segment), figures in hand.items():
        if "2010-06" <= month <= "2011-05":
            segments[segment] = [a + b for a, b in zip(segments[segment], figures, strict=True)]
    url = "/api/reports/retention?by=segment&start=2010-06-01&end=2011-05-31"
    found = (await client.get(url, headers=headers)).json()["rows"]
    by_segment = {row.pop("segment"): row for row in found}
    assert by_segment == {s: _expected(f) for s, f in segments.items()}
    assert set(by_segment) == {"loyal", "wandering", "need-based", "unscored"}
    assert all(row["defected"] > 0 for row in by_segment.values())
