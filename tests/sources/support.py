"""Real parts for the sources tests: a MariaDB "ERP" database and the CRM server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.support.server import ROOT, free_port

MARIADB = os.environ.get("SCREENPOP_TEST_MARIADB", "127.0.0.1:3306")
CRM_TOKEN = "crm-token-for-tests"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def require_mariadb() -> bool:
    return os.environ.get("SCREENPOP_REQUIRE_MARIADB") == "1"


async def create_mariadb() -> str:
    """A fresh database on the machine's MariaDB (root, no password); its SQLAlchemy URL."""
    import asyncmy

    host, port = MARIADB.split(":")
    name = f"screenpop_erp_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncmy.connect(host=host, port=int(port), user="root", password="")
    except Exception as exc:
        message = f"MariaDB not reachable at {MARIADB}: {exc}"
        if require_mariadb():
            pytest.fail(message + " (SCREENPOP_REQUIRE_MARIADB=1)")
        pytest.skip(message)
    async with conn.cursor() as cur:
        await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()
    return f"mysql+asyncmy://root@{MARIADB}/{name}"


async def drop_mariadb(url: str) -> None:
    import asyncmy

    host, port = MARIADB.split(":")
    conn = await asyncmy.connect(host=host, port=int(port), user="root", password="")
    async with conn.cursor() as cur:
        await cur.execute(f"DROP DATABASE IF EXISTS `{url.rsplit('/', 1)[1]}`")
    conn.close()


class CrmProcess:
    """tests/sources/crm_server.py in a child process; stopped (and restartable) by PID."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CrmProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sources.crm_server", str(self.port), CRM_TOKEN,
             WEBHOOK_SECRET],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/stats", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the CRM test server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def get(self, path: str) -> object:
        return httpx.get(self.url + path, timeout=5).json()


README = ROOT / "docs" / "sources.md"


def readme_example(name: str) -> str:
    """The code block between ``<!-- example:NAME -->`` and ``<!-- /example:NAME -->``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"<!-- example:{name} -->")
    end = text.index(f"<!-- /example:{name} -->")
    lines = text[start:end].splitlines()[1:]
    return "\n".join(line for line in lines if not line.startswith("```")) + "\n"


async def run_sql(url: str, script: str) -> None:
    """Statements separated by ``;`` on a MariaDB database, committed."""
    from sqlalchemy import text

    from app.sources.fetchers import source_engine

    engine = source_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in script.split(";"):
                if statement.strip():
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


def examples_config(erp_url: str, crm_url: str) -> str:
    """The README's two examples, pointed at the test ERP database and CRM process."""
    text = readme_example("erp") + "\n" + readme_example("crm")
    text = text.replace("mysql+asyncmy://screenpop:${ERP_PASSWORD}@erp-db:3306/erp", erp_url)
    return text.replace("https://crm.example.com", crm_url)


EXAMPLE_ENV = {"CRM_TOKEN": CRM_TOKEN, "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET}
