"""``screenpop reports ...``: the materialised reports, refreshed without a ``train``, and
the call reports' rollup."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import typer

from app import migrate
from app.db import create_engine
from app.reports import call_rollup
from app.settings import get_settings

cli = typer.Typer(help="Reports of the customer base.", no_args_is_help=True)


@cli.command("refresh")
def refresh() -> None:
    """Recompute retention and defection, write today's value snapshot, and roll up the call
    reports' ended days; prints JSON."""
    # Imported here: NumPy stays out of the other commands' start-up.
    from app.reports import customer_base

    settings = get_settings()
    migrate.upgrade(settings.database_url)

    async def run() -> dict[str, Any]:
        engine = create_engine(settings.database_url)
        try:
            options = customer_base.RefreshOptions.of(settings)
            summary = (await customer_base.refresh(engine, options)).as_dict()
            rolled = await call_rollup.ensure_rolled_up(
                engine, settings.timezone, datetime.now(UTC)
            )
            return {**summary, "call_rollup": rolled and rolled.as_dict()}
        finally:
            await engine.dispose()

    typer.echo(json.dumps(asyncio.run(run())))
