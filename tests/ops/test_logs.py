"""Structured log lines: bound fields (request id, call id), extras, trace ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from app import logs


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Every record of the ``screenpop`` and ``app`` loggers, as the service formats them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    loggers = [logging.getLogger(n) for n in ("screenpop.access", "app.test")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield out
    for logger in loggers:
        logger.removeHandler(handler)


def parsed(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_bound_fields_and_extras_are_fields(lines: io.StringIO) -> None:
    log = logging.getLogger("app.test")
    with logs.bound(call_id="generic:c-1"):
        with logs.bound(request_id="r-9"):
            log.info("event planned", extra={"kind": "queued", "version": 3})
        log.warning("after the request")
    log.info("outside")
    first, second, third = parsed(lines)
    assert first["msg"] == "event planned" and first["level"] == "info"
    assert first["call_id"] == "generic:c-1" and first["request_id"] == "r-9"
    assert first["kind"] == "queued" and first["version"] == 3
    assert second["call_id"] == "generic:c-1" and "request_id" not in second
    assert "call_id" not in third


def test_bind_and_unbind_for_code_without_a_block(lines: io.StringIO) -> None:
    token = logs.bind(call_id="twilio:CA1")
    logging.getLogger("app.test").info("bound")
    logs.unbind(token)
    logging.getLogger("app.test").info("unbound")
    first, second = parsed(lines)
    assert first["call_id"] == "twilio:CA1" and "call_id" not in second


def test_exceptions_keep_their_traceback(lines: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("app.test").exception("failed", extra={"step": "write"})
    (line,) = parsed(lines)
    assert line["step"] == "write" and "ValueError: boom" in str(line["exc"])


def test_text_format_appends_fields() -> None:
    record = logging.makeLogRecord({"name": "app.x", "levelname": "INFO", "msg": "hello"})
    record.queue = "sales"
    with logs.bound(call_id="c-2"):
        text = logs.TextFormatter().format(record)
    assert text == "INFO app.x: hello call_id=c-2 queue=sales"


async def test_access_line_carries_the_request_id(
    client: httpx.AsyncClient, lines: io.StringIO
) -> None:
    response = await client.get("/api/queues", headers={"X-Request-ID": "lb-1234"})
    assert response.status_code == 401
    (line,) = [x for x in parsed(lines) if x["logger"] == "screenpop.access"]
    assert line["request_id"] == "lb-1234"
    assert line["route"] == "/api/queues" and line["status"] == 401 and line["method"] == "GET"
