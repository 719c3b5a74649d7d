"""Schemathesis over the app's own ``/openapi.json``: no 5xx, no answer that breaks its schema.

A real server process on a database of its own (SQLite and PostgreSQL), every operation tried
with a bounded number of generated requests for each role's token (agent, supervisor, admin).
Failures are collected over all operations, so one run names every operation that fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app import migrate
from tests.calls.support import token
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from tests.support.databases import drop_database, new_database
from tests.support.server import ServerProcess

EXAMPLES_PER_OPERATION = 10
ROLES = ("agent", "supervisor", "admin")


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    url = asyncio.run(new_database(backend, directory))
    asyncio.run(migrate.upgrade_async(url))
    env = {
        "SCREENPOP_DATABASE_URL": url,
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_LOG_JSON": "false",
    }
    app = ServerProcess(env)
    try:
        app.start(timeout=90)  # a busy machine: the app's imports alone take seconds
        yield app
    finally:
        app.stop()
        asyncio.run(drop_database(url))


def _failures(base_url: str, role: str) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {token(f'st-{role}', role)}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{role} {operation.label}: {str(exc)[:600]}")
    return failures


@pytest.mark.timeout(600)
def test_no_operation_answers_5xx_or_breaks_its_schema(server: ServerProcess) -> None:
    failures = [f for role in ROLES for f in _failures(server.url, role)]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/customers/2147483648/profile", None),  # past int32
        ("GET", "/api/customers/2147483648/timeline", None),
        ("GET", "/api/customers?external_ref=%00", None),
        ("GET", "/api/customers?phone=%2B44%00", None),
        ("GET", "/api/calls/%00x", None),
        ("POST", "/api/customers", {"name": "A\u0000B", "phone": "+447700900555"}),
    ],
)
def test_values_the_database_cannot_hold_are_a_422(
    server: ServerProcess, method: str, path: str, body: dict[str, str] | None
) -> None:
    """The cases schemathesis found answering 500, each asked once by hand."""
    headers = {"Authorization": f"Bearer {token('st-admin', 'admin')}"}
    response = httpx.request(method, server.url + path, json=body, headers=headers, timeout=15)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
