"""Live queue statistics, rebuilt from the database at start and fed by call changes."""

from __future__ import annotations

from app.state import State


async def start(state: State) -> None:
    """Rebuild today's statistics and subscribe to call changes."""


async def stop(state: State) -> None:
    """Stop what ``start`` started."""
