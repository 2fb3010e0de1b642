"""``kms up --config`` in the OpenTelemetry Collector's layout: its OTLP listeners feed the
pipelines (endpoints from the otlp receiver), a ``kms`` exporter writes to its own store, other
exporters forward, and the prometheus receiver scrapes a real node exporter; the agent's
prometheus receiver does the same towards a central stack."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pipeline_helpers import kv, wait_for

from kms.testing import KmsProcess, free_port, wait_http
from kms.testing.agent import AgentProcess

pytestmark = pytest.mark.slow
PB = {"Content-Type": "application/x-protobuf"}
EXPORTER = shutil.which("prometheus-node-exporter")


@pytest.fixture(scope="module")
def node_exporter():
    if EXPORTER is None:
        pytest.skip("needs Debian's prometheus-node-exporter")
    port = free_port()
    proc = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/metrics", 20, proc)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)




def span_attrs(api: httpx.Client, tid: str) -> dict | None:
    r = api.get(f"/api/v2/traces/{tid}", headers={"Accept": "application/json"})
    if r.status_code != 200:
        return None
    return {a["key"]: a["value"].get("stringValue") for rs in r.json()["trace"]["resourceSpans"]
            for ss in rs["scopeSpans"] for s in ss["spans"] for a in s.get("attributes", [])}


def test_kms_up_runs_collector_pipelines(tmp_path, node_exporter):
    mirror = KmsProcess(tmp_path / "mirror").start()
    grpc, http = free_port(), free_port()
    cfg = tmp_path / "kms.yaml"
    cfg.write_text(f"""
storage: {{retention: 30d}}
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{grpc}"}}, http: {{endpoint: "127.0.0.1:{http}"}}}}}}
  prometheus:
    config:
      scrape_configs:
        - job_name: node
          scrape_interval: 1s
          static_configs: [{{targets: ["{node_exporter}"]}}]
processors:
  attributes/env: {{actions: [{{key: env, value: dev, action: insert}}]}}
exporters:
  kms: {{}}
  otlphttp/mirror: {{endpoint: "{mirror.url}"}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [attributes/env], exporters: [kms, otlphttp/mirror]}}
    metrics: {{receivers: [prometheus], processors: [attributes/env], exporters: [kms]}}
""")
    kms = KmsProcess(tmp_path / "kms", ["--config", str(cfg)], grpc_port=grpc, otlp_http_port=http).start()
    try:
        tid = "12" * 16
        span = Span(trace_id=bytes.fromhex(tid), span_id=bytes.fromhex("34" * 8), name="op",
                    kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=time.time_ns() - 10**6,
                    end_time_unix_nano=time.time_ns())
        tr = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=Resource(attributes=[kv("service.name", "web")]), scope_spans=[ScopeSpans(spans=[span])])])
        assert httpx.post(f"http://127.0.0.1:{http}/v1/traces", content=tr.SerializeToString(),
                          headers=PB).status_code == 200
        lg = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
            resource=Resource(attributes=[kv("service.name", "web")]),
            scope_logs=[ScopeLogs(log_records=[LogRecord(time_unix_nano=time.time_ns(),
                                                          body=AnyValue(string_value="no pipeline for logs"))])])])
        assert httpx.post(f"http://127.0.0.1:{http}/v1/logs", content=lg.SerializeToString(),
                          headers=PB).status_code == 200

        local, other = httpx.Client(base_url=kms.url, timeout=10), httpx.Client(base_url=mirror.url, timeout=10)
        assert wait_for(lambda: span_attrs(local, tid)) == {"env": "dev"}  # processed, stored here
        assert wait_for(lambda: span_attrs(other, tid)) == {"env": "dev"}  # and forwarded
        logs = local.get("/loki/api/v1/query_range", params={"query": '{service_name="web"}'}).json()
        assert [v[1] for s in logs["data"]["result"] for v in s["values"]] == ["no pipeline for logs"]

        def load():
            r = local.get("/prometheus/api/v1/query", params={"query": 'node_load1{job="node", env="dev"}'}).json()
            return r["data"]["result"]

        (series,) = wait_for(load)
        assert series["metric"]["instance"] == node_exporter
    finally:
        kms.kill()
        mirror.kill()


def test_agent_prometheus_receiver_scrapes_into_the_central_stack(tmp_path, node_exporter):
    central = KmsProcess(tmp_path / "central").start()
    http = free_port()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{http}"}}}}}}
  prometheus:
    config:
      global: {{scrape_interval: 1s}}
      scrape_configs: [{{job_name: node, static_configs: [{{targets: ["{node_exporter}"]}}]}}]
exporters:
  prometheusremotewrite: {{endpoint: "{central.url}/api/v1/push", external_labels: {{cluster: edge}}}}
service:
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [prometheusremotewrite]}}
""")
    agent = AgentProcess(tmp_path / "agent", "", ["--config", str(cfg)], otlp_http_port=http).start()
    try:
        api = httpx.Client(base_url=central.url, timeout=10)

        def up():
            r = api.get("/prometheus/api/v1/query", params={"query": 'up{job="node", cluster="edge"}'}).json()
            return r["data"]["result"]

        (series,) = wait_for(up)
        assert series["value"][1] == "1" and series["metric"]["instance"] == node_exporter
        count = api.get("/prometheus/api/v1/query", params={"query": 'count({job="node", cluster="edge"})'}).json()
        assert float(count["data"]["result"][0]["value"][1]) > 100
    finally:
        agent.kill()
        central.kill()


def test_zipkin_receiver_in_kms_up(tmp_path):
    zport = free_port()
    cfg = tmp_path / "kms.yaml"
    cfg.write_text(f"""
receivers:
  zipkin: {{endpoint: "127.0.0.1:{zport}"}}
exporters:
  kms: {{}}
service:
  pipelines:
    traces: {{receivers: [zipkin], exporters: [kms]}}
""")
    kms = KmsProcess(tmp_path / "kms", ["--config", str(cfg)]).start()
    try:
        now_us = time.time_ns() // 1000
        spans = [{"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "name": "get /api",
                  "kind": "SERVER", "timestamp": now_us, "duration": 1500,
                  "localEndpoint": {"serviceName": "frontend"}, "tags": {"http.method": "GET", "error": "boom"}},
                 {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "b2fb4a1d1a96d312",
                  "parentId": "a2fb4a1d1a96d312", "name": "select", "kind": "CLIENT", "timestamp": now_us + 100,
                  "duration": 500, "localEndpoint": {"serviceName": "frontend"},
                  "remoteEndpoint": {"serviceName": "postgres"}}]
        r = httpx.post(f"http://127.0.0.1:{zport}/api/v2/spans", json=spans)
        assert r.status_code == 202, r.text
        assert httpx.post(f"http://127.0.0.1:{zport}/api/v2/spans", json=[{"id": "x"}]).status_code == 400
        api = httpx.Client(base_url=kms.url, timeout=10)
        trace = wait_for(lambda: (r := api.get("/api/v2/traces/463ac35c9f6413ad48485a3953bb6124",
                                                headers={"Accept": "application/json"})).status_code == 200 and r.json())
        got = {s["name"]: s for rs in trace["trace"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
        assert got["get /api"]["status"]["code"] == "STATUS_CODE_ERROR"
        assert got["get /api"]["kind"] == "SPAN_KIND_SERVER"
        peer = {a["key"]: a["value"]["stringValue"] for a in got["select"]["attributes"]}
        assert peer == {"peer.service": "postgres"}
        assert got["select"]["parentSpanId"]
    finally:
        kms.kill()


def test_kms_up_k8sattributes_finds_the_sending_pod_by_its_address(tmp_path):
    """The pod sending OTLP (here: from 127.0.0.1) is found by the connection's address, over
    OTLP/HTTP and OTLP/gRPC alike, without any resource attribute naming it."""
    import grpc as grpclib

    from kms.testing.kube_api import FakeKubeApi

    api = FakeKubeApi().start()
    api.put("/api/v1/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-7d9", "namespace": "shop", "uid": "uid-1"},
        "spec": {"nodeName": "node-a"}, "status": {"podIP": "127.0.0.1", "phase": "Running"},
    })  # fmt: skip
    grpc_port, http_port = free_port(), free_port()
    cfg = tmp_path / "kms.yaml"
    cfg.write_text(f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{grpc_port}"}}, http: {{endpoint: "127.0.0.1:{http_port}"}}}}}}
processors:
  k8sattributes: {{pod_association: [{{sources: [{{from: connection}}]}}]}}
exporters:
  kms: {{}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [k8sattributes], exporters: [kms]}}
""")
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    kms = KmsProcess(tmp_path / "kms", ["--config", str(cfg)], env={"KUBECONFIG": str(kubeconfig)},
                     grpc_port=grpc_port, otlp_http_port=http_port).start()  # fmt: skip
    try:
        sent = {}
        for proto, tid in (("http", "ab" * 16), ("grpc", "cd" * 16)):
            req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[
                Span(trace_id=bytes.fromhex(tid), span_id=bytes.fromhex("01" * 8), name="pay",
                     start_time_unix_nano=time.time_ns(), end_time_unix_nano=time.time_ns() + 1000)])])])  # fmt: skip
            if proto == "http":
                r = httpx.post(f"http://127.0.0.1:{http_port}/v1/traces", content=req.SerializeToString(), headers=PB)
                assert r.status_code == 200, r.text
            else:
                with grpclib.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
                    ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(
                        req.SerializeToString(), timeout=10)
            sent[proto] = tid

        def resource(tid: str) -> dict | None:
            r = httpx.get(f"{kms.url}/api/v2/traces/{tid}", headers={"Accept": "application/json"})
            if r.status_code != 200:
                return None
            [rs] = r.json()["trace"]["resourceSpans"]
            return {a["key"]: a["value"].get("stringValue") for a in rs["resource"]["attributes"]}

        for proto, tid in sent.items():
            got = wait_for(lambda tid=tid: resource(tid), 20)
            assert got["k8s.pod.name"] == "checkout-7d9" and got["k8s.namespace.name"] == "shop", (proto, got)
    finally:
        kms.kill()
        api.stop()
