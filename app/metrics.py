"""Prometheus metrics, one registry per app instance (nothing global at import).

With ``PROMETHEUS_MULTIPROC_DIR`` set (``screenpop serve --workers N`` sets it), every worker
writes its values to files there and a scrape of any worker sums them all
(``prometheus_client.multiprocess``); process and GC collectors are per process, so they are
left out in that mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


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
            "Event received at the webhook to pop written to the agent's websocket",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.websockets = Gauge(
            "screenpop_websockets",
            "Open websocket connections",
            ["audience"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self._http(r)
        self._dependencies(r)
        self._wallboard(r)
        if multiprocess_dir() is None:
            for collector in (ProcessCollector, GCCollector, PlatformCollector):
                collector(registry=r)

    def _http(self, r: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "screenpop_http_requests_total",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "screenpop_http_request_duration_seconds",
            "HTTP request duration, by route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter(
            "screenpop_webhook_requests_total",
            "Telephony webhook requests by provider and outcome "
            "(accepted, unauthorized, rejected, overloaded, error)",
            ["provider", "outcome"],
            registry=r,
        )

    def _dependencies(self, r: CollectorRegistry) -> None:
        self.db_pool = Gauge(
            "screenpop_db_pool_connections",
            "Database pool connections by state (checked_out, idle, overflow, size)",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.redis_connected = Gauge(
            "screenpop_redis_connected",
            "1 when the hub's Redis connection is up (0: down, pops stay on this instance)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.redis_ping = Gauge(
            "screenpop_redis_ping_seconds",
            "Round trip of the last PING to the hub's Redis",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.hub_subscribers = Gauge(
            "screenpop_hub_subscribers",
            "Websocket subscriptions held by the hub",
            registry=r,
            multiprocess_mode="livesum",
        )

    def _wallboard(self, r: CollectorRegistry) -> None:
        # Every instance computes the same figures from the hub: aggregate with max(), not sum().
        self.queue_figure = Gauge(
            "screenpop_queue",
            "Today's wallboard figures per queue (waiting, longest_wait_s, offered, answered, "
            "abandoned, service_level, asa_s, aht_s)",
            ["queue", "figure"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.agents_by_state = Gauge(
            "screenpop_agents",
            "Agents by state (available, ringing, on_call, wrap_up, away, logged_out)",
            ["state"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.pop_health = Gauge(
            "screenpop_pop_health",
            "Today's pop health (match_rate, multi_match_rate, unmatched, pop_p50_ms, pop_p95_ms)",
            ["figure"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def exposition(self) -> bytes:
        """The text a scrape gets: this registry, or every worker's values in multiprocess."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def mark_process_dead() -> None:
    """Drop this worker's live gauges from the shared files (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
