"""Websocket keepalive pings, staggered across connections.

uvicorn pings every websocket ``ws_ping_interval`` seconds after it connected. When a whole
floor (re)connects at once - a server restart, a network blip, the start of a shift - every
connection pings in the same instant, every interval, for as long as they stay connected:
2,000 agents is 2,000 ping frames and pongs in one burst, a stall of the event loop that
lands on whichever pops are in flight. ``StaggeredPingProtocol`` schedules each connection's
first ping at a random point of the first interval, so pings spread evenly; later ones keep
uvicorn's spacing (and its pong timeout, which closes a dead connection).
"""

from __future__ import annotations

import random

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# The first ping comes between these fractions of the interval after the connection opened.
FIRST_PING_FROM = 0.05
FIRST_PING_TO = 1.0


class StaggeredPingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol with a random first ping."""

    def start_keepalive(self) -> None:
        interval = self.ping_interval
        if interval is None or interval <= 0:
            return
        delay = random.uniform(FIRST_PING_FROM, FIRST_PING_TO) * interval
        self.ping_timer = self.loop.call_later(delay, self.send_keepalive_ping)
