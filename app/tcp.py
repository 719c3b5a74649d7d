"""Connections whose peer stops reading are cut by the kernel, not held for a minute.

A websocket client that stops reading fills its TCP window; the app then drops its
subscription and closes (4008), but neither the close frame nor anything else can leave, and
an orderly close waits for the send buffer to drain: the connection and its buffers stay
until TCP gives up on its own (38-66 s measured). ``TCP_USER_TIMEOUT`` on the listening
socket, inherited by every accepted connection, makes Linux abort a connection whose sent
data stays unacknowledged, or unsent for a zero window, for that long.
"""

from __future__ import annotations

import socket


def cut_stalled_peers(sock: socket.socket, timeout_s: float) -> bool:
    """Set ``TCP_USER_TIMEOUT`` on ``sock`` (0: leave the kernel default); False where the
    platform has no such option (the connection then lives until TCP gives up)."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None or timeout_s <= 0 or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, option, int(timeout_s * 1000))
    return True
