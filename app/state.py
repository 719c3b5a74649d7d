"""The typed lifespan state: everything the service builds at start and disposes at stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.metrics import Metrics
from app.settings import Settings

if TYPE_CHECKING:
    from app.calls.demo_centre import DemoCentre
    from app.calls.service import CallService
    from app.customers.routing import RoutingRules
    from app.live.hub import Hub
    from app.queues.runtime import QueuesRuntime
    from app.queues.stats import QueueStats
    from app.sources.runtime import SourcesRuntime
    from app.users.access import Access
    from app.users.hashing import PasswordVerifier
    from app.users.login_limits import LoginLimiter
    from telephony.stream import StreamConnector


class Services(TypedDict, total=False):
    """Per-domain runtime objects, each put in place by its domain's ``runtime.start``."""

    calls: CallService
    calls_tasks: list[asyncio.Task[Any]]
    calls_connectors: list[StreamConnector]
    # Demo mode only: the demo's PBX (app.calls.demo_centre), driven by the demo phone.
    demo_centre: DemoCentre
    queue_stats: QueueStats
    queues_runtime: QueuesRuntime
    # Open agent pages on this instance, by username (app.queues.timeouts).
    agent_pages: Counter[str]
    insights_refresh: asyncio.Task[None]
    access: Access
    access_refresh: asyncio.Task[None]
    login_limits: LoginLimiter
    # Password verification in a low-priority worker process (app.users.hashing).
    passwords: PasswordVerifier
    sources: SourcesRuntime
    # Routing hints' rules (app.customers.routing), read once at start.
    routing: RoutingRules


class State(TypedDict):
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    metrics: Metrics
    hub: Hub
    services: Services
