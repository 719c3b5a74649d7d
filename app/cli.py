"""The ``screenpop`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app import migrate as migrations
from app.reports import commands as reports_commands
from app.settings import Settings, get_settings
from app.sources import commands as source_commands

cli = typer.Typer(
    help="screenpop: the caller's profile on the agent's screen.", no_args_is_help=True
)
user_cli = typer.Typer(help="Manage agents, supervisors and admins.", no_args_is_help=True)
queue_cli = typer.Typer(help="Manage queues.", no_args_is_help=True)
cli.add_typer(user_cli, name="user")
cli.add_typer(queue_cli, name="queue")
cli.add_typer(source_commands.sources_cli, name="sources")
cli.add_typer(reports_commands.cli, name="reports")
console = Console(stderr=True)


@cli.command()
def migrate() -> None:
    """Upgrade the database to the newest schema (Alembic upgrade head)."""
    settings = get_settings()
    migrations.upgrade(settings.database_url)
    console.print(f"[green]migrated[/green] {_safe_url(settings)}")


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: Annotated[bool, typer.Option(help="Seed demo data and users; simulate calls.")] = False,
    run_migrations: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    workers: int = 1,
) -> None:
    """Migrate, then serve the API, websockets and pages."""
    import uvicorn

    from app.logs import configure_logging, logging_config

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if workers > 1 and not settings.redis_url:
        # Each worker is its own process: an agent's websocket is on one, the event may land
        # on another, and only Redis carries the pop across.
        console.print("[red]--workers > 1 needs SCREENPOP_REDIS_URL[/red] (pops cross workers)")
        raise typer.Exit(2)
    if workers > 1:
        _share_metrics_between_workers()
    if settings.sources_file is not None:
        # Refuse to start on an invalid file, naming the key.
        source_commands.sources_config(settings)
    if settings.routing_file is not None:
        _routing_rules(settings)  # the same for the routing file
    if run_migrations:
        migrations.upgrade(settings.database_url)
    if demo:
        from app import demo as demo_mode

        demo_mode.prepare(settings, host=host, port=port, console=console)
    from uvicorn.supervisors import Multiprocess

    from app.tcp import cut_stalled_peers

    config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",
        http="auto",
        log_config=logging_config(settings.log_level, settings.log_json),
        access_log=False,
        ws="websockets-sansio",
        ws_ping_interval=settings.ws_ping_interval_s or None,
        ws_per_message_deflate=settings.ws_compression,
    )
    sock = config.bind_socket()
    cut_stalled_peers(sock, settings.tcp_user_timeout_s)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(3)


def _share_metrics_between_workers() -> None:
    """Point every worker's Prometheus values at one fresh folder (``app.metrics``)."""
    import atexit
    import os
    import shutil
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The operator's folder: it must be emptied between runs, as prometheus_client says.
        return
    folder = tempfile.mkdtemp(prefix="screenpop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


@cli.command(name="import")
def import_(
    file: Annotated[Path, typer.Argument(help="Orders in the retail CSV layout (.csv or .csv.gz)")],
    mapping: Annotated[
        str,
        typer.Option(help="'retail' (the default layout), or a mapping file for CSV/JSON Lines"),
    ] = "retail",
) -> None:
    """Import orders (idempotent: the same file twice changes nothing)."""
    from app.customers.importer import ImportFileError, import_orders
    from app.db import create_engine

    settings = get_settings()
    if mapping != "retail":
        _import_mapped(settings, file, Path(mapping))
        return
    migrations.upgrade(settings.database_url)

    async def run() -> None:
        engine = create_engine(settings.database_url)
        columns = (
            TextColumn("[bold]import"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("lines"),
            TimeElapsedColumn(),
        )
        try:
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("import", total=None)
                report = await import_orders(
                    engine,
                    file,
                    default_region=settings.default_region,
                    progress=lambda n: progress.advance(task, n),
                )
        finally:
            await engine.dispose()
        for bad in report.bad_rows[:50]:
            console.print(f"[yellow]line {bad.line}[/yellow]: {bad.reason} (skipped)")
        if len(report.bad_rows) > 50:
            console.print(f"... and {len(report.bad_rows) - 50} more bad rows")
        console.print_json(data=report.as_dict())

    try:
        asyncio.run(run())
    except ImportFileError as exc:
        console.print(f"[red]cannot import:[/red] {exc}")
        raise typer.Exit(2) from exc


def _import_mapped(settings: Settings, file: Path, mapping_file: Path) -> None:
    """``import FILE --mapping MAP.toml``: customers, orders, balances or loyalty
    memberships through a mapping."""
    from app.customers.importer import ImportFileError
    from app.customers.mapped_import import import_mapped, load_mapping
    from app.db import create_engine

    async def run() -> dict[str, int]:
        mapping = load_mapping(mapping_file)
        migrations.upgrade(settings.database_url)
        engine = create_engine(settings.database_url)
        columns = (TextColumn(f"[bold]import {mapping.entity}"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn())  # fmt: skip
        try:
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("import", total=None)
                report = await import_mapped(
                    engine,
                    file,
                    mapping,
                    default_region=settings.default_region,
                    progress=lambda n: progress.advance(task, n),
                )
        finally:
            await engine.dispose()
        for where, reason in report.bad[:50]:
            console.print(f"[yellow]{where}[/yellow]: {escape(reason)} (skipped)")
        return report.as_dict()

    try:
        summary = asyncio.run(run())
    except ImportFileError as exc:
        console.print(f"[red]cannot import:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(summary))


@cli.command()
def train(
    since: Annotated[
        str | None, typer.Option(help="Only customers with orders or touch points since (ISO date)")
    ] = None,
) -> None:
    """Recompute insights and next needs for all customers (or those changed since a date)."""
    from app.insights import train as training

    settings = get_settings()
    migrations.upgrade(settings.database_url)
    asyncio.run(training.run_cli(settings, since=since, console=console))


@cli.command()
def purge(
    older_than: Annotated[
        str, typer.Option("--older-than", help="An age (90d, 12h, 4w) or an ISO date")
    ],
    only: Annotated[
        str, typer.Option(help="Comma-separated: journal, audit, deliveries (default: all)")
    ] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing")] = False,
) -> None:
    """Delete finished calls' journal, profile-view audit and pop receipts past retention."""
    from app import retention
    from app.db import create_engine

    try:
        before = retention.cutoff(older_than)
    except retention.BadAge as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    kinds = [k.strip() for k in only.split(",") if k.strip()] or None
    if kinds and set(kinds) - set(retention.TARGETS):
        console.print(f"[red]--only: choose from {', '.join(retention.TARGETS)}[/red]")
        raise typer.Exit(2)
    settings = get_settings()

    async def run() -> dict[str, int]:
        engine = create_engine(settings.database_url)
        try:
            if dry_run:
                counts = await retention.count(engine, before)
                return {k: v for k, v in counts.items() if not kinds or k in kinds}
            return await retention.purge(engine, before, kinds)
        finally:
            await engine.dispose()

    counts = asyncio.run(run())
    verb = "would delete" if dry_run else "deleted"
    console.print_json(data={"before": before.isoformat(), verb.replace(" ", "_"): counts})


@cli.command()
def evaluate(
    holdout: Annotated[Path, typer.Option(help="Later purchases in the retail CSV layout")],
    k: int = 10,
) -> None:
    """Score next-need predictions against later purchases; prints one JSON line last."""
    from app.insights import evaluate as evaluation

    settings = get_settings()
    asyncio.run(evaluation.run_cli(settings, holdout=holdout, k=k, console=console))


@cli.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Calls per second")] = 1.0,
    duration: Annotated[float, typer.Option(help="Seconds to run")] = 60.0,
    url: Annotated[str, typer.Option(help="Base URL of the service")] = "http://127.0.0.1:8000",
) -> None:
    """Post realistic, signed call events to a running service."""
    from app.calls import simulator

    settings = get_settings()
    asyncio.run(simulator.run_cli(settings, rate=rate, duration=duration, url=url, console=console))


@user_cli.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="agent, supervisor or admin")] = "agent",
    extension: Annotated[str | None, typer.Option(help="Phone extension")] = None,
    queues: Annotated[str, typer.Option(help="Comma-separated queue names")] = "",
    worker_id: Annotated[str | None, typer.Option(help="Provider worker id")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Create or update a user (prompts for a password, or reads one line from stdin)."""
    from app.db import create_engine, create_sessionmaker
    from app.errors import DomainError
    from app.users import service as users

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        console.print("[red]a password is required[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    migrations.upgrade(settings.database_url)

    async def run() -> bool:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                _, created = await users.upsert_user(
                    session,
                    username=name,
                    role=role,
                    password=password,
                    extension=extension,
                    queues=[q.strip() for q in queues.split(",") if q.strip()],
                    worker_id=worker_id,
                )
                await session.commit()
                return created
        finally:
            await engine.dispose()

    try:
        created = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"[green]{'created' if created else 'updated'}[/green] {role} {name}")


@user_cli.command("import")
def user_import(file: Path) -> None:
    """Create or update many users from ``username,role,extension,queues,password`` CSV."""
    from app.db import create_engine, create_sessionmaker
    from app.errors import DomainError
    from app.users import service as users

    settings = get_settings()
    migrations.upgrade(settings.database_url)

    async def run() -> tuple[int, int]:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await users.import_users(session, file)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        created, updated = asyncio.run(run())
    except (DomainError, OSError) as exc:
        console.print(f"[red]{getattr(exc, 'detail', exc)}[/red] (nothing imported)")
        raise typer.Exit(2) from exc
    console.print(f"[green]users:[/green] {created} created, {updated} updated")


@queue_cli.command("add")
def queue_add(
    name: str,
    numbers: Annotated[str, typer.Option(help="Comma-separated dialed numbers (DIDs)")] = "",
    service_level_s: int = 20,
    pop_mode: Annotated[str, typer.Option(help="offer, answer or off")] = "offer",
    dispositions: Annotated[
        str,
        typer.Option(
            help="Wrap-up dispositions, comma-separated: code=Label or Label "
            '(e.g. "sale=Sale made,Callback booked"); "default" restores the default list'
        ),
    ] = "",
    wrap_up_s: Annotated[
        int, typer.Option(help="Seconds an agent stays in wrap-up before being available")
    ] = 60,
    ring_timeout_s: Annotated[
        int,
        typer.Option(
            help="Seconds an offer rings an agent with no open page before it is withdrawn"
        ),
    ] = 30,
) -> None:
    """Create or update a queue, the dialed numbers that reach it and its dispositions."""
    from app.db import create_engine, create_sessionmaker
    from app.errors import DomainError
    from app.queues import dispositions as queue_dispositions
    from app.queues import service as queues

    settings = get_settings()
    migrations.upgrade(settings.database_url)

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                await queues.upsert_queue(
                    session,
                    name=name,
                    numbers=[n.strip() for n in numbers.split(",") if n.strip()],
                    service_level_s=service_level_s,
                    pop_mode=pop_mode,
                    default_region=settings.default_region,
                    wrap_up_s=wrap_up_s,
                    ring_timeout_s=ring_timeout_s,
                )
                if dispositions:
                    await queue_dispositions.set_dispositions(
                        session,
                        name,
                        None
                        if dispositions.strip() == "default"
                        else queue_dispositions.parse_dispositions(dispositions),
                    )
                await session.commit()
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from exc
    console.print(
        f"[green]queue[/green] {name} ({pop_mode}, service level {service_level_s}s,"
        f" wrap-up {wrap_up_s}s, ring timeout {ring_timeout_s}s)"
    )


def _routing_rules(settings: Settings) -> None:
    """Exit 2 naming what is wrong when the routing file cannot be used."""
    from app.customers.routing import RoutingRulesError, load_rules

    try:
        load_rules(settings.routing_file)
    except RoutingRulesError as exc:
        console.print(f"[red]SCREENPOP_ROUTING_FILE:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


@cli.command()
def audit(
    customer: Annotated[int | None, typer.Option(help="Only views of this customer id")] = None,
    user: Annotated[str | None, typer.Option(help="Only views by this username")] = None,
    day: Annotated[str | None, typer.Option(help="Only views on this UTC day, YYYY-MM-DD")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of a table")] = False,
) -> None:
    """Who viewed which customer's profile, when and for which call (newest first)."""
    import datetime as dt

    from app.customers import audit as audit_log
    from app.db import create_engine, create_sessionmaker

    try:
        on_day = dt.date.fromisoformat(day) if day else None
    except ValueError as exc:
        console.print(f"[red]--day: {day!r} is not YYYY-MM-DD[/red]")
        raise typer.Exit(2) from exc
    settings = get_settings()

    async def run() -> list[dict[str, object]]:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                return await audit_log.profile_views(
                    session, customer_id=customer, username=user, day=on_day
                )
        finally:
            await engine.dispose()

    rows = asyncio.run(run())
    if as_csv:
        sys.stdout.write(audit_log.as_csv(rows))
        return
    for row in rows:
        print("\t".join("" if row[c] is None else str(row[c]) for c in audit_log.COLUMNS))
    console.print(f"{len(rows)} view(s)")


# The systems of record's own commands (app.sources.commands), listed after the others.
cli.command()(source_commands.sync)
cli.command()(source_commands.outbox)


def _safe_url(settings: Settings) -> str:
    url = settings.database_url
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
