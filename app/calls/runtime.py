"""Background parts of the calls domain, started and stopped by the lifespan.

``start`` puts the ``CallService`` in ``state["services"]["calls"]``, replays journaled events
whose processing failed, starts the sweep that closes idle calls (``app.calls.expiry``), the
Asterisk AMI / FreeSWITCH ESL connectors when their URLs are set, and, in demo mode, the demo's
call centre against this very service (``app.calls.demo_centre``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from app.calls import group_commit
from app.calls.expiry import run_expiry
from app.calls.pg_store import PgStore
from app.calls.publishing import CALLS_CHANNEL
from app.calls.replay import replay_unapplied
from app.calls.service import CallService
from app.calls.store import EventStore, SessionStore
from app.hot_pool import QueryLog, create_hot_pool
from app.sources import runtime as sources_runtime
from app.state import State
from telephony.asterisk import AmiConnector
from telephony.events import CallEvent
from telephony.freeswitch import EslConnector
from telephony.stream import StreamConnector

log = logging.getLogger(__name__)


async def start(state: State) -> None:
    """Start telephony connectors (AMI, ESL) and, in demo mode, the demo call centre."""
    settings = state["settings"]
    service = CallService(
        settings,
        state["sessionmaker"],
        state["hub"],
        state["metrics"],
        store=await build_store(state),
    )
    services = state["services"]
    services["calls"] = service
    systems = sources_runtime.get(state)
    if systems is not None:
        service.publisher.sources = systems.live
        service.actions.sources = systems.config
    state["hub"].add_listener(CALLS_CHANNEL, service.on_call_change)
    tasks: list[asyncio.Task[Any]] = []
    services["calls_tasks"] = tasks
    connectors: list[StreamConnector] = []
    services["calls_connectors"] = connectors

    try:
        await replay_unapplied(state["sessionmaker"], service.planner)
    except Exception:
        log.exception("replaying unapplied journal events failed; will retry at next start")

    async def on_event(event: CallEvent) -> None:
        await service.ingest(event)

    if settings.asterisk_ami_url:
        connectors.append(
            AmiConnector(settings.asterisk_ami_url, on_event, settings.default_region)
        )
    if settings.freeswitch_esl_url:
        connectors.append(
            EslConnector(settings.freeswitch_esl_url, on_event, settings.default_region)
        )
    tasks.append(asyncio.create_task(run_expiry(service), name="calls-expiry"))
    for connector in connectors:
        tasks.append(asyncio.create_task(connector.run(), name=f"connector-{connector.scheme}"))
    if settings.demo:
        from app.calls.demo_centre import run_demo

        tasks.append(asyncio.create_task(run_demo(state), name="demo-call-centre"))


async def build_store(state: State) -> EventStore:
    """PostgreSQL's store on a hot pool (with group commit unless turned off); else the
    session store."""
    settings = state["settings"]
    timeout_s = settings.db_pool_timeout_s
    pool = create_hot_pool(
        state["engine"],
        size=settings.db_pool_size,
        timeout_s=timeout_s,
        server_settings=group_commit.SERVER_SETTINGS if settings.group_commit else None,
    )
    if pool is None:
        return SessionStore(state["sessionmaker"])
    commits = group_commit.GroupCommit(pool) if settings.group_commit else None
    return PgStore(
        state["sessionmaker"],
        pool,
        state["engine"].dialect,
        commits,
        metrics=state["metrics"],
        query_log=QueryLog(),
    )


async def stop(state: State) -> None:
    """Stop what ``start`` started."""
    services = state["services"]
    for connector in services.get("calls_connectors", []):
        with contextlib.suppress(Exception):
            await connector.stop()
    tasks: list[asyncio.Task[Any]] = services.get("calls_tasks", [])
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    service: CallService | None = services.get("calls")
    if service is not None:
        state["hub"].remove_listener(CALLS_CHANNEL, service.on_call_change)
        await service.close()
