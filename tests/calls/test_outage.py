"""A database outage answers 503 with ``Retry-After``, never 500, and the service recovers.

A PostgreSQL server of the test's own (``tests.support.own_postgres``) under a real screenpop
server process: several clients post events and read ``/api/calls`` while the database is
stopped for a few seconds and started again. Every answer is 2xx or 503 with ``Retry-After``,
every event answered 2xx is in the journal, ``/readyz`` says why while the database is down,
and the log says it once when the outage starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

import httpx

from tests.calls.support import bearer
from tests.calls.test_durability import (
    _assert_all_kept,
    _event,
    _journal,
    _post,
    own_postgres,
    served,
)
from tests.support.own_postgres import OwnPostgres
from tests.support.server import ServerProcess

__all__ = ["own_postgres", "served"]  # fixtures shared with the durability tests


async def _poll_readyz(http: httpx.AsyncClient, seen: list[httpx.Response]) -> None:
    while True:
        seen.append(await http.get("/readyz"))
        await asyncio.sleep(0.3)


async def test_an_outage_answers_503_and_the_service_recovers(
    served: tuple[OwnPostgres, ServerProcess],
) -> None:
    own_postgres, app = served
    acked: list[str] = []
    answers: list[httpx.Response] = []
    stop = asyncio.Event()
    supervisor = bearer("sue", "supervisor")

    async def poster(http: httpx.AsyncClient) -> None:
        call_id = uuid.uuid4().hex[:10]
        kinds = itertools.cycle(["queued", "held", "resumed"])
        while not stop.is_set():
            body = _event(call_id, next(kinds))
            status = await _post(http, body)
            if 200 <= status < 300:
                acked.append(str(body["event_id"]))
            else:
                await asyncio.sleep(0.1)

    async def reader(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            answers.append(await http.get("/api/calls", headers=supervisor))
            await asyncio.sleep(0.1)

    # Every answer of the event endpoint is also recorded, through an event hook.
    async def record(response: httpx.Response) -> None:
        if response.request.url.path.startswith("/telephony/"):
            answers.append(response)

    readiness: list[httpx.Response] = []
    async with httpx.AsyncClient(
        base_url=app.url, timeout=15, event_hooks={"response": [record]}
    ) as http:
        tasks = [asyncio.create_task(poster(http)) for _ in range(4)]
        tasks.append(asyncio.create_task(reader(http)))
        await asyncio.sleep(1.0)
        before = len(acked)
        own_postgres.stop()
        probe = asyncio.create_task(_poll_readyz(http, readiness))
        await asyncio.sleep(3.0)
        down = len(answers)
        probe.cancel()
        own_postgres.start()
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*tasks)
        after = await _post(http, _event(uuid.uuid4().hex[:10], "queued"))
        calls = await http.get("/api/calls", headers=supervisor)
        ready = await http.get("/readyz")

    statuses = [r.status_code for r in answers]
    bad = [s for s in statuses if not (200 <= s < 300 or s == 503)]
    assert not bad, f"answers other than 2xx/503 during the outage: {sorted(set(bad))}"
    outage = [r for r in answers[:down] if r.status_code == 503]
    assert outage, "the clients saw the outage"
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 503)
    assert all(r.json()["error"] in ("unavailable", "overloaded") for r in outage)
    assert any(r.status_code == 503 and r.json()["detail"] for r in readiness), "readyz says why"
    assert before > 0 and after == 202 and calls.status_code == 200 and ready.status_code == 200
    _assert_all_kept(acked, await _journal(own_postgres))

    log = app.log_path.read_text(errors="replace")
    assert "unhandled error" not in log, "no request answered 500 with a traceback"
    assert log.count("database unreachable; answering 503") == 1
    assert log.count("database reachable again") == 1
