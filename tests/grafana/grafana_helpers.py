"""Synthetic series named like kms's own output, for evaluating the dashboards' queries."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from kms.metrics.promql import MemorySeriesSource
from kms.storage import LocalObjectStore, Store, StoreConfig
from kms.telemetry import Telemetry

S, M = 1000, 60_000
END = 1_780_000_200_000
START = END - 60 * M
STEP = 30 * S
T = np.arange(END - 75 * M, END + 1, 15 * S, dtype=np.int64)  # lookback and rate windows before START
_N = np.arange(len(T), dtype=np.float64)
SPAN_BUCKETS = ("0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512", "1.024",
                "2.048", "4.096", "8.192", "16.384", "+Inf")  # fmt: skip
KMS_BUCKETS = ("0.001", "0.01", "0.1", "1", "+Inf")


def exposed_names() -> set[str]:
    """Sample names kms's ``/metrics`` exposes (telemetry plus an empty store's figures)."""
    with tempfile.TemporaryDirectory() as d:
        store = Store(StoreConfig(data_dir=Path(d), background_interval_s=3600), LocalObjectStore(Path(d) / "b"), [])
        store.open()
        try:
            tel = Telemetry()
            tel.watch_store(store.stats)
            text = tel.exposition().decode()
        finally:
            store.close(flush=False)
    names = set()
    for fam in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(fam.type, ("",))
        names.update(fam.name + s for s in suffixes)
    return names


def _counter(src: MemorySeriesSource, labels: dict[str, str], per_step: float) -> None:
    src.add_series(labels, T, _N * per_step)


def _histogram(src: MemorySeriesSource, name: str, labels: dict[str, str], buckets, per_step: float) -> None:
    # Cumulative buckets: half the observations fall in the first bucket, all by the third.
    for i, le in enumerate(buckets):
        _counter(src, {**labels, "__name__": f"{name}_bucket", "le": le}, per_step * min(1.0, 0.5 * (i + 1)))
    _counter(src, {**labels, "__name__": f"{name}_count"}, per_step)
    _counter(src, {**labels, "__name__": f"{name}_sum"}, per_step * 0.01)


def source() -> MemorySeriesSource:
    src = MemorySeriesSource()
    for service, span in (("frontend", "GET /"), ("backend", "GET /api/items")):
        for status, rate in (("STATUS_CODE_UNSET", 10.0), ("STATUS_CODE_ERROR", 1.0)):
            base = {"service": service, "span_name": span, "span_kind": "SPAN_KIND_SERVER", "status_code": status}
            _counter(src, {**base, "__name__": "traces_spanmetrics_calls_total"}, rate)
            _counter(src, {**base, "__name__": "traces_spanmetrics_size_total"}, rate * 300)
            _histogram(src, "traces_spanmetrics_latency", base, SPAN_BUCKETS, rate)
    edge = {"client": "frontend", "server": "backend", "connection_type": ""}
    _counter(src, {**edge, "__name__": "traces_service_graph_request_total"}, 10)
    _counter(src, {**edge, "__name__": "traces_service_graph_request_failed_total"}, 1)
    _histogram(src, "traces_service_graph_request_server_seconds", edge, ("0.1", "0.2", "0.4", "+Inf"), 10)

    job = {"job": "kms", "instance": "localhost:3200"}
    src.add_series({**job, "__name__": "kms_ready"}, T, np.ones(len(T)))
    for signal in ("traces", "metrics", "logs"):
        for name in ("kms_received_items_total", "kms_received_bytes_total"):
            _counter(src, {**job, "__name__": name, "signal": signal, "tenant": "anonymous"}, 100)
        for name in ("kms_refused_requests_total", "kms_discarded_items_total"):
            _counter(src, {**job, "__name__": name, "signal": signal, "reason": "rate_limited"}, 1)
        for name in ("kms_storage_head_rows", "kms_storage_block_bytes"):
            src.add_series({**job, "__name__": name, "series": f"anonymous/{signal}"}, T, _N * 10)
    _histogram(src, "kms_request_duration_seconds", {**job, "route": "/api/v1/query", "status": "200"},
               KMS_BUCKETS, 5)  # fmt: skip
    _histogram(src, "kms_query_duration_seconds", {**job, "kind": "promql"}, KMS_BUCKETS, 5)
    for name, per_step in (("kms_storage_wal_bytes", 1000), ("kms_storage_appended_rows", 100),
                           ("kms_storage_wal_fsyncs", 3), ("kms_storage_flush_seconds_count", 0.1),
                           ("kms_storage_flush_seconds_sum", 0.02)):  # fmt: skip
        _counter(src, {**job, "__name__": name}, per_step)
    return src
