"""``screenpop sources check``, ``screenpop sync`` and ``screenpop outbox``: the systems of
record from the command line (``SCREENPOP_SOURCES_FILE``)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app import migrate as migrations
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.sources.config import SourcesConfig

sources_cli = typer.Typer(help="Systems of record (SCREENPOP_SOURCES_FILE).", no_args_is_help=True)
console = Console(stderr=True)


def sources_config(settings: Settings) -> SourcesConfig:
    """The validated sources file, or exit 2 naming what is wrong."""
    from app.sources.config import SourcesConfigError, load_config

    if settings.sources_file is None:
        console.print("[red]SCREENPOP_SOURCES_FILE is not set[/red]")
        raise typer.Exit(2)
    try:
        return load_config(settings.sources_file)
    except SourcesConfigError as exc:
        console.print(f"[red]{settings.sources_file}:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


@sources_cli.command("check")
def sources_check(
    number: Annotated[str | None, typer.Option(help="A caller number to ask for")] = None,
) -> None:
    """Connect to each source, run each live part for NUMBER, print what it maps (JSON)."""
    from app.sources.check import check_all
    from telephony.callerid import normalise

    settings = get_settings()
    config = sources_config(settings)
    e164 = normalise(number, settings.default_region).e164 if number else None
    if number and e164 is None:
        console.print(f"[red]{number!r} is not a phone number[/red]")
        raise typer.Exit(2)
    report = asyncio.run(check_all(config, e164))
    typer.echo(json.dumps(report, indent=2, default=str))
    failed = any("error" in p for s in report.values() for p in s["parts"].values())
    raise typer.Exit(1 if failed else 0)


def sync(
    source: Annotated[str, typer.Argument(help="A sql source with [sources.NAME.sync] queries")],
    full: Annotated[bool, typer.Option(help="Read everything again (ignore the cursor)")] = False,
) -> None:
    """Read a source's sync queries into the database (incremental by :since; resumable)."""
    from app.db import create_engine
    from app.sources.sync import SyncError, sync_source

    settings = get_settings()
    config = sources_config(settings)
    migrations.upgrade(settings.database_url)

    async def run() -> dict[str, Any]:
        engine = create_engine(settings.database_url)
        columns = (TextColumn(f"[bold]sync {source}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("rows"), TimeElapsedColumn())  # fmt: skip
        try:
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("sync", total=None)
                reports = await sync_source(
                    engine,
                    source,
                    config.sources.get(source),
                    full=full,
                    region=settings.default_region,
                    progress=lambda n: progress.advance(task, n),
                )
        finally:
            await engine.dispose()
        for entity, report in reports.items():
            for where, reason in report.records.bad[:20]:
                console.print(f"[yellow]{entity} {where}[/yellow]: {escape(reason)} (skipped)")
        return {entity: report.as_dict() for entity, report in reports.items()}

    try:
        summary = asyncio.run(run())
    except SyncError as exc:
        console.print(f"[red]cannot sync:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(summary))


def outbox(
    action: Annotated[str, typer.Argument(help="list or retry")] = "list",
    message_id: Annotated[str | None, typer.Argument(help="The message to retry")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: int = 50,
) -> None:
    """List the journaling outbox (newest first), or make a message due again."""
    from app.db import create_engine
    from app.sources import outbox as journal

    if action not in ("list", "retry") or (action == "retry") != (message_id is not None):
        console.print("[red]use: screenpop outbox list | screenpop outbox retry ID[/red]")
        raise typer.Exit(2)
    if status is not None and status not in journal.STATUSES:
        console.print(f"[red]--status must be one of {', '.join(journal.STATUSES)}[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    migrations.upgrade(settings.database_url)

    async def run() -> int:
        engine = create_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                if message_id is not None:
                    return 0 if await journal.retry(conn, message_id) else 1
                for m in await journal.list_messages(conn, status=status, limit=limit):
                    typer.echo(
                        f"{m.id}  {m.status:9}  {m.destination:12}  {m.event:8}  "
                        f"attempts={m.attempts}  created={m.created_at:%Y-%m-%d %H:%M:%S}  "
                        f"next={m.next_attempt_at:%H:%M:%S}  {m.last_error or ''}"
                    )
                typer.echo(json.dumps(await journal.counts(conn)))
                return 0
        finally:
            await engine.dispose()

    code = asyncio.run(run())
    if message_id is not None:
        if code:
            console.print(f"[red]no undelivered message {message_id}[/red]")
            raise typer.Exit(1)
        console.print(f"[green]{message_id} is due again[/green]")
