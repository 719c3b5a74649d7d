"""Password verification runs in a low-priority worker process owned by the app's lifespan."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrate
from app.db import create_engine
from app.errors import Overloaded
from app.main import create_app
from app.settings import Settings
from app.users import security
from app.users.hashing import PasswordVerifier
from tests.conftest import add_user
from tests.support.databases import sqlite_url
from tests.support.own_redis import OwnRedis
from tests.support.server import ServerProcess

LOGIN = "/api/auth/login"


def low_priority_descendants(pid: int) -> list[psutil.Process]:
    """Processes under ``pid`` that run at nice 19 (the password workers)."""
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if process.nice() == 19:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


async def test_sign_in_verifies_in_a_low_priority_worker_stopped_with_the_app(
    clean_engine: AsyncEngine, settings: Settings
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass")
    assert not low_priority_descendants(os.getpid()), "no worker before the first sign-in"
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ok = await http.post(LOGIN, json={"username": "alice", "password": "s3cret-pass"})
            wrong = await http.post(LOGIN, json={"username": "alice", "password": "nope"})
            workers = low_priority_descendants(os.getpid())
            policies = {os.sched_getscheduler(p.pid) for p in workers}
    assert ok.status_code == 200 and wrong.status_code == 401
    assert len(workers) == 1 and workers[0].pid != os.getpid()
    if hasattr(os, "SCHED_IDLE"):
        assert policies == {os.SCHED_IDLE}
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "the worker stops with the app"


async def test_a_killed_worker_is_replaced_at_the_next_sign_in(
    clean_engine: AsyncEngine, settings: Settings
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass")
    body = {"username": "alice", "password": "s3cret-pass"}
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.post(LOGIN, json=body)).status_code == 200
            (worker,) = low_priority_descendants(os.getpid())
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            again = await http.post(LOGIN, json=body)
            wrong = await http.post(LOGIN, json={**body, "password": "nope"})
            replaced = low_priority_descendants(os.getpid())
    assert again.status_code == 200 and wrong.status_code == 401
    assert [p.pid for p in replaced] != [worker.pid] and len(replaced) == 1


async def test_verifications_beyond_the_bound_are_refused_503_not_queued() -> None:
    hashed = security.hash_password("correct horse")
    verifier = PasswordVerifier(max_waiting=1)
    try:
        first = asyncio.create_task(verifier.verify(hashed, "correct horse"))
        await asyncio.sleep(0)  # the first one is waiting now
        with pytest.raises(Overloaded) as refused:
            await verifier.verify(hashed, "correct horse")
        assert (await first).matched is True
        assert refused.value.status == 503 and refused.value.retry_after
        assert (await verifier.verify(hashed, "wrong horse")).matched is False
        assert (await verifier.verify(None, "correct horse")).matched is False  # unknown user
    finally:
        await verifier.close()
    with pytest.raises(Overloaded):
        await verifier.verify(hashed, "correct horse")


@pytest.mark.timeout(240)
async def test_sign_in_works_on_every_worker_of_serve_workers(tmp_path: Path) -> None:
    """``serve --workers 2``: each worker's lifespan owns a pool; all stop with the server."""
    own_redis = OwnRedis()
    database = sqlite_url(tmp_path)
    migrate.upgrade(database)
    engine = create_engine(database)
    try:
        await add_user(engine, "alice", password="s3cret-pass")
    finally:
        await engine.dispose()
    env = {
        "SCREENPOP_DATABASE_URL": database,
        "SCREENPOP_REDIS_URL": own_redis.url,
        "SCREENPOP_JWT_SECRET": "x" * 40,
    }
    statuses: list[int] = []
    try:
        own_redis.start()
        server = ServerProcess(env, args=("--workers", "2"))
        await asyncio.to_thread(server.start, 120)
        try:
            for password in ["s3cret-pass"] * 6 + ["nope"]:
                # A new connection each time, so the kernel may hand it to either worker.
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    body = {"username": "alice", "password": password}
                    statuses.append((await http.post(LOGIN, json=body)).status_code)
            assert server.proc is not None
            descendants = psutil.Process(server.proc.pid).children(recursive=True)
            workers = low_priority_descendants(server.proc.pid)
        finally:
            await asyncio.to_thread(server.stop)
    finally:
        own_redis.close()
    assert statuses == [200] * 6 + [401]
    assert 1 <= len(workers) <= 2
    _, alive = psutil.wait_procs(descendants, timeout=15)
    assert not alive, f"left running after the server stopped: {alive}"


async def test_the_worker_ends_when_the_server_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the serving process (no lifespan shutdown): its password worker, which
    would otherwise wait on its task queue for ever, ends too, and its fork server with it."""
    database = sqlite_url(tmp_path)
    migrate.upgrade(database)
    engine = create_engine(database)
    try:
        await add_user(engine, "alice", password="s3cret-pass")
    finally:
        await engine.dispose()
    server = ServerProcess({"SCREENPOP_DATABASE_URL": database, "SCREENPOP_JWT_SECRET": "x" * 40})
    await asyncio.to_thread(server.start, 90)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            body = {"username": "alice", "password": "s3cret-pass"}
            assert (await http.post(LOGIN, json=body)).status_code == 200
        assert server.proc is not None
        descendants = psutil.Process(server.proc.pid).children(recursive=True)
        assert low_priority_descendants(server.proc.pid), "a worker verified the password"
        server.proc.kill()
        server.proc.wait(10)
    finally:
        await asyncio.to_thread(server.stop)
    _, alive = psutil.wait_procs(descendants, timeout=15)
    assert not alive, f"left running after the server was killed: {alive}"
