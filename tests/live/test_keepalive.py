"""Websocket keepalive pings are staggered: a floor that connects at once does not ping at once."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from app.live.keepalive import FIRST_PING_FROM, StaggeredPingProtocol

INTERVAL = 20.0


async def _app(scope: Any, receive: Any, send: Any) -> None:
    return None


async def test_first_pings_of_connections_opened_together_are_spread_over_the_interval() -> None:
    config = Config(app=_app, ws="app.live.keepalive:StaggeredPingProtocol")
    config.ws_ping_interval = INTERVAL
    config.load()
    assert config.ws_protocol_class is StaggeredPingProtocol
    loop = asyncio.get_running_loop()
    protocols = [
        StaggeredPingProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        for _ in range(200)
    ]
    try:
        for protocol in protocols:
            protocol.start_keepalive()
        now = loop.time()
        delays = sorted(p.ping_timer.when() - now for p in protocols if p.ping_timer)
        assert len(delays) == len(protocols)
        assert delays[0] >= FIRST_PING_FROM * INTERVAL - 0.1
        assert delays[-1] <= INTERVAL + 0.1
        # Spread, not a burst: every tenth of the interval (after the first twentieth) is used.
        buckets = {int(d // (INTERVAL / 10)) for d in delays}
        assert buckets >= set(range(1, 10))
    finally:
        for protocol in protocols:
            protocol.stop_keepalive()


async def test_no_interval_means_no_pings() -> None:
    config = Config(app=_app, ws="app.live.keepalive:StaggeredPingProtocol", ws_ping_interval=None)
    config.load()
    protocol = StaggeredPingProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    protocol.start_keepalive()
    assert protocol.ping_timer is None
