"""A Redis server of the test's own: ``redis-server`` in a temp folder on a free loopback port.

For tests that stop or kill Redis (never the machine's server at 6379). Nothing is persisted
(no RDB, no AOF), so a restart comes back empty, as a Redis used only for pub/sub does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from tests.support.server import free_port


def require_redis() -> bool:
    """Whether a missing Redis fails the tests rather than skipping them."""
    return os.environ.get("SCREENPOP_REQUIRE_REDIS") == "1"


class OwnRedis:
    """One server: ``start``, ``kill`` (SIGKILL), ``stop`` (SIGTERM) or ``freeze``/``thaw``
    (SIGSTOP/SIGCONT), ``start`` again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server not installed"
            if require_redis():
                pytest.fail(message + " (SCREENPOP_REQUIRE_REDIS=1)")
            pytest.skip(message)
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="screenpop-own-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.dir), "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--logfile", str(self.dir / "server.log")]  # fmt: skip
        self.proc = subprocess.Popen(args, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited:\n{log}")
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError("redis-server did not answer PING")

    def kill(self) -> None:
        """SIGKILL: connections drop at once, nothing is said to the clients."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: Redis shuts down as an operator's stop would."""
        self._signal(signal.SIGTERM)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung host, a full disk)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.kill()  # a frozen server dies of SIGKILL too
        shutil.rmtree(self.dir, ignore_errors=True)
