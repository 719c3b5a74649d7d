"""A hand-made purchase history whose retention figures are worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.customers.models import Customer
from app.insights.models import CustomerInsight
from tests.insights.data import Line, write_csv

# Purchase days (2011, 10:00 in London: the same day in UTC). N = 3 usual intervals.
#  A Jan 1, Jan 11, Feb 9     after Jan 11 the usual interval is 10 d: defects on Feb 10
#                             unless they buy before; Feb 9 is the day before: retained. After
#                             Feb 9: (Feb 9 - Jan 1) / 2 = 19.5 d, 3 x 19.5 = 58.5 -> 59 d:
#                             defects Apr 9.
#  B Jan 1, Jan 11, Feb 10,   the same, but buys ON Feb 10 (the boundary): defected Feb 10
#    Mar 1                    and won back that day. After Feb 10: 40 / 2 = 20 d -> Apr 11;
#                             Mar 1 comes first. After Mar 1: 59 / 3 d x 3 = 59 d: defects
#                             Apr 29.
#  C Jan 15                   one purchase day: the default 60 d, 180 d -> Jul 14, after
#                             the last day counted (Jun 30): never defects here.
#  D Feb 20, return Mar 5     the return is not a purchase: one purchase day, defects Aug 19.
#  E return Mar 5 only        never bought: not in the report.
#  F Mar 1, Mar 2, Apr 20     after Mar 2: gap 1 d, at least 7 d: 21 d -> defects Mar 23, in
#                             its first month (not active at March's start: not counted);
#                             won back Apr 20; after it 50 / 2 = 25 d -> Jul 4.
#  G Jan 20, Jan 27, Feb 2,   after Jan 27: 7 d -> Feb 17; buys Feb 2; after Feb 2: 13 / 2 =
#    Mar 10                   6.5, at least 7 -> Feb 23: defects in February, the month it
#                             bought in, and counts (active at February's start: Feb 17 >=
#                             Feb 1). Won back Mar 10; after it 49 / 3 x 3 = 49 d -> Apr 28.
SEGMENT = {"A": "loyal", "B": "loyal", "C": "wandering", "D": "wandering", "F": "need-based",
           "G": "need-based"}  # fmt: skip
AS_OF = datetime(2011, 6, 30, 12, tzinfo=UTC)  # the last day counted: Jun 30
# Month by month (segments summed):
#         active_start                 defected          new          won_back
#   Jan   0                            0                 A B C G      0
#   Feb   A B C G (4)                  B G (2)           D            B
#   Mar   A B C D (4; G defected)      0 (F: not active) F            G
#   Apr   A B C D G (5; F defected)    A B G (3)         0            F
#   May   C D F (3)                    0                 0            0
#   Jun   C D F (3)                    0                 0            0
BY_MONTH = [
    # month, active_start, defected, retained, retention_rate, defection_rate, new, won_back
    ("2011-01", 0, 0, 0, None, None, 4, 0),
    ("2011-02", 4, 2, 2, 0.5, 0.5, 1, 1),
    ("2011-03", 4, 0, 4, 1.0, 0.0, 1, 1),
    ("2011-04", 5, 3, 2, 0.4, 0.6, 0, 1),
    ("2011-05", 3, 0, 3, 1.0, 0.0, 0, 0),
    ("2011-06", 3, 0, 3, 1.0, 0.0, 0, 0),
]
# By segment, all months: loyal A B: active 2 (Feb) + 2 (Mar) + 2 (Apr) = 6, defected B (Feb)
# + A B (Apr) = 3; need-based F G: active G (Feb, Apr) + F (May, Jun) = 4, defected G twice
# (Feb, Apr) = 2, new F G, won back G (Mar), F (Apr); wandering C D: active C (Feb) + C D
# (Mar to Jun) = 9, nobody defected.
BY_SEGMENT = [
    ("loyal", 6, 3, 3, 0.5, 0.5, 2, 1),
    ("need-based", 4, 2, 2, 0.5, 0.5, 2, 2),
    ("wandering", 9, 0, 9, 1.0, 0.0, 2, 0),
]
COLUMNS = ("active_start", "defected", "retained", "retention_rate", "defection_rate", "new",
           "won_back")  # fmt: skip
PURCHASES = {
    "A": [(1, 1), (1, 11), (2, 9)],
    "B": [(1, 1), (1, 11), (2, 10), (3, 1)],
    "C": [(1, 15)],
    "D": [(2, 20)],
    "F": [(3, 1), (3, 2), (4, 20)],
    "G": [(1, 20), (1, 27), (2, 2), (3, 10)],
}
REF = {name: str(90000 + n) for n, name in enumerate("ABCDEFG")}
# Value tiers and lifetime values for the value report.
VALUE = {"A": ("high", "900.50", "1200.25"), "B": ("high", "600.00", "300.00"),
         "C": ("low", "10.00", "20.00"), "D": ("low", "5.25", "7.75"),
         "F": ("medium", "100.00", "50.00"), "G": ("medium", "80.00", "40.00")}  # fmt: skip


def rows(table: list[tuple[object, ...]], by: str) -> list[dict[str, object]]:
    return [dict(zip((by, *COLUMNS), row, strict=True)) for row in table]


def lines() -> list[Line]:
    out: list[Line] = []
    for name, days in PURCHASES.items():
        for n, (month, day) in enumerate(days):
            out.append(Line(REF[name], f"{REF[name]}{n}", datetime(2011, month, day, 10), "10001"))
    for name in ("D", "E"):  # cancellations / returns: not purchases
        out.append(Line(REF[name], f"C{REF[name]}", datetime(2011, 3, 5, 10), "10001", -2))
    return out


async def load(engine: AsyncEngine, tmp_path: Path) -> dict[str, int]:
    """Import the history and give the customers their segment and value; their ids by name."""
    await import_orders(engine, write_csv(tmp_path / "hand.csv", lines()))
    async with engine.begin() as conn:
        found = (await conn.execute(select(Customer.external_ref, Customer.id))).all()
        ids = {name: next(cid for ref, cid in found if ref == REF[name]) for name in REF}
        await conn.execute(
            insert(CustomerInsight),
            [
                {"customer_id": ids[name], "segment": segment, "stage": "commitment",
                 "value_tier": VALUE[name][0], "clv_forecast": Decimal(VALUE[name][1]),
                 "clv_historic": Decimal(VALUE[name][2])}
                for name, segment in SEGMENT.items()
            ],
        )  # fmt: skip
    return ids


TODAY = date(2026, 12, 5)
