"""Two ``kms agent`` processes (clusters a and b) forwarding to one central ``kms up``; the central
stack is stopped for a while (and one agent is killed with -9 meanwhile), then restarted: every
span, log line and sample arrives exactly once, with its cluster label."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from kms.testing import KmsProcess
from kms.testing.agent import AgentProcess

pytestmark = pytest.mark.slow
PB = {"Content-Type": "application/x-protobuf"}
T0 = int(time.time()) - 600  # sample times: the last 10 minutes


def resource(cluster: str) -> Resource:
    return Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=f"svc-{cluster}"))])


def send_round(agent: AgentProcess, cluster: str, rnd: int, log_file) -> list[str]:
    """5 one-span traces, 10 log lines, 5 gauge samples; returns the trace ids."""
    ids = []
    for i in range(5):
        tid = f"{ord(cluster):02x}{rnd:02x}{i:02x}".ljust(32, "0")
        ids.append(tid)
        span = Span(trace_id=bytes.fromhex(tid), span_id=bytes.fromhex(f"{i + 1:016x}"), name="op",
                    kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=time.time_ns() - 10**6,
                    end_time_unix_nano=time.time_ns())
        req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource(cluster),
                                                                      scope_spans=[ScopeSpans(spans=[span])])])
        assert httpx.post(agent.url + "/v1/traces", content=req.SerializeToString(), headers=PB).status_code == 200
        t_ns = (T0 + rnd * 100 + i) * 10**9
        point = NumberDataPoint(time_unix_nano=t_ns, as_double=float(rnd * 10 + i))
        m = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(resource=resource(cluster), scope_metrics=[
            ScopeMetrics(metrics=[Metric(name="agent_test_value", gauge=Gauge(data_points=[point]))])])])
        assert httpx.post(agent.url + "/v1/metrics", content=m.SerializeToString(), headers=PB).status_code == 200
    with open(log_file, "a") as f:
        f.writelines(f"{cluster} round {rnd} line {j}\n" for j in range(10))
    return ids


def wait_drained(agent: AgentProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while agent.metric("kms_agent_queue_records") > 0 or agent.metric("kms_agent_sent_records_total") == 0:
        assert time.monotonic() < deadline, agent.log()[-3000:]
        time.sleep(0.2)


def test_central_outage_and_agent_crash_lose_and_repeat_nothing(tmp_path):
    central = KmsProcess(tmp_path / "central").start()
    agents, logs, ids = {}, {}, {"a": [], "b": []}
    try:
        for c in ("a", "b"):
            (tmp_path / f"logs-{c}").mkdir()
            logs[c] = tmp_path / f"logs-{c}" / "app.log"
            logs[c].touch()
            agents[c] = AgentProcess(tmp_path / f"agent-{c}", central.url, [
                "--external-label", f"cluster={c}", "--log-path", str(tmp_path / f"logs-{c}" / "*.log"),
                "--host-metrics", "false"]).start()
        for c in ("a", "b"):
            ids[c] += send_round(agents[c], c, 1, logs[c])
        for c in ("a", "b"):
            wait_drained(agents[c])

        central.stop()  # the outage
        for c in ("a", "b"):
            ids[c] += send_round(agents[c], c, 2, logs[c])
        time.sleep(1.0)  # the tailer has read round 2's lines into the queue
        agents["a"].kill()  # acknowledged, queued, not yet delivered: must survive kill -9
        agents["a"].start()
        ids["a"] += send_round(agents["a"], "a", 3, logs["a"])
        time.sleep(2.0)  # the agents retry against a dead central stack
        assert agents["b"].metric("kms_agent_queue_records") > 0

        central.start()
        for c in ("a", "b"):
            wait_drained(agents[c])
        api = httpx.Client(base_url=central.url, timeout=10)
        time.sleep(1.0)
        for c in ("a", "b"):
            for tid in ids[c]:  # each span once, with its cluster
                r = api.get(f"/api/v2/traces/{tid}", headers={"Accept": "application/json"})
                assert r.status_code == 200, (c, tid)
                rs = r.json()["trace"]["resourceSpans"]
                spans = [s for x in rs for ss in x["scopeSpans"] for s in ss["spans"]]
                assert len(spans) == 1, (c, tid, len(spans))
                attrs = {a["key"]: a["value"]["stringValue"] for x in rs for a in x["resource"]["attributes"]}
                assert attrs["cluster"] == c
        rounds = {"a": 3, "b": 2}
        lines = api.get("/loki/api/v1/query_range", params={"query": '{job="kms-agent"}', "limit": "1000",
                                                             "start": str((T0 - 3600) * 10**9)}).json()
        by_cluster: dict[str, list[str]] = {}
        for s in lines["data"]["result"]:
            by_cluster.setdefault(s["stream"]["cluster"], []).extend(v[1] for v in s["values"])
        for c in ("a", "b"):
            want = [f"{c} round {r} line {j}" for r in range(1, rounds[c] + 1) for j in range(10)]
            assert sorted(by_cluster[c]) == sorted(want), c
        for c in ("a", "b"):
            r = api.get("/prometheus/api/v1/query_range", params={
                "query": f'agent_test_value{{cluster="{c}"}}', "start": T0 - 10, "end": T0 + 400, "step": 1}).json()
            (series,) = r["data"]["result"]
            got = sorted({float(v) for _, v in series["values"]})
            assert got == sorted(float(r * 10 + i) for r in range(1, rounds[c] + 1) for i in range(5)), c
            count = api.get("/prometheus/api/v1/query", params={
                "query": f'count_over_time(agent_test_value{{cluster="{c}"}}[20m])', "time": T0 + 600}).json()
            assert float(count["data"]["result"][0]["value"][1]) == 5 * rounds[c], c
    finally:
        for a in agents.values():
            a.kill()
        central.kill()
