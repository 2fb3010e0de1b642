"""``kms agent --config`` in the OpenTelemetry Collector's layout, against a real central ``kms up``:
receivers (otlp, hostmetrics, file_log with the container operator), processors (resource,
attributes, batch), exporters (otlphttp, prometheusremotewrite, debug), the health_check extension."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pipeline_helpers import kv, wait_for

from kms.testing import KmsProcess, free_port, wait_http
from kms.testing.agent import AgentProcess

pytestmark = pytest.mark.slow
PB = {"Content-Type": "application/x-protobuf"}
TENANT = {"X-Scope-OrgID": "team-a"}




def test_collector_layout_end_to_end(tmp_path):
    central = KmsProcess(tmp_path / "central").start()
    pod_dir = tmp_path / "pods" / "shop_web-1_0a1b2c" / "web"
    pod_dir.mkdir(parents=True)
    (pod_dir / "0.log").write_text(
        "2026-11-22T07:00:00.123456789Z stdout F hello from the pod\n"
        "2026-11-22T07:00:01.000000000Z stderr P a long line, \n"
        "2026-11-22T07:00:01.000000000Z stderr F joined\n")
    health, http_port = free_port(), free_port()
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"""
receivers:
  otlp:
    protocols: {{http: {{endpoint: "127.0.0.1:{http_port}"}}}}
  hostmetrics: {{collection_interval: 1s}}
  filelog/pods:
    include: ["{tmp_path}/pods/*/*/*.log"]
    start_at: beginning
    operators: [{{type: container}}]
processors:
  batch: {{}}
  resource/cluster:
    actions: [{{key: cluster, value: edge-1, action: upsert}}]
  attributes/env:
    actions: [{{key: env, value: prod, action: insert}}, {{key: secret, action: delete}}]
exporters:
  otlphttp/central: {{endpoint: "{central.url}", headers: {{X-Scope-OrgID: team-a}}}}
  prometheusremotewrite/central:
    endpoint: "{central.url}/api/v1/push"
    headers: {{X-Scope-OrgID: team-a}}
    external_labels: {{source: agent}}
  debug: {{}}
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [hostmetrics], processors: [batch, resource/cluster], exporters: [prometheusremotewrite/central]}}
    metrics/otlp: {{receivers: [otlp], processors: [attributes/env], exporters: [otlphttp/central]}}
    logs: {{receivers: [filelog/pods], processors: [resource/cluster, attributes/env], exporters: [otlphttp/central, debug]}}
    traces: {{receivers: [otlp], processors: [resource/cluster], exporters: [otlphttp/central]}}
""")
    agent = AgentProcess(tmp_path / "agent", "", ["--config", str(cfg)], otlp_http_port=http_port)
    try:
        agent.start()
        wait_http(f"http://127.0.0.1:{health}/", 10)
        span = Span(trace_id=bytes.fromhex("ab" * 16), span_id=bytes.fromhex("cd" * 8), name="op",
                    kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=time.time_ns() - 10**6,
                    end_time_unix_nano=time.time_ns())
        tr = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=Resource(attributes=[kv("service.name", "web")]),
                                                                     scope_spans=[ScopeSpans(spans=[span])])])
        assert httpx.post(agent.url + "/v1/traces", content=tr.SerializeToString(), headers=PB).status_code == 200
        point = NumberDataPoint(time_unix_nano=time.time_ns(), as_double=7.0, attributes=[kv("secret", "x")])
        m = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
            resource=Resource(attributes=[kv("service.name", "web")]),
            scope_metrics=[ScopeMetrics(metrics=[Metric(name="shop_orders", gauge=Gauge(data_points=[point]))])])])
        assert httpx.post(agent.url + "/v1/metrics", content=m.SerializeToString(), headers=PB).status_code == 200

        api = httpx.Client(base_url=central.url, headers=TENANT, timeout=10)

        def query(q: str):
            return api.get("/prometheus/api/v1/query", params={"query": q}).json()["data"]["result"]

        (host,) = wait_for(lambda: query('node_memory_MemTotal_bytes{cluster="edge-1", source="agent"}'))
        assert host["metric"]["job"]  # the host metrics' own labels stay
        (orders,) = wait_for(lambda: query("shop_orders"))
        assert orders["metric"]["env"] == "prod" and "secret" not in orders["metric"]
        trace = wait_for(lambda: api.get(f"/api/v2/traces/{'ab' * 16}", headers={"Accept": "application/json"}).json()
                         if api.get(f"/api/v2/traces/{'ab' * 16}").status_code == 200 else None)
        attrs = {a["key"]: a["value"]["stringValue"] for rs in trace["trace"]["resourceSpans"]
                 for a in rs["resource"]["attributes"]}
        assert attrs["cluster"] == "edge-1" and attrs["service.name"] == "web"

        def lines():
            r = api.get("/loki/api/v1/query_range", params={"query": '{k8s_namespace_name="shop"}', "limit": "10",
                                                            "start": str(int(time.time() - 86400) * 10**9)},
                        headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"}).json()
            return [(s["stream"], v) for s in r["data"]["result"] for v in s["values"]]

        got = wait_for(lambda: len(lines()) >= 2 and lines())
        texts = sorted(v[1] for _, v in got)
        assert texts == ["a long line, joined", "hello from the pod"]  # the CRI partial line joined
        stream, value = next((s, v) for s, v in got if v[1] == "hello from the pod")
        assert stream["k8s_pod_name"] == "web-1" and stream["k8s_container_name"] == "web"
        meta = value[2]["structuredMetadata"]
        assert meta["log_iostream"] == "stdout" and meta["env"] == "prod" and meta["cluster"] == "edge-1"
        assert value[0] == "1795330800123456789"  # the runtime's timestamp, not the read time
        assert "logs 3 lines" in agent.log() or "logs 2 lines" in agent.log()  # the debug exporter
    finally:
        agent.kill()
        central.kill()


def test_otlp_grpc_exporter_forwards_with_the_tenant(tmp_path):
    central = KmsProcess(tmp_path / "central", ["--multitenancy", "true"]).start()
    http = free_port()
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{http}"}}}}}}
exporters:
  otlp/central: {{endpoint: "127.0.0.1:{central.grpc_port}", tls: {{insecure: true}}, headers: {{X-Scope-OrgID: team-g}}}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp/central]}}
""")
    agent = AgentProcess(tmp_path / "agent", "", ["--config", str(cfg)], otlp_http_port=http).start()
    try:
        tid = "5e" * 16
        span = Span(trace_id=bytes.fromhex(tid), span_id=bytes.fromhex("6f" * 8), name="op",
                    kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=time.time_ns() - 10**6,
                    end_time_unix_nano=time.time_ns())
        tr = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=Resource(attributes=[kv("service.name", "grpc-svc")]), scope_spans=[ScopeSpans(spans=[span])])])
        assert httpx.post(agent.url + "/v1/traces", content=tr.SerializeToString(), headers=PB).status_code == 200
        api = httpx.Client(base_url=central.url, timeout=10, headers={"X-Scope-OrgID": "team-g"})
        wait_for(lambda: api.get(f"/api/v2/traces/{tid}").status_code == 200)
        assert agent.metric("kms_agent_sent_records_total") == 1
    finally:
        agent.kill()
        central.kill()
