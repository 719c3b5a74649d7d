"""Demo mode: shipped customers, demo users and queues; the lifespan runs the demo call centre
(``app.calls.demo_centre``)."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import import_orders
from app.customers.models import Customer
from app.db import create_engine, create_sessionmaker
from app.insights import train as insights_training
from app.queues import service as queues
from app.reports import customer_base
from app.reports.models import RetentionMonth
from app.settings import Settings, get_settings
from app.users import service as users

DEMO_FILE = Path(__file__).resolve().parent / "demo_data" / "retail_demo.csv.gz"
DEMO_PASSWORD = "demo"
DEMO_USERS = (
    ("alice", "agent", "201", ["sales", "support"]),
    ("bob", "agent", "202", ["sales", "support"]),
    ("sam", "supervisor", None, ["sales", "support"]),
)
# Freephone numbers from Ofcom's drama range: the numbers callers dial to reach each queue.
DEMO_QUEUES = (("sales", ["+448081570001"]), ("support", ["+448081570002"]))


async def seed(settings: Settings) -> bool:
    """Load demo customers, users and queues when the database has no customers yet."""
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            count = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
        seeded = False
        if count == 0:
            await import_orders(engine, DEMO_FILE, default_region=settings.default_region)
            # Pops show insights and next needs from the first call on.
            await insights_training.train(
                engine,
                decline_suppress_days=settings.decline_suppress_days,
                reports=customer_base.RefreshOptions.of(settings),
            )
            seeded = True
        elif not await _has_reports(engine):
            # A demo database trained before the reports existed: show them at once too.
            await customer_base.refresh(engine, customer_base.RefreshOptions.of(settings))
        async with create_sessionmaker(engine)() as session:
            for name, numbers in DEMO_QUEUES:
                await queues.upsert_queue(
                    session, name=name, numbers=numbers, default_region=settings.default_region
                )
            for username, role, extension, queue_names in DEMO_USERS:
                if await users.get_by_username(session, username) is None:
                    await users.upsert_user(
                        session,
                        username=username,
                        role=role,
                        password=DEMO_PASSWORD,
                        extension=extension,
                        queues=queue_names,
                    )
            await session.commit()
        return seeded
    finally:
        await engine.dispose()


async def _has_reports(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(select(RetentionMonth.month).limit(1))).first() is not None


def prepare(settings: Settings, *, host: str, port: int, console: Console) -> None:
    """Seed, then switch the process into demo mode (the lifespan starts the simulator)."""
    seeded = asyncio.run(seed(settings))
    os.environ["SCREENPOP_DEMO"] = "1"
    if settings.webhook_secret is None:
        # The simulator signs its events like any PBX would; this secret lives for this run.
        os.environ["SCREENPOP_WEBHOOK_SECRET"] = secrets.token_hex(16)
    os.environ.setdefault("SCREENPOP_PUBLIC_URL", f"http://{host}:{port}")
    get_settings.cache_clear()
    base = f"http://{host}:{port}"
    console.print(
        f"[bold green]screenpop demo[/bold green] {'seeded' if seeded else 'ready'} at {base}\n"
        f"  agent screen:      {base}/agent       (alice / demo, bob / demo)\n"
        f"  supervisor board:  {base}/supervisor  (sam / demo)\n"
        "  calls are simulated every few seconds: answer them on the agent screen's demo phone\n"
        "  (simulated agents sim-… take the rest); stop with Ctrl-C"
    )
