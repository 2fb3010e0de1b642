"""The process's own metrics, served at ``GET /metrics`` in the Prometheus text format."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Telemetry", "RequestTimer"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _StoreCollector(Collector):
    """Reads the store's figures at scrape time, so the store needs no metrics library."""

    def __init__(self, stats: Callable[[], dict]):
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self._stats()
        for key, value in sorted(s.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                yield GaugeMetricFamily(f"kms_storage_{key}", f"storage engine figure {key}", value=value)
            elif isinstance(value, dict):
                fam = GaugeMetricFamily(f"kms_storage_{key}", f"storage engine figure {key}", labels=["series"])
                for label, v in sorted(value.items()):
                    if isinstance(v, (int, float)):
                        fam.add_metric([str(label)], v)
                yield fam


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received_items = Counter(
            "kms_received_items", "Spans, log records, metrics or samples accepted and stored.",
            ["signal", "tenant"], registry=r,
        )
        self.received_bytes = Counter(
            "kms_received_bytes", "Request bytes (decompressed) accepted.", ["signal", "tenant"], registry=r
        )
        self.refused_items = Counter(
            "kms_discarded_items", "Items refused or rejected, by reason.", ["signal", "reason"], registry=r
        )
        self.refused_requests = Counter(
            "kms_refused_requests", "Write requests refused, by reason.", ["signal", "reason"], registry=r
        )
        self.request_seconds = Histogram(
            "kms_request_duration_seconds", "Time to handle a request, by route.", ["route", "status"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.query_seconds = Histogram(
            "kms_query_duration_seconds", "Query latency by kind.", ["kind"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.ready = Gauge("kms_ready", "1 once the process accepts writes.", registry=r)

    def watch_store(self, stats: Callable[[], dict]) -> None:
        self.registry.register(_StoreCollector(stats))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestTimer:
    """ASGI middleware observing ``kms_request_duration_seconds`` by route template (``/api/traces/
    {trace_id}``, not the id: bounded cardinality) and status; ``unmatched`` for unknown paths."""

    def __init__(self, app, telemetry: Telemetry):
        self.app = app
        self.hist = telemetry.request_seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.hist.labels(route, str(status)).observe(time.perf_counter() - t0)
