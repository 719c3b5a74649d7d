"""A PostgreSQL server of the test's own: ``initdb`` in a temp folder, a free loopback port.

For tests that stop, freeze or kill the database (never the machine's server at 5432). Runs
the installed PostgreSQL's own programs; as root they run as the ``postgres`` user
(``runuser``), as ``initdb`` refuses root. The server is started in a process group of its
own; ``kill()`` takes the postmaster and every child at once, as a crash would.
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

import asyncpg
import psutil
import pytest

from tests.support.databases import require_postgres
from tests.support.server import free_port

SERVER_USER = "postgres"


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_root() -> bool:
    return os.geteuid() == 0


def _command(args: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *args] if _as_root() else args


class OwnPostgres:
    """One server: ``start``, ``kill`` (SIGKILL to the whole server), ``start`` again."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            message = "PostgreSQL server programs (initdb) not installed"
            if require_postgres():
                pytest.fail(message + " (SCREENPOP_REQUIRE_POSTGRES=1)")
            pytest.skip(message)
        self.bin = bindir
        # In /tmp itself (world-traversable): pytest's own temp folders are root-only.
        self.dir = Path(tempfile.mkdtemp(prefix="screenpop-own-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if _as_root():
            shutil.chown(self.dir, SERVER_USER)
        subprocess.run(
            _command([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        log = (self.dir / "server.log").open("ab")
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.dir),
            "fsync": "on",
            "max_connections": "60",
        }
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self.proc = subprocess.Popen(
            _command(args), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL exited:\n{tail}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
                env={**os.environ, "PGUSER": "postgres"},
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not become ready")

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def backend_pid(self, backend_type: str) -> int:
        """The PID of one of the server's own processes (``walwriter``, ``checkpointer``)."""
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = $1", backend_type
            )
        finally:
            await conn.close()
        if pid is None:
            raise RuntimeError(f"no {backend_type} process")
        return int(pid)

    def kill(self) -> None:
        """SIGKILL to the postmaster and every child at once (a crash, no shutdown)."""
        if self.proc is None:
            return
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        server = psutil.Process(pid)
        processes = [server, *server.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=10)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """A clean shutdown ("fast": sessions are ended, the server exits), as an operator's."""
        if self.proc is None:
            return
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        self.proc.wait(30)
        self.proc = None

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
