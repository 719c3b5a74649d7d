"""``screenpop reports ...``: the materialised reports, refreshed without a ``train``."""

from __future__ import annotations

import asyncio
import json

import typer

from app import migrate
from app.db import create_engine
from app.settings import get_settings

cli = typer.Typer(help="Reports of the customer base.", no_args_is_help=True)


@cli.command("refresh")
def refresh() -> None:
    """Recompute retention and defection, and write today's value snapshot; prints JSON."""
    # Imported here: NumPy stays out of the other commands' start-up.
    from app.reports import customer_base

    settings = get_settings()
    migrate.upgrade(settings.database_url)

    async def run() -> customer_base.RefreshReport:
        engine = create_engine(settings.database_url)
        try:
            options = customer_base.RefreshOptions.of(settings)
            return await customer_base.refresh(engine, options)
        finally:
            await engine.dispose()

    typer.echo(json.dumps(asyncio.run(run()).as_dict()))
