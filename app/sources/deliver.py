"""Delivering the outbox: Standard Webhooks over HTTP, or an INSERT into a database.

``Deliverer.deliver_due()`` takes the messages that are due, claims each (an optimistic
update, so two instances never send one message at the same time), sends it and records the
outcome: ``delivered``; or a retry after ``retry_initial_s`` * 2^(attempts-1) seconds (at most
``retry_max_s``); or ``failed`` after ``max_attempts``. A message survives restarts and
outages because it is a row; it is marked delivered only after the destination accepted it.

HTTP: ``POST`` of the JSON payload with ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``; the key is
the secret after ``whsec_`` base64-decoded (as the Standard Webhooks libraries read it), or
the secret's bytes when it is not base64. Any 2xx is success. SQL: the destination's
``statement`` with named parameters ``:id, :type, :event, :timestamp, :payload`` (JSON
text) and every top-level field of the activity's ``data``; a unique-key violation counts
as delivered (the row is already there).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.sources.config import Destination, SourcesConfig, sql_parameters
from app.sources.fetchers import source_engine
from app.sources.models import OutboxMessage

log = logging.getLogger(__name__)
CLAIM_GRACE_S = 30.0


class DeliveryError(Exception):
    """The destination did not accept the message (this attempt)."""


def signing_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff(dest: Destination, attempts: int) -> float:
    return float(min(dest.retry_initial_s * 2 ** max(attempts - 1, 0), dest.retry_max_s))


class Deliverer:
    def __init__(
        self,
        engine: AsyncEngine,
        config: SourcesConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self._http = http or httpx.AsyncClient()
        self._own_http = http is None
        self._engines: dict[str, AsyncEngine] = {}

    async def deliver_due(self, limit: int = 50) -> int:
        """Send every message due now (up to ``limit``); returns how many were delivered."""
        now = self.clock()
        query = (
            select(OutboxMessage.id, OutboxMessage.next_attempt_at, OutboxMessage.destination)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            due = (await conn.execute(query)).all()
        delivered = 0
        failing: set[str] = set()
        for message_id, planned, destination in due:
            # A destination that just failed is not tried again this round: its other
            # messages wait (a down endpoint must not hold up every other destination).
            if destination in failing:
                continue
            sent = await self._one(message_id, planned)
            if sent is False:
                failing.add(destination)
            delivered += bool(sent)
        return delivered

    async def _claim(self, message_id: str, planned: datetime) -> Any:
        """The message's row once this instance holds it (None: another one does)."""
        lease = self.clock() + timedelta(seconds=CLAIM_GRACE_S)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.status == "pending",
                    OutboxMessage.next_attempt_at == planned,
                )
                .values(next_attempt_at=lease)
            )
            if not result.rowcount:
                return None  # another instance has it
            table = OutboxMessage.__table__
            return (await conn.execute(select(table).where(table.c.id == message_id))).one()

    async def _one(self, message_id: str, planned: datetime) -> bool | None:
        """True: delivered; False: this attempt failed; None: another instance has it."""
        message = await self._claim(message_id, planned)
        if message is None:
            return None
        dest = self.config.destinations.get(message.destination)
        error: str | None = None
        try:
            if dest is None:
                raise DeliveryError(f"destination {message.destination!r} is not configured")
            timeout = dest.timeout_ms / 1000
            if dest.kind == "http":
                await asyncio.wait_for(self._post(dest, message), timeout)
            else:
                await asyncio.wait_for(self._insert(message.destination, dest, message), timeout)
        except Exception as exc:  # any failure is this attempt's, recorded and retried
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = message.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=self.clock())
        elif dest is None or attempts >= dest.max_attempts:
            values.update(status="failed")
        else:
            values["next_attempt_at"] = self.clock() + timedelta(seconds=backoff(dest, attempts))
        async with self.engine.begin() as conn:
            await conn.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
            )
        if error is not None:
            log.warning("outbox %s to %s: %s", message_id, message.destination, error)
        return error is None

    async def _post(self, dest: Destination, message: Any) -> None:
        body = orjson.dumps(message.payload)
        timestamp = int(self.clock().timestamp())
        headers = {
            **dest.headers,
            "content-type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
        }
        if dest.secret:
            headers["webhook-signature"] = sign(dest.secret, message.id, timestamp, body)
        response = await self._http.post(dest.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}")

    async def _insert(self, name: str, dest: Destination, message: Any) -> None:
        assert dest.statement is not None
        engine = self._engines.get(name)
        if engine is None:
            engine = self._engines[name] = source_engine(dest.url, pool_size=1)
        payload = message.payload
        values: dict[str, Any] = {
            k: (orjson.dumps(v).decode() if isinstance(v, dict | list) else v)
            for k, v in (payload.get("data") or {}).items()
        }
        values.update(
            id=message.id,
            type=payload.get("type"),
            event=message.event,
            timestamp=payload.get("timestamp"),
            payload=orjson.dumps(payload).decode(),
        )
        used = {k: values.get(k) for k in sql_parameters(dest.statement)}
        try:
            async with engine.begin() as conn:
                await conn.execute(text(dest.statement), used)
        except IntegrityError:
            log.info("outbox %s is already in %s", message.id, name)

    async def run(self, interval_s: float = 1.0) -> None:
        """Deliver due messages every ``interval_s`` until cancelled."""
        while True:
            try:
                await self.deliver_due()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("outbox delivery failed")
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        if self._own_http:
            await self._http.aclose()
