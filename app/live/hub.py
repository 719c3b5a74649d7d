"""The live hub: fans messages out to websocket subscriptions and in-process listeners.

One hub per process, built by the lifespan (``build_hub``). A publish is encoded once (orjson)
and handed to a broker: ``MemoryBroker`` for one instance, ``RedisBroker`` when
``SCREENPOP_REDIS_URL`` is set. The broker brings every message back to each instance's hub
exactly once, which offers the same frame to every local subscription on that channel and
calls the channel's listeners.

Resync: when the Redis broker reconnects after an outage (or another instance says it lost
messages) the hub calls ``request_resync()`` on every local subscription — the websocket pump
then runs the endpoint's ``on_resync`` replay, or closes with 4009 so the client reconnects
and gets the replay — and runs every callback registered with ``Hub.on_reconnect``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from app.live.brokers import Broker, MemoryBroker, RedisBroker
from app.live.provenance import Provenance
from app.live.subscription import DEFAULT_COALESCE, DEFAULT_QUEUE_SIZE, Subscription, encode

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], Awaitable[None]]
ReconnectCallback = Callable[[], Awaitable[None] | None]

# A listener this far behind is worth a warning: in-process consumers must keep up.
LISTENER_BACKLOG_WARNING = 10_000


class Hub:
    """Publish/subscribe for websockets (bounded per-connection queues) and in-process listeners.

    With the in-process broker a publish offers the frame to the subscriptions and then awaits
    the listeners before it returns (deterministic, and what tests rely on). With Redis the
    subscriber task delivers; listeners then run in one worker task each, in order, so a slow
    listener never delays a pop behind it.
    """

    def __init__(
        self,
        broker: Broker | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.broker: Broker = broker or MemoryBroker()
        self.queue_size = queue_size
        self.coalesce_rules: dict[str, tuple[str, ...]] = dict(DEFAULT_COALESCE)
        self.overflows = 0
        self.resyncs = 0
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._all: set[Subscription] = set()
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._inline_listeners = isinstance(self.broker, MemoryBroker)
        self._listener_queues: dict[Listener, asyncio.Queue[tuple[str, dict[str, Any]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the broker (a Redis outage at start is survived: local delivery only)."""
        if self._started:
            return
        self._started = True
        self._closed = False
        await self.broker.start(self._deliver, self._broker_reconnected)

    async def close(self) -> None:
        """Stop the broker, end every subscription (pumps close with 1001) and listener worker."""
        await self.broker.close()
        for sub in list(self._all):
            sub.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listener_queues.clear()
        self._started = False
        self._closed = True

    @property
    def connected(self) -> bool:
        """True when a publish now reaches every instance (always, in-process)."""
        return self.broker.connected

    @property
    def down_reason(self) -> str | None:
        """Why a publish now reaches this instance only (a Redis outage), or None."""
        return self.broker.down_reason

    # -- publishing --------------------------------------------------------------------------

    async def publish(
        self, channel: str, message: dict[str, Any], *, provenance: Provenance | None = None
    ) -> None:
        """Deliver ``message`` to every subscriber of ``channel`` on every instance.

        Call it after the commit that the message reports. Never raises because Redis is
        unreachable (the message is then delivered to this instance only, and the others
        replay when it returns); raises TypeError for a message that cannot be encoded.
        ``provenance`` (the event's arrival and trace) travels beside the frame to the
        subscriptions' pumps (``app.live.provenance``); listeners do not see it.
        """
        frame = encode(message)
        if not self._started:
            if self._closed:
                # Shutting down: e.g. a websocket's last presence message after the hub closed.
                log.debug("hub closed; dropping a message", extra={"channel": channel})
                return
            # Forgiving for scripts and unit tests that never ran the lifespan.
            await self.start()
        await self.broker.publish(channel, frame, message, provenance)

    async def _deliver(
        self,
        channel: str,
        frame: bytes,
        message: dict[str, Any] | None,
        provenance: Provenance | None = None,
    ) -> None:
        subs = self._subs.get(channel)
        listeners = self._listeners.get(channel)
        if not subs and not listeners:
            return
        if message is None:
            message = orjson.loads(frame)
            if not isinstance(message, dict):
                raise ValueError("a hub message must be a JSON object")
        if subs:
            for sub in list(subs):
                sub.offer(channel, message, frame, provenance)
                if sub.overflowed:
                    self._overflowed(sub)
        if listeners:
            for listener in list(listeners):
                if self._inline_listeners:
                    await self._call_listener(listener, channel, message)
                else:
                    queue = self._listener_queue(listener)
                    queue.put_nowait((channel, message))
                    if queue.qsize() == LISTENER_BACKLOG_WARNING:
                        log.warning("hub listener falling behind", extra={"listener": listener})

    async def _call_listener(
        self, listener: Listener, channel: str, message: dict[str, Any]
    ) -> None:
        try:
            await listener(channel, message)
        except Exception:
            # One consumer's bug must not stop the others or the publisher.
            log.exception("hub listener failed", extra={"channel": channel})

    def _listener_queue(self, listener: Listener) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue = self._listener_queues.get(listener)
        if queue is None:
            queue = self._listener_queues[listener] = asyncio.Queue()
            self._spawn(self._run_listener(listener, queue))
        return queue

    async def _run_listener(
        self, listener: Listener, queue: asyncio.Queue[tuple[str, dict[str, Any]]]
    ) -> None:
        while True:
            channel, message = await queue.get()
            await self._call_listener(listener, channel, message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _overflowed(self, sub: Subscription) -> None:
        # Stop offering to it; its pump closes the websocket with 4008 and the client replays.
        self.overflows += 1
        log.warning("websocket too slow; closing it", extra={"channels": sorted(sub.channels)})
        self._detach(sub)

    # -- subscribing -------------------------------------------------------------------------

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        """A new bounded subscription to ``channels``, effective at once on every instance."""
        sub = Subscription(
            channels, self.queue_size, coalesce=self.coalesce_rules, on_close=self._detach
        )
        for channel in sub.channels:
            self._subs[channel].add(sub)
        self._all.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` (idempotent)."""
        sub.close()

    def _detach(self, sub: Subscription) -> None:
        for channel in sub.channels:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
        self._all.discard(sub)

    def subscriber_count(self, channel: str | None = None) -> int:
        """Local subscriptions on ``channel`` (or in all)."""
        if channel is None:
            return len(self._all)
        return len(self._subs.get(channel, ()))

    def add_listener(self, channel: str, listener: Listener) -> None:
        """Call ``await listener(channel, message)`` for every message on ``channel``.

        The message dict is shared: treat it as read-only.
        """
        self._listeners[channel].append(listener)

    def remove_listener(self, channel: str, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners[channel].remove(listener)

    def coalesce(self, message_type: str, *fields: str) -> None:
        """Let a pending message of ``message_type`` be replaced by a newer one.

        Two messages share a slot when they came on the same channel and agree on ``fields``
        (e.g. ``hub.coalesce("call.state", "call_id")``). Only for messages that a newer one
        makes useless; never for pops.
        """
        self.coalesce_rules[message_type] = tuple(fields)

    # -- resync ------------------------------------------------------------------------------

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Run ``callback()`` (sync or async) whenever messages may have been missed.

        That is after the Redis subscriber reconnects, or when another instance reports that
        its publishes did not reach Redis. In-process consumers rebuild from the database here.
        """
        self._reconnect_callbacks.append(callback)

    def request_resync(self) -> None:
        """Ask every local subscription and reconnect callback to replay from the database."""
        self.resyncs += 1
        for sub in list(self._all):
            sub.request_resync()
        for callback in list(self._reconnect_callbacks):
            try:
                result = callback()
            except Exception:
                log.exception("hub reconnect callback failed")
                continue
            if inspect.isawaitable(result):
                self._spawn(_logged(result))

    def _broker_reconnected(self) -> None:
        self.request_resync()


async def _logged(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("hub reconnect callback failed")


def build_hub(settings: Settings) -> Hub:
    """The hub for this process: in-process broker, or Redis when ``redis_url`` is set."""
    if settings.redis_url:
        return Hub(RedisBroker(settings.redis_url, prefix=settings.redis_prefix))
    return Hub(MemoryBroker())
