"""Python logging bridged to OTLP by the OpenTelemetry SDK: records written inside a span carry
its trace id as structured metadata, and ``| trace_id="..."`` finds exactly that trace's lines."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_sdk_log_records_are_found_by_trace_id(kms):
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": "shop", "deployment.environment": "e2e"})
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://127.0.0.1:{kms.otlp_http_port}/v1/logs")))
    logger = logging.getLogger("e2e.shop")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=lp))
    logger.setLevel(logging.INFO)
    tracer = TracerProvider(resource=resource).get_tracer("e2e")
    t0 = time.time_ns()
    tids = []
    for order in range(3):
        with tracer.start_as_current_span("checkout") as span:
            logger.info("order %d received", order)
            logger.error("order %d failed", order)
            tids.append(format(span.get_span_context().trace_id, "032x"))
    logger.warning("outside any span")
    lp.shutdown()

    params = {"start": str(t0 - 10**9), "end": str(time.time_ns() + 10**9), "limit": "100"}
    with httpx.Client(base_url=kms.url, timeout=10) as c:
        r = c.get("/loki/api/v1/query_range", params={**params, "query": f'{{service_name="shop"}} | trace_id="{tids[1]}"'},
                  headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"})
        assert r.status_code == 200, r.text
        [stream] = r.json()["data"]["result"]
        assert stream["stream"]["service_name"] == "shop" and stream["stream"]["deployment_environment"] == "e2e"
        assert [v[1] for v in stream["values"]] == ["order 1 failed", "order 1 received"]  # newest first
        md = stream["values"][0][2]["structuredMetadata"]
        assert md["trace_id"] == tids[1] and md["detected_level"] == "error" and md["severity_text"] == "ERROR"
        r = c.get("/loki/api/v1/query_range", params={**params, "query": '{service_name="shop"}'})
        assert sum(len(s["values"]) for s in r.json()["data"]["result"]) == 7
