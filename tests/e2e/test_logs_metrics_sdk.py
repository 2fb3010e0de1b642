"""Logs and metrics from the real OpenTelemetry SDK are stored durably; metrics are queryable
with PromQL, exemplars lead to the trace."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from kms.logs.schema import LOGS
from kms.metrics.storage.labels import parse_labels_text
from kms.storage import LocalObjectStore, ScanRequest, Store, StoreConfig
from kms.traces.schema import TRACES

pytestmark = pytest.mark.slow


def stored(data_dir, signal: str):
    store = Store(StoreConfig(data_dir=data_dir), LocalObjectStore(data_dir / "blocks"), [TRACES, LOGS])
    store.open()
    try:
        import pyarrow as pa

        tables = list(store.scan(ScanRequest("anonymous", signal)))
        return pa.concat_tables(tables).to_pylist() if tables else []
    finally:
        store.close()


def test_sdk_logs_and_metrics_are_stored(kms, tmp_path):
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": "checkout"})
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=kms.grpc_target, insecure=True)))
    logger = logging.getLogger("e2e.checkout")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=lp))
    logger.setLevel(logging.INFO)
    tracer = TracerProvider(resource=resource).get_tracer("e2e")
    with tracer.start_as_current_span("pay") as span:
        logger.warning("payment declined for order %s", 42)
        tid = span.get_span_context().trace_id.to_bytes(16, "big")
    lp.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{kms.otlp_http_port}/v1/metrics"), export_interval_millis=60_000
    )
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    orders = mp.get_meter("e2e").create_counter("orders", unit="1")
    with tracer.start_as_current_span("order") as span:
        orders.add(3, {"status": "paid"})
        order_tid = format(span.get_span_context().trace_id, "032x")
    mp.shutdown()

    with httpx.Client(base_url=kms.url, timeout=10) as c:
        r = c.get("/prometheus/api/v1/query", params={"query": 'orders_total{status="paid"}'}).json()
        assert r["status"] == "success", r
        [sample] = r["data"]["result"]
        assert sample["value"][1] == "3" and sample["metric"]["job"] == "checkout"
        ex = c.get("/api/v1/query_exemplars", params={"query": "orders_total", "start": time.time() - 600,
                                                       "end": time.time() + 60}).json()["data"]
        assert order_tid in [e["labels"].get("trace_id") for s in ex for e in s["exemplars"]], ex
    assert kms.stop() == 0

    logs = stored(kms.data_dir, "logs")
    assert len(logs) == 1
    rec = logs[0]
    assert rec["line"] == "payment declined for order 42"
    md = parse_labels_text(rec["metadata"])
    assert md["trace_id"] == tid.hex() and md["severity_text"] == "WARN" and md["detected_level"] == "warn"
    assert parse_labels_text(rec["stream"])["service_name"] == "checkout"
    assert any(k.startswith("code_") for k in md)  # code.* attributes kept
