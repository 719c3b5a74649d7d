"""The shipped nginx configuration in front of two real instances, as docker compose runs it.

nginx (Debian's, on loopback) gets ``deploy/nginx.conf`` with only the upstream addresses and
the port changed; an agent's websocket and the PBX's event both go through it, to whichever
instance it picks, and the pop arrives. Skips without an nginx binary (CI installs one).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.live.test_two_instances import (
    Instances,
    event,
    frames_for,
    instances,
    login,
    post_event,
    pumping,
)
from tests.support.server import free_port

__all__ = ["instances"]
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def nginx(instances: Instances, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        pytest.skip("no nginx binary (apt-get install nginx-light)")
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("app1:8000", f"127.0.0.1:{instances.a.port}")
    conf = conf.replace("app2:8000", f"127.0.0.1:{instances.b.port}")
    conf = re.sub(r"listen 80;", f"listen 127.0.0.1:{port};", conf)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-g", f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/logs/error.log;"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_websockets_and_events_through_nginx(instances: Instances, nginx: str) -> None:
    ws_url = nginx.replace("http://", "ws://")
    call_id = f"lb-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as http:
        answers = [await http.get(nginx + "/healthz") for _ in range(6)]
        token = await login(http, nginx, "alice")
        async with connect(f"{ws_url}/ws/agent?token={token}") as ws:
            await pumping(ws)
            await post_event(http, nginx, event(call_id, "queued"))
            await post_event(http, nginx, event(call_id, "offered", agent="alice"))
            frames = await frames_for(ws, call_id, settle_s=0.2)
        served = [
            (await http.get(server.url + "/metrics")).text for server in (instances.a, instances.b)
        ]
    assert [f["type"] for f in frames][:1] == ["pop"]
    # nginx sets the request id; the app echoes it.
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]) for r in answers)
    for text in served:  # the balancer spread the requests over both instances
        assert re.search(
            r'screenpop_http_requests_total\{method="GET",route="/healthz",status="200"\} [1-9]',
            text,
        )
