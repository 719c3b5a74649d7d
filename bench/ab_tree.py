"""Another revision of this repository to benchmark against, and screenpop served from a tree.

``RevisionTree`` checks a git revision out with ``git worktree add --detach`` into
``~/.cache/screenpop/ab/<commit>/tree`` (``SCREENPOP_AB_CACHE`` moves the cache), gives it a
virtualenv of its own beside it (``pip install -e`` of that tree; kept for the next A/B of the
same commit, as the checkout always comes back at the same path) and removes the checkout on
exit. A lock file in the commit's folder keeps two A/B runs of one commit apart.

``TreeServer`` runs ``python -m app.cli serve --no-migrate`` with a tree's own interpreter and
the tree as working directory, so the server runs that tree's code (never this process's), and
reads the server's CPU time from ``/proc``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import httpx

from tests.support.server import free_port

INSTALLED = ".screenpop-ab-installed"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class RevisionError(RuntimeError):
    """The revision could not be resolved, checked out or installed."""


def cache_dir() -> Path:
    if env := os.environ.get("SCREENPOP_AB_CACHE"):
        return Path(env)
    return Path.home() / ".cache" / "screenpop" / "ab"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode:
        raise RevisionError(f"git {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


def resolve(repo: Path, rev: str) -> str:
    """The full commit id ``rev`` names in ``repo``."""
    return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def describe_worktree(repo: Path) -> str:
    """HEAD's commit id, with ``+changes`` when tracked files differ from it."""
    head = git(repo, "rev-parse", "HEAD")
    dirty = git(repo, "status", "--porcelain", "--untracked-files=no")
    return f"{head}+changes" if dirty else head


def server_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment for a server of another tree: without ``PYTHONPATH`` (it
    could put this tree's code first) and the virtualenv variables of this one."""
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**out, **env}


def install_venv(tree: Path, venv: Path) -> None:
    """A virtualenv at ``venv`` with ``tree`` installed in it (``pip install -e``)."""
    for cmd in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(tree)],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RevisionError(f"{' '.join(cmd)}: {(done.stderr or done.stdout).strip()}")


class RevisionTree:
    """A checkout of ``rev`` with its own virtualenv, while the context is open."""

    def __init__(
        self,
        repo: Path,
        rev: str,
        cache: Path | None = None,
        install: Callable[[Path, Path], None] = install_venv,
    ) -> None:
        self.repo = repo
        self.install = install
        self.rev = rev
        self.sha = resolve(repo, rev)
        self.home = (cache or cache_dir()) / self.sha
        self.path = self.home / "tree"
        self.venv = self.home / "venv"
        self._lock: IO[str] | None = None

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def __enter__(self) -> RevisionTree:
        try:
            self._take_lock()
            self._remove_checkout()  # left behind by a run that was killed
            git(self.repo, "worktree", "add", "--detach", str(self.path), self.sha)
            self._ensure_venv()
            self._check_imports()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the checkout (the virtualenv stays) and release the lock."""
        try:
            self._remove_checkout()
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def _take_lock(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._lock = (self.home / "lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"  waiting for another A/B run of {self.sha[:10]} to finish", flush=True)
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    def _remove_checkout(self) -> None:
        if self.path.exists():
            try:
                git(self.repo, "worktree", "remove", "--force", str(self.path))
            except RevisionError:
                shutil.rmtree(self.path, ignore_errors=True)
        git(self.repo, "worktree", "prune")

    def _ensure_venv(self) -> None:
        stamp = self.venv / INSTALLED
        if stamp.exists() and stamp.read_text() == self.sha and self.python.exists():
            return
        print(f"  installing {self.sha[:10]} into {self.venv} (kept for later runs)", flush=True)
        shutil.rmtree(self.venv, ignore_errors=True)
        self.install(self.path, self.venv)
        stamp.write_text(self.sha)

    def _check_imports(self) -> None:
        """Fail unless the tree's interpreter imports the server code from the tree."""
        done = subprocess.run(
            [str(self.python), "-c", "import app; print(app.__file__)"],
            cwd=self.path, env=server_env({}), capture_output=True, text=True,
        )  # fmt: skip
        where = Path(done.stdout.strip() or "?").resolve()
        if done.returncode or not where.is_relative_to(self.path.resolve()):
            raise RevisionError(
                f"{self.python} imports app from {where}, not from {self.path}: {done.stderr}"
            )


HEADS_SCRIPT = """
from alembic.script import ScriptDirectory
print(" ".join(sorted(ScriptDirectory("migrations").get_heads())))
"""


def migration_heads(python: Path, tree: Path) -> str:
    """The Alembic head revision(s) of ``tree``'s migrations, read by its own interpreter."""
    done = subprocess.run(
        [str(python), "-c", HEADS_SCRIPT], cwd=tree, env=server_env({}), capture_output=True,
        text=True,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else f"? ({done.stderr.strip()[-200:]})"


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far, from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def child_pids(pid: int) -> list[int]:
    """Every descendant of ``pid`` (``/proc/<pid>/task/*/children``)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            found.append(int(child))
            found.extend(child_pids(int(child)))
    return found


class TreeServer:
    """screenpop served from ``tree`` by ``python`` on a free loopback port."""

    def __init__(self, python: Path, tree: Path, env: Mapping[str, str]) -> None:
        self.python = python
        self.tree = tree
        self.env = server_env(env)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"screenpop-ab-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> TreeServer:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.python), "-m", "app.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--no-migrate"],
                cwd=self.tree, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            try:
                if httpx.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become ready in {timeout:g} s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; nothing when not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server process and any children it started."""
        if self.proc is None:
            return 0.0
        pids = [self.proc.pid, *child_pids(self.proc.pid)]
        total = 0.0
        for pid in pids:
            try:
                total += proc_cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                pass  # a child that ended meanwhile
        return total
