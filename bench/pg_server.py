"""The bench's own PostgreSQL server, set up as a production server for this data would be.

Debian's packaged server keeps 128 MB of shared buffers; the 1M-customer database is 3 GB. On it
a lookup at 1M customers reads about nine of its thirty pages through the kernel, and the
lookup's p99 came out 1.1-1.9x that at 10k customers, whose database sits in shared buffers.
With the same 1M database on a server whose shared buffers hold it, in 2 MB huge pages, the
two came out within 0.9-1.25x of each other (with 4 KB pages, 1.15-1.4x: the huge pages'
gain points at the CPU's TLB, which covers gigabytes of buffers in 2 MB pages). That
is the usual tuning of a production PostgreSQL (shared buffers sized to the working set, huge
pages), so ``python -m bench`` measures on such a server unless ``--pg URL`` names another:

* on first use ``initdb`` (the installed PostgreSQL's own, ``pg_config --bindir``) creates it
  in ``data_dir()``; its databases stay there for the next run;
* each run starts it on a free loopback port with ``shared_buffers`` (default 4 GB: the 1M
  and 10k databases fit), ``huge_pages = try`` and 200 connections, and stops it at the end;
* huge pages must be reserved in the kernel (``vm.nr_hugepages``). Run as root, the server
  reserves what is missing while it runs and gives it back when it stops; otherwise it says
  which ``sysctl`` would reserve them and runs without.

As root, PostgreSQL's commands run as the ``postgres`` user (``runuser``), as ``initdb``
refuses root.

    python -m bench.pg_server start    # prints the server's URL and leaves it running
    python -m bench.pg_server stop
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from tests.support.server import free_port

SERVER_USER = "postgres"
DEFAULT_SHARED_BUFFERS_MB = 4096
MEMINFO = Path("/proc/meminfo")
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
# Written beside the data when the server reserved huge pages: the count to give back at stop.
HUGEPAGES_BEFORE = "screenpop-nr-hugepages-before"


class BenchServerError(RuntimeError):
    """The bench server could not be set up, started or stopped."""


def _as_root() -> bool:
    return os.geteuid() == 0


def bindir() -> Path:
    """Where the installed PostgreSQL server's programs are."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        found = Path(out.stdout.strip())
        if (found / "initdb").exists():
            return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    raise BenchServerError(
        "no PostgreSQL server programs (initdb) found: install the server, "
        "or run the bench on an existing one with --pg postgresql://user@host:port"
    )


def data_dir() -> Path:
    """``SCREENPOP_BENCH_PGDATA``, else in the server user's home (root) or ~/.cache."""
    if env := os.environ.get("SCREENPOP_BENCH_PGDATA"):
        return Path(env)
    if _as_root():
        return Path(pwd.getpwnam(SERVER_USER).pw_dir) / "screenpop-bench"
    return Path.home() / ".cache" / "screenpop" / "bench-postgres"


def _run(cmd: list[str]) -> str:
    if _as_root():
        cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchServerError(f"{' '.join(cmd)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _meminfo(key: str) -> int:
    for line in MEMINFO.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return 0


class BenchServer:
    """The server in ``directory``: started by ``start`` unless it already runs; ``stop``
    stops it only if this object started it."""

    def __init__(
        self, shared_buffers_mb: int = DEFAULT_SHARED_BUFFERS_MB, directory: Path | None = None
    ) -> None:
        self.dir = directory or data_dir()
        self.bin = bindir()
        self.shared_buffers_mb = shared_buffers_mb
        self.port: int | None = None
        self.started = False
        self.huge_pages = "off"

    @property
    def url(self) -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}"

    def describe(self) -> str:
        if not self.started:
            return f"bench server {self.url} ({self.dir}): already running, with its own settings"
        return (
            f"bench server {self.url} ({self.dir}): shared_buffers {self.shared_buffers_mb} MB, "
            f"huge pages {self.huge_pages}"
        )

    def running_port(self) -> int | None:
        """The port of a server already running on this directory, if any."""
        try:
            lines = (self.dir / "postmaster.pid").read_text().splitlines()
            os.kill(int(lines[0]), 0)
            return int(lines[3])
        except (OSError, ValueError, IndexError):
            return None

    def _settings(self, port: int) -> list[str]:
        settings = {
            "shared_buffers": f"{self.shared_buffers_mb}MB",
            "huge_pages": "try",
            "max_connections": "200",
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self.dir),
        }
        return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]

    def start(self) -> str:
        """Start the server (creating it on first use); its URL, without a database."""
        if (port := self.running_port()) is not None:
            self.port = port
            return self.url
        if not (self.dir / "PG_VERSION").exists():
            self._initdb()
        self.port = free_port()
        settings = self._settings(self.port)
        free, reserved = _meminfo("HugePages_Free"), _meminfo("HugePages_Rsvd")
        self._reserve_huge_pages(settings)
        try:
            _run([
                str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "server.log"),
                "-w", "-t", "120", "-o", " ".join(settings), "start",
            ])  # fmt: skip
        except BenchServerError:
            _give_back_huge_pages(self.dir)
            raise
        self.started = True
        if _meminfo("HugePages_Rsvd") > reserved or _meminfo("HugePages_Free") < free:
            self.huge_pages = "on"
        return self.url

    def _initdb(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            shutil.chown(self.dir, SERVER_USER)
        _run([
            str(self.bin / "initdb"), "-D", str(self.dir), "-U", SERVER_USER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        ])  # fmt: skip

    def _reserve_huge_pages(self, settings: list[str]) -> None:
        """Have the kernel hold the huge pages the server's shared memory needs."""
        query = ["-C", "shared_memory_size_in_huge_pages"]
        needed = int(_run([str(self.bin / "postgres"), "-D", str(self.dir), *settings, *query]))
        free = _meminfo("HugePages_Free") - _meminfo("HugePages_Rsvd")
        if needed <= 0 or free >= needed:
            return
        total = _meminfo("HugePages_Total")
        wanted = total + needed - free
        if not _as_root():
            self.huge_pages = f"off (reserve them with: sudo sysctl vm.nr_hugepages={wanted})"
            return
        before = self.dir / HUGEPAGES_BEFORE
        if not before.exists():
            before.write_text(str(total))
        NR_HUGEPAGES.write_text(str(wanted))

    def stop(self) -> None:
        """Stop the server if this object started it."""
        if self.started:
            stop(self.dir)
            self.started = False


def stop(directory: Path) -> None:
    """Stop the server on ``directory`` and give back the huge pages it reserved."""
    _run([str(bindir() / "pg_ctl"), "-D", str(directory), "-m", "fast", "-w", "stop"])
    _give_back_huge_pages(directory)


def _give_back_huge_pages(directory: Path) -> None:
    before = directory / HUGEPAGES_BEFORE
    if before.exists():
        NR_HUGEPAGES.write_text(before.read_text())
        before.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_server", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--shared-buffers-mb", type=int, default=DEFAULT_SHARED_BUFFERS_MB)
    args = parser.parse_args()
    server = BenchServer(args.shared_buffers_mb)
    if args.action == "start":
        print(server.start())
    elif args.action == "stop":
        if server.running_port() is not None:
            stop(server.dir)
    else:
        port = server.running_port()
        print(f"running on port {port}" if port else "not running")


if __name__ == "__main__":
    main()
