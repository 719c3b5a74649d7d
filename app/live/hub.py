"""The live hub: fans messages out to websocket subscribers, locally or across instances.

Minimal in-process version; see app/live/ for brokers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from app.settings import Settings

Listener = Callable[[str, dict[str, Any]], Awaitable[None]]


class Subscription:
    """One websocket's bounded queue of encoded frames."""

    def __init__(self, channels: Iterable[str], maxsize: int) -> None:
        self.channels = frozenset(channels)
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, frame: bytes) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        frame = orjson.dumps(message)
        for sub in list(self._subs.get(channel, ())):
            sub.offer(frame)
        for listener in self._listeners.get(channel, ()):
            await listener(channel, message)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        sub = Subscription(channels, self.queue_size)
        for ch in sub.channels:
            self._subs[ch].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        for ch in sub.channels:
            self._subs[ch].discard(sub)

    def add_listener(self, channel: str, listener: Listener) -> None:
        self._listeners[channel].append(listener)


def build_hub(settings: Settings) -> Hub:
    """The hub for this process: in-process broker, or Redis when ``redis_url`` is set."""
    return Hub()
