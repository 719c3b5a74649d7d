"""Prometheus metrics, one registry per app instance (nothing global at import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "screenpop_call_events_total", "Call events received", ["source", "result"], registry=r
        )
        self.pops = Counter("screenpop_pops_total", "Pops pushed", ["match"], registry=r)
        self.receipts_dropped = Counter(
            "screenpop_receipts_dropped_total",
            "Pop receipts (ack / seen) dropped unwritten",
            ["reason"],
            registry=r,
        )
        self.write_conflicts = Counter(
            "screenpop_call_write_conflicts_total",
            "Event writes retried because another event for the call wrote first (PostgreSQL)",
            registry=r,
        )
        self.pop_latency = Histogram(
            "screenpop_pop_latency_seconds",
            "Event received to pop published",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.websockets = Gauge(
            "screenpop_websockets", "Open websocket connections", ["audience"], registry=r
        )
