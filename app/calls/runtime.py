"""Background parts of the calls domain, started and stopped by the lifespan."""

from __future__ import annotations

from app.state import State


async def start(state: State) -> None:
    """Start telephony connectors (AMI, ESL) and, in demo mode, the call simulator."""


async def stop(state: State) -> None:
    """Stop what ``start`` started."""
