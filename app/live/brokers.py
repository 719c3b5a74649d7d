"""Brokers carry hub messages between publishers and this process's subscribers.

``MemoryBroker`` serves one instance. ``RedisBroker`` serves several through Redis pub/sub:
a publish goes to Redis and every instance (the publisher too) hands it to its own hub exactly
once, from ONE subscriber task per process that holds a pattern subscription on
``{prefix}:*``. A pattern (rather than a SUBSCRIBE per channel as websockets come and go) means
a websocket is covered the moment it subscribes locally, so the replay an endpoint reads from
the database right after subscribing can never race a missing Redis subscription.

Redis payload: ``b"<origin>[;<provenance>] <seq>\\n" + frame`` where ``frame`` is the message's
JSON, sent to the websockets as is (orjson never emits a raw newline), and ``provenance`` the
event's arrival and trace when the publisher gave them (``Provenance.encode``: no space, newline
or ``;``). The provenance rides on the origin token so that an instance of an older version,
which reads ``<origin> <seq>``, still delivers the message (a rolling upgrade loses no pop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.live.provenance import Provenance

log = logging.getLogger(__name__)

# Hands one message to the hub: (channel, frame, decoded message or None to decode lazily,
# the provenance it was published with).
Deliver = Callable[[str, bytes, dict[str, Any] | None, Provenance | None], Awaitable[None]]
OnReconnect = Callable[[], None]

# Remember this many of our own sequence numbers that were delivered locally as a fallback.
FALLBACK_MEMORY = 10_000


class Broker(Protocol):
    """What the hub needs from a broker."""

    @property
    def connected(self) -> bool:
        """True when messages published now reach every instance."""
        ...

    @property
    def down_reason(self) -> str | None:
        """Why published messages do not reach every instance now (None: they do)."""
        ...

    async def start(self, deliver: Deliver, on_reconnect: OnReconnect) -> None:
        """Deliver to ``deliver``; call ``on_reconnect`` when messages may have been lost."""
        ...

    async def publish(
        self,
        channel: str,
        frame: bytes,
        message: dict[str, Any],
        provenance: Provenance | None = None,
    ) -> None:
        """Send one message to every instance's hub; never raises for an unreachable backend."""
        ...

    async def close(self) -> None:
        """Stop delivering and release connections."""
        ...


class MemoryBroker:
    """One process: a publish is delivered straight to this process's hub."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    @property
    def connected(self) -> bool:
        return True

    @property
    def down_reason(self) -> str | None:
        return None

    async def start(self, deliver: Deliver, on_reconnect: OnReconnect) -> None:
        self._deliver = deliver

    async def publish(
        self,
        channel: str,
        frame: bytes,
        message: dict[str, Any],
        provenance: Provenance | None = None,
    ) -> None:
        if self._deliver is not None:
            await self._deliver(channel, frame, message, provenance)

    async def close(self) -> None:
        self._deliver = None


class RedisBroker:
    """Several processes through Redis pub/sub (``redis.asyncio``).

    With Redis unreachable the instance keeps serving its own websockets: a publish is delivered
    locally (and never raises into the caller, nor waits for Redis: while it is away one publish
    at a time is tried in the background, at most once a second), the subscriber task reconnects
    with exponential backoff, and once it is back ``on_reconnect`` runs so the hub asks every
    local subscription to replay from the database. If some of our publishes never reached
    Redis, the instance also broadcasts a resync request so the other instances replay too.

    The outage is logged once when it starts (``Redis unreachable; ...``) and once when it ends
    (``Redis reachable again after N s ...``); ``down_reason`` says why meanwhile (``/readyz``).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "screenpop",
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 5.0,
        ping_interval_s: float = 5.0,
        connect_timeout_s: float = 1.0,
        start_timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.origin = uuid.uuid4().hex[:12]
        # Named so an operator (or a test) can find this process's subscriber in CLIENT LIST.
        self.client_name = f"screenpop-sub-{self.origin}"
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.ping_interval_s = ping_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.start_timeout_s = start_timeout_s
        self.reconnects = 0
        self.fallbacks = 0
        self._pattern = _glob_escape(prefix + ":") + "*"
        self._control = f"{prefix}#control"
        self._origin_b = self.origin.encode()
        self._seq = 0
        self._fallback_seqs: set[int] = set()
        self._fallback_order: deque[int] = deque()
        self._deliver: Deliver | None = None
        self._on_reconnect: OnReconnect | None = None
        self._publisher: aioredis.Redis | None = None
        self._subscriber: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._up = asyncio.Event()
        self._last_rx = 0.0
        self._had_outage = False
        self._session_was_up = False
        # Some publish of ours never reached Redis: the other instances must replay.
        self._lost_outbound = False
        self._skip_publish_until = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._closing = False
        # The outage as the log and /readyz tell it: since when, and the error that began it.
        self.down_since: float | None = None
        self.down_detail = ""

    @property
    def connected(self) -> bool:
        return self._connected and self.down_since is None

    @property
    def down_reason(self) -> str | None:
        if self.connected:
            return None
        if self.down_since is None:
            return "the Redis subscriber is reconnecting"
        seconds = time.monotonic() - self.down_since
        return f"Redis unreachable for {seconds:.0f} s: {self.down_detail}"

    def _went_down(self, detail: str) -> None:
        """Note that Redis failed us; log it on the first failure of an outage only."""
        if self.down_since is not None or self._closing:
            return
        self.down_since = time.monotonic()
        self.down_detail = detail[:200]
        log.warning(
            "Redis unreachable; pops reach this instance's websockets only until it is back: %s",
            self.down_detail,
            extra={"redis_url": _redact(self.url)},
        )

    def _came_back(self) -> None:
        """Note that Redis works both ways again; log it once if an outage was on."""
        if self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        self.down_since = None
        log.warning(
            "Redis reachable again after %.1f s; websockets replay what they missed", seconds
        )

    async def start(self, deliver: Deliver, on_reconnect: OnReconnect) -> None:
        self._deliver = deliver
        self._on_reconnect = on_reconnect
        common: dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout_s,
            "socket_timeout": max(self.connect_timeout_s, 2.0),
            "socket_keepalive": True,
        }
        # One quick retry for a publish on a pooled connection Redis dropped (after a restart);
        # none after a timeout (a frozen Redis): the pop must not wait twice.
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        self._publisher = aioredis.Redis.from_url(self.url, retry=retry, **common)
        # No hidden retries on the subscriber: every reconnect must be seen, to trigger a resync.
        self._subscriber = aioredis.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), client_name=self.client_name, **common
        )
        self._task = asyncio.create_task(self._run(), name="redis-hub-subscriber")
        try:
            await asyncio.wait_for(self._up.wait(), self.start_timeout_s)
        except TimeoutError:
            self._went_down(f"no answer within {self.start_timeout_s:g} s of starting")

    async def close(self) -> None:
        self._closing = True
        for task in (self._probe, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._probe = self._task = None
        for client in (self._publisher, self._subscriber):
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
        self._connected = False

    # -- publishing --------------------------------------------------------------------------

    async def publish(
        self,
        channel: str,
        frame: bytes,
        message: dict[str, Any],
        provenance: Provenance | None = None,
    ) -> None:
        self._seq += 1
        seq = self._seq
        local = (seq, channel, frame, message, provenance)
        if self._closing:
            # Shutting down (the last websockets' presence messages, say): Redis is being let
            # go of, so this instance's own subscribers only, without a warning per message.
            await self._fallback(*local)
            return
        origin = self._origin_b
        if provenance is not None:
            origin = b"%b;%b" % (origin, provenance.encode())
        payload = b"%b %d\n%b" % (origin, seq, frame)
        if self.connected:
            # The normal path: our own subscriber brings it back to our hub, like everyone's.
            if await self._send(channel, payload):
                return
            await self._fallback(*local)
            return
        # Redis (or our subscriber) is away, so our copy may not come back: deliver it here now.
        await self._fallback(*local)
        if self._probe is not None or time.monotonic() < self._skip_publish_until:
            self._lost_outbound = True
            return
        # Still offer it to the other instances, in the background: a pop must not wait for a
        # connect timeout while Redis is away.
        self._probe = asyncio.create_task(self._send_probe(channel, payload))

    async def _send_probe(self, channel: str, payload: bytes) -> None:
        try:
            if await self._send(channel, payload) and self._connected:
                self._came_back()
        finally:
            self._probe = None

    async def _send(self, channel: str, payload: bytes) -> bool:
        assert self._publisher is not None, "RedisBroker.start() was not awaited"
        try:
            await self._publisher.publish(f"{self.prefix}:{channel}", payload)
            return True
        except (RedisError, OSError) as exc:
            self._lost_outbound = True
            # Publish locally only, for a second, before trying Redis again.
            self._skip_publish_until = time.monotonic() + 1.0
            log.debug("Redis publish failed; delivering locally", extra={"error": repr(exc)})
            self._went_down(f"publish failed: {exc!r}")
            return False

    async def _fallback(
        self,
        seq: int,
        channel: str,
        frame: bytes,
        message: dict[str, Any],
        provenance: Provenance | None,
    ) -> None:
        # If Redis did take it after all (a timeout after the write), our subscriber will bring
        # it back: remember the sequence number so that copy is skipped.
        self.fallbacks += 1
        self._fallback_seqs.add(seq)
        self._fallback_order.append(seq)
        if len(self._fallback_order) > FALLBACK_MEMORY:
            self._fallback_seqs.discard(self._fallback_order.popleft())
        if self._deliver is not None:
            await self._deliver(channel, frame, message, provenance)

    # -- subscribing -------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.reconnect_min_s
        while not self._closing:
            self._session_was_up = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("Redis subscriber disconnected", extra={"error": repr(exc)})
                self._went_down(f"subscriber: {exc!r}")
            except Exception:
                log.exception("Redis subscriber failed")
            finally:
                self._connected = False
                self._up.clear()
            self._had_outage = True
            # A connection that was up retries at once; repeated failures back off.
            if self._session_was_up:
                delay = self.reconnect_min_s
            # Full jitter keeps a fleet of instances from reconnecting in lockstep.
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self.reconnect_max_s)

    async def _session(self) -> None:
        assert self._subscriber is not None
        pubsub = self._subscriber.pubsub()
        try:
            await pubsub.psubscribe(self._pattern)
            await pubsub.subscribe(self._control)
            await self._await_confirmations(pubsub, 2)
            self._connected = self._session_was_up = True
            self._last_rx = time.monotonic()
            self._up.set()
            self._came_back()
            if self._had_outage:
                self.reconnects += 1
                log.info("Redis subscriber reconnected; asking local websockets to replay")
                if self._on_reconnect is not None:
                    self._on_reconnect()
            await self._broadcast_resync_if_needed()
            reader = asyncio.create_task(self._read(pubsub))
            watchdog = asyncio.create_task(self._watch(pubsub))
            try:
                done, _ = await asyncio.wait(
                    {reader, watchdog}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (reader, watchdog):
                    task.cancel()
                await asyncio.gather(reader, watchdog, return_exceptions=True)
            for task in done:
                task.result()
        finally:
            self._connected = False
            with contextlib.suppress(RedisError, OSError, asyncio.CancelledError):
                await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call]

    async def _await_confirmations(self, pubsub: Any, count: int) -> None:
        deadline = time.monotonic() + max(self.connect_timeout_s, 1.0)
        seen = 0
        while seen < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Redis did not confirm the subscription")
            msg = await pubsub.get_message(timeout=left)
            if msg is not None and msg["type"] in ("psubscribe", "subscribe"):
                seen += 1

    async def _read(self, pubsub: Any) -> None:
        prefix_len = len(self.prefix) + 1
        while True:
            msg = await pubsub.get_message(timeout=None)
            self._last_rx = time.monotonic()
            if msg is None:
                continue
            kind = msg["type"]
            if kind == "pmessage":
                channel = msg["channel"].decode()[prefix_len:]
                await self._receive(channel, msg["data"])
            elif kind == "message":
                self._receive_control(msg["data"])

    async def _receive(self, channel: str, data: bytes) -> None:
        header, sep, frame = data.partition(b"\n")
        origin, _, seq = header.partition(b" ")
        if not sep or not seq.isdigit():
            log.warning("ignoring a malformed hub message", extra={"channel": channel})
            return
        origin, _, stamp = origin.partition(b";")
        if origin == self._origin_b and int(seq) in self._fallback_seqs:
            return
        provenance = Provenance.decode(stamp) if stamp else None
        if self._deliver is not None:
            try:
                await self._deliver(channel, frame, None, provenance)
            except ValueError:
                log.warning("ignoring a hub message that is not JSON", extra={"channel": channel})

    def _receive_control(self, data: bytes) -> None:
        command, _, origin = data.partition(b" ")
        if command == b"resync" and origin != self._origin_b and self._on_reconnect is not None:
            log.info("another instance lost messages; asking local websockets to replay")
            self._on_reconnect()

    async def _watch(self, pubsub: Any) -> None:
        """Ping an idle connection; give up on it when even the pong does not come back."""
        while True:
            await asyncio.sleep(self.ping_interval_s)
            idle = time.monotonic() - self._last_rx
            if idle > 2 * self.ping_interval_s + self.connect_timeout_s:
                raise TimeoutError(f"Redis subscriber silent for {idle:.1f} s")
            if idle >= self.ping_interval_s:
                await pubsub.ping()
            await self._broadcast_resync_if_needed()

    async def _broadcast_resync_if_needed(self) -> None:
        if not self._lost_outbound or self._publisher is None:
            return
        try:
            await self._publisher.publish(self._control, b"resync " + self._origin_b)
            self._lost_outbound = False
        except (RedisError, OSError):
            return
        # Called with the subscriber up: a publish went through too, so Redis is back.
        self._came_back()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)
