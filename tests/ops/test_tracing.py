"""Traces: off by default; with an endpoint, spans reach a real OTLP/HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from websockets.asyncio.client import connect

from app import tracing
from app.main import create_app
from tests.conftest import make_settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.paths.append(self.path)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.server.spans.extend(scope.spans)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        out[kv.key] = getattr(kv.value, kv.value.WhichOneof("value"))
    return out


async def test_tracing_is_off_without_an_endpoint(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(make_settings(database_url))
    async with LifespanManager(app):
        assert not tracing.enabled()
        with tracing.span("calls.write", call_id="c") as span:
            assert span is None


async def test_request_and_pop_path_spans_reach_the_collector(
    database_url: str, receiver: Receiver
) -> None:
    app = create_app(make_settings(database_url, otlp_endpoint=receiver.url))
    async with LifespanManager(app) as manager:
        assert tracing.enabled()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/healthz", headers={"traceparent": PARENT})
            assert response.status_code == 200
        with tracing.server_span("POST /telephony/{provider}/events", {}):
            with tracing.span("calls.plan", call_id="generic:c-1", skipped=None):
                pass
    # Leaving the lifespan flushed the batch.
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    by_name = {span.name: span for span in receiver.spans}
    request = by_name["GET /healthz"]
    assert request.trace_id.hex() == TRACE_ID  # the caller's trace continues
    assert attributes(request)["http.route"] == "/healthz"
    assert attributes(request)["http.response.status_code"] == 200
    plan = by_name["calls.plan"]
    webhook = by_name["POST /telephony/{provider}/events"]
    assert plan.parent_span_id == webhook.span_id and plan.trace_id == webhook.trace_id
    assert attributes(plan) == {"call_id": "generic:c-1"}


def test_inject_and_extract_carry_a_trace_across_a_hop(receiver: Receiver) -> None:
    tracing.start(make_settings("sqlite+aiosqlite://", otlp_endpoint=receiver.url))
    try:
        carrier: dict[str, str] = {}
        with tracing.span("hub.publish"):
            tracing.inject(carrier)
        with tracing.extracted(carrier), tracing.span("ws.frame"):
            pass
    finally:
        tracing.stop()
    by_name = {span.name: span for span in receiver.spans}
    assert carrier["traceparent"].startswith("00-")
    assert by_name["ws.frame"].parent_span_id == by_name["hub.publish"].span_id


async def test_a_webhook_event_traces_the_pop_path(
    clean_engine: Any, database_url: str, receiver: Receiver
) -> None:
    """A real event through the app: the call's steps are children of the webhook's span."""
    from tests.calls.support import GENERIC, event, new_call_id, signed

    app = create_app(make_settings(database_url, otlp_endpoint=receiver.url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            raw, headers = signed(event(new_call_id(), "queued", queue="sales"))
            response = await http.post(GENERIC, content=raw, headers=headers)
            assert response.status_code == 202
    by_name = {span.name: span for span in receiver.spans}
    ingest = by_name["calls.ingest"]
    assert attributes(ingest)["kind"] == "queued"
    for step in ("calls.write", "calls.publish", "calls.durable"):
        assert by_name[step].parent_span_id == ingest.span_id, step
    assert by_name["calls.plan"].parent_span_id == by_name["calls.write"].span_id
    assert ingest.parent_span_id, "the event's span hangs under the request's"


async def test_the_pop_frame_is_a_span_in_the_events_trace(
    clean_engine: Any, database_url: str, receiver: Receiver
) -> None:
    """The pop's write to the agent's websocket (a real uvicorn, a real client) is a ``frame``
    span under the event's ``calls.publish``: the trace context rode the hub message."""
    from tests.calls.support import GENERIC, event, new_call_id, signed, token
    from tests.calls.test_pop_health import served
    from tests.conftest import add_user

    await add_user(clean_engine, "alice", extension="201", queues=["sales"])
    call_id = new_call_id()
    settings = {"otlp_endpoint": receiver.url}
    async with served(database_url, **settings) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/agent?token={token('alice')}"
        async with connect(url) as alice:
            raw, headers = signed(event(call_id, "offered", agent="201", queue="sales"))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                response = await http.post(
                    GENERIC, content=raw, headers={**headers, "traceparent": PARENT}
                )
            assert response.status_code == 202
            while (message := json.loads(await asyncio.wait_for(alice.recv(), 10)))[
                "type"
            ] != "pop":
                pass
    # Leaving the lifespan flushed the batch.
    frames = [span for span in receiver.spans if span.name == "frame"]
    assert len(frames) == 1, "one pop, one frame span"
    [frame] = frames
    [publish] = [span for span in receiver.spans if span.name == "calls.publish"]
    assert frame.trace_id.hex() == TRACE_ID  # the webhook caller's trace, end to end
    assert frame.parent_span_id == publish.span_id
    assert attributes(frame) == {"type": "pop", "call_id": message["call"]["id"]}
