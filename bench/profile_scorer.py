"""Score next needs as an outside client sees them: through ``GET /api/customers/{id}/profile``.

Independent of ``screenpop evaluate``'s database reads: "bought before" comes from the train CSV
(quantity > 0, not a ``C`` invoice, product codes), the suggestions from the profile API of a
real ``screenpop serve`` on a free loopback port, and the figures from the same protocol
(``app.insights.metrics``). ``bench.train_eval`` prints both and whether they agree.
"""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app.insights import metrics
from app.insights.evaluate import read_holdout
from app.insights.history import is_product_code

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-scorer-password"


def bought_before(train_csv: Path) -> dict[str, set[str]]:
    """Products each customer bought in the train CSV (the protocol's filters)."""
    before: dict[str, set[str]] = {}
    with train_csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["invoice_no"].upper().startswith("C") or int(row["quantity"]) <= 0:
                continue
            if is_product_code(row["stock_code"].strip().upper()):
                before.setdefault(row["customer_id"].strip(), set()).add(
                    row["stock_code"].strip().upper()
                )
    return before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def profile_lists(
    client: httpx.AsyncClient, refs: list[str]
) -> dict[str, list[tuple[str, str]]]:
    """Each customer's ``next_needs`` as (sku, kind), in the profile's order (signed-in client)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for ref in refs:
        found = await client.get("/api/customers", params={"external_ref": ref})
        found.raise_for_status()
        people = found.json()["customers"]
        if not people:
            continue
        profile = await client.get(f"/api/customers/{people[0]['id']}/profile")
        profile.raise_for_status()
        out[ref] = [(n["sku"], n["kind"]) for n in profile.json()["next_needs"]]
    return out


async def _lists(base: str, refs: list[str]) -> dict[str, list[tuple[str, str]]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login = await client.post(
            "/api/auth/login", json={"username": "bench-scorer", "password": PASSWORD}
        )
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"
        return await profile_lists(client, refs)


def score_through_api(url: str, train_csv: Path, holdout_csv: Path, k: int) -> dict[str, Any]:
    """Serve the database at ``url``, read every holdout customer's profile, score it."""
    env = {**os.environ, "SCREENPOP_DATABASE_URL": url, "SCREENPOP_LOG_JSON": "false"}
    env.setdefault("SCREENPOP_JWT_SECRET", "bench-scorer-secret-" + "x" * 32)
    cli = [sys.executable, "-m", "app.cli"]
    add = [*cli, "user", "add", "bench-scorer", "--role", "supervisor", "--password-stdin"]
    subprocess.run(add, cwd=ROOT, env=env, input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True)  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        later, _ = read_holdout(holdout_csv)
        before = bought_before(train_csv)
        refs = sorted(r for r in later if r in before)
        lists = asyncio.run(_lists(base, refs))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return metrics.score(lists, before, later, k)
