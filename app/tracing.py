"""OpenTelemetry traces of the pop path, off unless an OTLP endpoint is configured.

``SCREENPOP_OTLP_ENDPOINT`` (e.g. ``http://otel-collector:4318``) or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` turns them on; spans
go out over OTLP/HTTP in batches. When off, ``span()`` costs one attribute check.

Any code marks a step of the pop path with::

    with tracing.span("calls.write", call_id=call_id):
        ...

Spans nest under the request's server span (the HTTP middleware opens it, continuing a W3C
``traceparent`` the caller sent). ``inject()`` / ``extracted()`` carry the context across a
hop that is not a function call (a hub message to another instance).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from app.settings import Settings

SERVICE_NAME = "screenpop"
_STANDARD_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class _Active:
    """The process's tracer while an app that configured tracing is running."""

    provider: TracerProvider | None = None
    tracer: trace.Tracer | None = None


def endpoint(settings: Settings) -> str | None:
    """The OTLP/HTTP traces URL, or None when tracing is off."""
    if settings.otlp_endpoint:
        base = settings.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"
    if any(os.environ.get(name) for name in _STANDARD_ENV):
        return ""  # the exporter reads the standard variables itself
    return None


def start(settings: Settings) -> bool:
    """Configure tracing for this process if an endpoint is set; True when on."""
    url = endpoint(settings)
    if url is None:
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}),
        sampler=ParentBasedTraceIdRatio(settings.trace_sample_ratio),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url or None)))
    _Active.provider = provider
    _Active.tracer = provider.get_tracer("screenpop")
    return True


def stop() -> None:
    """Flush what is buffered and turn tracing off."""
    provider, _Active.provider, _Active.tracer = _Active.provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _Active.tracer is not None


def span(name: str, **attributes: Any) -> AbstractContextManager[trace.Span | None]:
    """A child span of whatever is current (a no-op when tracing is off)."""
    tracer = _Active.tracer
    if tracer is None:
        return nullcontext()
    return tracer.start_as_current_span(name, attributes=_clean(attributes))


def server_span(
    name: str, headers: Mapping[str, str], **attributes: Any
) -> AbstractContextManager[trace.Span | None]:
    """The request's span, continuing the caller's ``traceparent`` when it sent one."""
    tracer = _Active.tracer
    if tracer is None:
        return nullcontext()
    return tracer.start_as_current_span(
        name,
        context=propagate.extract(headers),
        kind=trace.SpanKind.SERVER,
        attributes=_clean(attributes),
    )


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write the current context (``traceparent``) into ``carrier``, when tracing is on."""
    if _Active.tracer is not None:
        propagate.inject(carrier)


@contextmanager
def extracted(carrier: Mapping[str, str]) -> Iterator[None]:
    """Run the block inside the context a peer ``inject``-ed into ``carrier``."""
    if _Active.tracer is None or "traceparent" not in carrier:
        yield
        return
    token = otel_context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}
