"""One websocket's bounded queue of encoded frames, with coalescing and pop de-duplication.

Policy (docs/live.md, "Slow consumers and close codes"):

- A frame is the orjson encoding of one message, shared by every subscription it goes to.
- Messages that a newer one supersedes are coalesced: a pending ``call.state`` for the same
  call, or a pending snapshot of the same kind on the same channel, is replaced by the newer
  message, which moves to the tail so it never overtakes a pop queued after the old one.
- Pops and pop updates carry their own ``version``; one that this subscription has already
  queued a pop or pop update of the call at the same or a higher version is dropped (Redis
  fallback, replays and resyncs can produce the same pop twice, and a pop update can overtake
  the pop it completes). A ``call.state`` for the call clears that memory so a call
  withdrawn and offered again pops again.
- A frame published with a ``Provenance`` (the event's arrival and trace, ``app.live.provenance``)
  is queued with it and its message, for the pump (``get_stamped``).
- Nothing else is ever discarded. When the queue is full of things that cannot be coalesced the
  subscription is marked overflowed; the websocket is then closed (4008) and the client gets
  the replay when it reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson

from app.live.provenance import Provenance, Stamped

DEFAULT_QUEUE_SIZE = 256
# Remember this many (type, call_id) versions per subscription: a long shift is a few hundred.
VERSION_MEMORY = 4096

# Message types whose pending copy is replaced by a newer one, and the fields that, with the
# channel, say which pending copy: the newest call state wins, the newest snapshot wins.
DEFAULT_COALESCE: dict[str, tuple[str, ...]] = {
    "call.state": ("call_id",),
    "queues": (),
    "queues.snapshot": (),
    "queue.stats": ("queue",),
    "supervisor.snapshot": (),
    "stats": (),
    "agent.state": ("username",),
}
# Message types de-duplicated by (type, call_id, version).
VERSIONED_TYPES = frozenset({"pop", "pop.update"})


class SubscriptionClosed(Exception):
    """The hub closed (server shutdown): stop sending."""


class Overflowed(Exception):
    """The consumer could not keep up: close the websocket (4008) and let the client replay."""


class ResyncRequired(Exception):
    """Messages may have been missed (a Redis outage): replay from the database."""


def _default(value: object) -> object:
    # Money columns come back as Decimal; FastAPI's encoder sends them as numbers too.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a hub message")


def encode(message: Mapping[str, Any]) -> bytes:
    """The frame for ``message``: compact UTF-8 JSON without newlines (the Redis envelope
    relies on that)."""
    return orjson.dumps(message, default=_default)


def call_id_of(message: Mapping[str, Any]) -> str | None:
    """The call a message is about: ``call_id``, or ``call.id`` in a pop."""
    call_id = message.get("call_id")
    if call_id is None:
        call = message.get("call")
        if isinstance(call, Mapping):
            call_id = call.get("id")
    return call_id if isinstance(call_id, str) else None


class Subscription:
    """One websocket's bounded queue of encoded frames from one or more channels.

    Created by ``Hub.subscribe``; read by ``get`` (usually through ``app.live.pump.pump``);
    ``push`` queues a message for this subscription only (a replay on connect or resync).
    """

    def __init__(
        self,
        channels: Iterable[str],
        maxsize: int = DEFAULT_QUEUE_SIZE,
        coalesce: Mapping[str, tuple[str, ...]] | None = None,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        self.channels = frozenset(channels)
        self.maxsize = maxsize
        self.overflowed = False
        self.closed = False
        self.coalesced = 0
        self.duplicates = 0
        self._coalesce = DEFAULT_COALESCE if coalesce is None else coalesce
        self._on_close = on_close
        self._pending: OrderedDict[Hashable, bytes | Stamped] = OrderedDict()
        self._serial = itertools.count()
        self._versions: dict[tuple[str, str], int] = {}
        self._resync = False
        self._wakeup = asyncio.Event()
        # Set while at most half the queue is pending: a replay pages on it (``room``).
        self._room = asyncio.Event()
        self._room.set()
        # Set once on overflow or close: a pump blocked in a send must notice too.
        self.ended = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    def __repr__(self) -> str:
        return f"<Subscription {sorted(self.channels)} pending={len(self._pending)}>"

    # -- producing --------------------------------------------------------------------------

    def offer(
        self,
        channel: str,
        message: Mapping[str, Any],
        frame: bytes,
        provenance: Provenance | None = None,
    ) -> bool:
        """Queue ``frame`` (the encoding of ``message`` published on ``channel``, with the
        ``provenance`` it was published with).

        Returns False when the frame was not queued (duplicate, or this subscription is
        overflowed or closed). Never blocks and never raises.
        """
        if self.overflowed or self.closed:
            return False
        kind = message.get("type")
        kind = kind if isinstance(kind, str) else ""
        call_id = call_id_of(message)
        if kind in VERSIONED_TYPES and call_id is not None:
            version = message.get("version")
            if isinstance(version, int):
                # One memory for both types: a pop.update can overtake the pop it updates
                # (pop completion racing the offer), and the older pop must not follow it.
                key = ("pop", call_id)
                last = self._versions.get(key)
                if last is not None and version <= last:
                    self.duplicates += 1
                    return False
                self._remember(key, version)
        elif kind == "call.state" and call_id is not None:
            # A withdrawn call offered to the same agent again must pop again.
            self._versions.pop(("pop", call_id), None)

        fields = self._coalesce.get(kind)
        if fields is not None:
            slot: Hashable = (channel, kind, *(message.get(f) for f in fields))
            if self._pending.pop(slot, None) is not None:
                self.coalesced += 1
        else:
            slot = next(self._serial)
        if len(self._pending) >= self.maxsize:
            self.overflowed = True
            self._pending.clear()
            self._wakeup.set()
            self._room.set()
            self.ended.set()
            return False
        self._pending[slot] = frame if provenance is None else Stamped(frame, message, provenance)
        self._wakeup.set()
        if len(self._pending) > self.maxsize // 2:
            self._room.clear()
        return True

    def push(self, message: Mapping[str, Any]) -> bool:
        """Queue ``message`` for this subscription alone (replays, errors, acks)."""
        return self.offer("", message, encode(message))

    def request_resync(self) -> None:
        """Tell the consumer that messages may have been missed (the hub calls this)."""
        if not self.closed:
            self._resync = True
            self._wakeup.set()

    def close(self) -> None:
        """Stop this subscription: pending frames are dropped and ``get`` raises."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        self._wakeup.set()
        self._room.set()
        self.ended.set()
        if self._on_close is not None:
            self._on_close(self)

    async def room(self) -> None:
        """Wait until at most half the queue is pending (or the subscription ended): a replay
        pushes a page at a time so it never overflows the queue, however many calls it has."""
        await self._room.wait()

    def holds(self, call_id: str) -> bool:
        """Whether this subscription queued a pop of ``call_id`` (and no ``call.state`` since)."""
        return ("pop", call_id) in self._versions

    def held_calls(self) -> set[str]:
        """Calls this subscription queued a pop for and no ``call.state`` since."""
        return {call_id for kind, call_id in self._versions if kind == "pop"}

    def _remember(self, key: tuple[str, str], version: int) -> None:
        self._versions.pop(key, None)
        self._versions[key] = version
        if len(self._versions) > VERSION_MEMORY:
            del self._versions[next(iter(self._versions))]

    # -- consuming --------------------------------------------------------------------------

    async def get(self) -> bytes:
        """The next frame, waiting for one.

        Raises ``Overflowed`` (close with 4008), ``ResyncRequired`` (replay, then carry on),
        or ``SubscriptionClosed`` (the hub is closing).
        """
        item = await self.get_stamped()
        return item if isinstance(item, bytes) else item.frame

    async def get_stamped(self) -> bytes | Stamped:
        """Like ``get``, but a frame published with a provenance comes as a ``Stamped``."""
        while True:
            if self.overflowed:
                raise Overflowed
            if self.closed:
                raise SubscriptionClosed
            if self._resync:
                self._resync = False
                raise ResyncRequired
            if self._pending:
                return self._take()
            self._wakeup.clear()
            await self._wakeup.wait()

    def get_nowait(self) -> bytes | None:
        """The next frame if one is pending (no signals), else None."""
        if self.overflowed or self.closed or self._resync or not self._pending:
            return None
        item = self._take()
        return item if isinstance(item, bytes) else item.frame

    def _take(self) -> bytes | Stamped:
        frame = self._pending.popitem(last=False)[1]
        if len(self._pending) <= self.maxsize // 2:
            self._room.set()
        return frame
