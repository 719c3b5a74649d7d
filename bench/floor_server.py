"""The floor: the least any server can do for a pop, as a bare ASGI app under uvicorn.

    uvicorn bench.floor_server:app --loop uvloop --http httptools   (env FLOOR_DSN=postgresql://…)

* ``WS /ws?agent=NAME`` — a connection that receives frames for NAME.
* ``POST /event`` ``{"call_id", "agent", "caller"}`` — one prepared asyncpg lookup (customer,
  account, insights and 20 order lines, JSON built by PostgreSQL), one ~2 KB frame to the
  agent's websocket, 202. No framework, no ORM, no journal: a lower bound, not a product.
* ``POST /push`` ``{"call_id", "agent"}`` — the same frame path without the lookup.
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import orjson

LOOKUP_SQL = """
SELECT json_build_object(
  'customer', json_build_object('id', c.id, 'name', c.name, 'type', c.customer_type,
                                'since', c.created_at, 'language', c.language),
  'account', json_build_object('balance', a.balance, 'credit_limit', a.credit_limit,
                               'currency', a.currency),
  'insights', json_build_object('value_tier', i.value_tier, 'segment', i.segment,
                                'stage', i.stage, 'treatment', i.treatment),
  'purchases', (SELECT coalesce(json_agg(l), '[]'::json) FROM (
      SELECT o.invoice_no, o.ordered_at, ol.sku, ol.description, ol.quantity, ol.unit_price
      FROM (SELECT id, invoice_no, ordered_at FROM orders WHERE customer_id = c.id
            ORDER BY ordered_at DESC LIMIT 20) o
      JOIN order_lines ol ON ol.order_id = o.id
      ORDER BY o.ordered_at DESC, ol.line_no LIMIT 20) l)
)::text
FROM customer_phones p
JOIN customers c ON c.id = p.customer_id
LEFT JOIN accounts a ON a.customer_id = c.id
LEFT JOIN customer_insights i ON i.customer_id = c.id
WHERE p.e164 = $1
LIMIT 5
"""

PADDING = "x" * 1800  # the /push frame is about the size of a real pop

Scope = dict[str, Any]
_pool: asyncpg.Pool | None = None
_sockets: dict[str, Any] = {}


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Any, status: int, body: bytes = b"") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            dsn = os.environ.get("FLOOR_DSN")
            if dsn:
                _pool = await asyncpg.create_pool(dsn, min_size=4, max_size=8)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _websocket(scope: Scope, receive: Any, send: Any) -> None:
    query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
    agent = query.get("agent", "")
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    _sockets[agent] = send
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        if _sockets.get(agent) is send:
            del _sockets[agent]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    path = scope["path"]
    if path == "/healthz":
        await _reply(send, 200, b"{}")
        return
    event = orjson.loads(await _body(receive))
    head = orjson.dumps(
        {"type": "pop", "version": 1, "call": {"id": f"generic:{event['call_id']}"}}
    )
    if path == "/event" and _pool is not None:
        profile = await _pool.fetchval(LOOKUP_SQL, event["caller"])
        frame = head[:-1] + b',"profile":' + (profile or "null").encode() + b"}"
    else:
        frame = head[:-1] + b',"padding":"' + PADDING.encode() + b'"}'
    target = _sockets.get(event["agent"])
    if target is not None:
        await target({"type": "websocket.send", "text": frame.decode()})
    await _reply(send, 202, b'{"ok":true}')
