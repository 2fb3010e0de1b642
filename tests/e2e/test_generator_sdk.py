"""The real OpenTelemetry SDK sends a frontend -> backend trace to ``kms up``; after a flush of the
metrics generator, Grafana's service-map and RED queries (api-contracts.md 5.3) answer from it."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from otlp_client import grpc_exporter, http_exporter, tracer_provider

from kms.testing import KmsProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def kms(tmp_path):
    proc = KmsProcess(tmp_path / "data", extra_args=[
        "--generator-collection-interval", "300ms", "--generator-service-graph-wait", "1s"]).start()
    yield proc
    proc.kill()


def send_trace(front, back, fail: bool) -> str:
    """frontend: SERVER "GET /shop" -> CLIENT "GET /api"; backend: SERVER "GET /api" (error if fail)."""
    with front.get_tracer("e2e").start_as_current_span("GET /shop", kind=SpanKind.SERVER) as root:
        with front.get_tracer("e2e").start_as_current_span("GET /api", kind=SpanKind.CLIENT) as client:
            ctx = trace.set_span_in_context(client)
            with back.get_tracer("e2e").start_as_current_span("GET /api", context=ctx, kind=SpanKind.SERVER) as srv:
                time.sleep(0.01)
                if fail:
                    srv.set_status(Status(StatusCode.ERROR, "boom"))
        return format(root.get_span_context().trace_id, "032x")


def query(c: httpx.Client, promql: str) -> list[dict]:
    r = c.post("/prometheus/api/v1/query", data={"query": promql, "time": f"{time.time():.3f}"})
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def wait_for(c: httpx.Client, promql: str, ok, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        res = query(c, promql)
        if ok(res) or time.monotonic() > deadline:
            return res
        time.sleep(0.2)


def test_service_graph_and_span_metrics_from_sdk_spans(kms):
    front = tracer_provider(grpc_exporter(kms), "frontend")
    back = tracer_provider(http_exporter(kms), "backend")
    tid = send_trace(front, back, fail=True)
    with httpx.Client(base_url=kms.url, timeout=10) as c:
        # a second request once the first is written: rate() over [1m] sees an increase between flushes
        wait_for(c, "traces_service_graph_request_total", lambda r: len(r) >= 1)
        send_trace(front, back, fail=False)
        front.shutdown()
        back.shutdown()
        edges = wait_for(c, "group by (client, connection_type, server) (traces_service_graph_request_total)",
                         lambda r: len(r) >= 2)  # the root span's edge from "user" appears after the 1 s wait
        assert {(e["metric"]["client"], e["metric"]["server"], e["metric"].get("connection_type", ""))
                for e in edges} == {("frontend", "backend", ""), ("user", "frontend", "virtual_node")}
        total = wait_for(c, "traces_service_graph_request_total{client=\"frontend\"}",
                         lambda r: r and float(r[0]["value"][1]) == 2)
        assert float(total[0]["value"][1]) == 2

        # 5.3 (1): node graph, one refId per metric over $__range
        for metric in ("traces_service_graph_request_server_seconds_sum", "traces_service_graph_request_total",
                       "traces_service_graph_request_failed_total", "traces_service_graph_request_server_seconds_bucket"):
            res = query(c, f"sum by (client, server) (rate({metric}[5m]))")
            pairs = {(r["metric"]["client"], r["metric"]["server"]): float(r["value"][1]) for r in res}
            assert pairs.get(("frontend", "backend"), 0) > 0, (metric, res)
            assert query(c, f"group by (client, connection_type, server) ({metric})")
        # 5.3 (2)-(4): the table view
        top = query(c, 'topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER"}[5m])) by (span_name))')
        assert {r["metric"]["span_name"] for r in top} == {"GET /shop", "GET /api"}
        err = query(c, 'topk(5, sum(rate(traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR",'
                       'span_name=~"GET /shop|GET /api"}[5m])) by (span_name))')
        assert [r["metric"]["span_name"] for r in err] == ["GET /api"]
        p90 = query(c, 'histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{span_name=~"GET /api"}[5m])) by (le))')
        assert 0.008 < float(p90[0]["value"][1]) <= 16.384  # the spans last >= 10 ms (more on a loaded machine)
        # 5.3 (5): data links
        link = query(c, 'histogram_quantile(0.9, sum(rate(traces_service_graph_request_server_seconds_bucket'
                        '{server="backend"}[1m])) by (le, client, server))')
        assert link and link[0]["metric"] == {"client": "frontend", "server": "backend"}

        # each service's calls rise between two of its flushes (later for the backend's, on a loaded machine)
        red = wait_for(c, "sum by (service) (rate(traces_spanmetrics_calls_total[1m]))",
                       lambda r: {x["metric"]["service"] for x in r if float(x["value"][1]) > 0} == {"frontend", "backend"})
        assert {r["metric"]["service"] for r in red if float(r["value"][1]) > 0} == {"frontend", "backend"}

        now = time.time()
        ex = c.get("/prometheus/api/v1/query_exemplars", params={
            "query": 'traces_spanmetrics_latency_bucket{service="backend"}', "start": now - 300, "end": now + 60})
        assert ex.status_code == 200, ex.text
        ids = {e["labels"]["traceID"] for s in ex.json()["data"] for e in s["exemplars"]}
        assert tid in ids

    assert kms.stop() == 0  # SIGTERM flushes the generator and the head
