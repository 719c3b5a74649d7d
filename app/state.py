"""The typed lifespan state: everything the service builds at start and disposes at stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.metrics import Metrics
from app.settings import Settings

if TYPE_CHECKING:
    from app.live.hub import Hub


class State(TypedDict):
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    metrics: Metrics
    hub: Hub
    # Per-domain runtime objects (queue statistics, connectors, ...) keyed by domain name.
    services: dict[str, Any]
