"""The reconnect loop shared by the PBX stream connectors (Asterisk AMI, FreeSWITCH ESL).

A connector connects, logs in, reads events forever and, when the PBX restarts or the network
drops, reconnects with exponential backoff (capped, with jitter so a fleet of instances does not
stampede a restarting PBX). A session that logged in resets the backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from telephony.events import REFUSED, CallEvent, malformed

logger = logging.getLogger(__name__)

EventHandler = Callable[[CallEvent], Awaitable[None]]


class LoginFailed(Exception):
    """The PBX refused our credentials (retried with backoff: it may be mid-restart)."""


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow; the session is restarted."""


class Backoff:
    """Exponential backoff with full jitter in [delay/2, delay], capped at ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until ``reset``."""
        delay = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        """Back to the initial delay (after a successful login)."""
        self.attempt = 0


class StreamConnector:
    """Base of the TCP event-stream connectors; subclasses implement ``_session``."""

    default_port = 0
    scheme = ""

    def __init__(
        self,
        url: str,
        on_event: EventHandler,
        default_region: str,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        idle_timeout: float = 90.0,
    ) -> None:
        parts = urlsplit(url)
        if self.scheme and parts.scheme != self.scheme:
            raise ValueError(f"expected a {self.scheme}:// URL, got {parts.scheme!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or self.default_port
        self.username = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.on_event = on_event
        self.default_region = default_region
        self.idle_timeout = idle_timeout
        self.backoff = Backoff(backoff_initial, backoff_max)
        self.logins = 0  # successful logins so far: observable by health checks and tests
        self._stopping = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        """Connect, log in and read events until ``stop``; reconnect on any failure."""
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                logger.warning(
                    "pbx stream cannot connect", extra={**self._where(), "error": repr(exc)}
                )
            else:
                self._writer = writer
                try:
                    await self._session(reader, writer)
                except (
                    OSError,
                    EOFError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    TimeoutError,
                    LoginFailed,
                    ProtocolError,
                ) as exc:
                    if not self._stopping.is_set():
                        logger.warning(
                            "pbx stream session ended", extra={**self._where(), "error": repr(exc)}
                        )
                finally:
                    self._writer = None
                    writer.close()
                    with contextlib.suppress(OSError, ConnectionError):
                        await writer.wait_closed()
            if self._stopping.is_set():
                break
            delay = self.backoff.next_delay()
            logger.info(
                "pbx stream reconnecting", extra={**self._where(), "delay_s": round(delay, 1)}
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def stop(self) -> None:
        """Stop reading and close the connection; ``run`` then returns."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.close()

    def _logged_in(self) -> None:
        self.logins += 1
        self.backoff.reset()
        logger.info("pbx stream logged in", extra=self._where())

    def _events(self, convert: Callable[[], list[CallEvent]]) -> list[CallEvent]:
        """The events of one PBX message; one that cannot be stored is logged and skipped
        (a PBX message is never retried, so dropping it beats stopping the stream)."""
        try:
            return convert()
        except REFUSED as exc:
            logger.warning("%s: event refused: %s", self.scheme, malformed(exc).detail)
            return []

    async def _deliver(self, events: list[CallEvent]) -> None:
        for event in events:
            try:
                await self.on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad event must not cost us the stream; the handler logs its own context.
                logger.exception(
                    "pbx stream event handler failed",
                    extra={**self._where(), "event_id": event.event_id, "call_id": event.call_id},
                )

    def _where(self) -> dict[str, object]:
        return {"scheme": self.scheme, "host": self.host, "port": self.port}

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
