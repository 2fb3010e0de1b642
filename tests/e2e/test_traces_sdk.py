"""The real OpenTelemetry SDK exports to ``kms up``; Grafana's calls find the traces."""

from __future__ import annotations

import base64

import httpx
import pytest
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_client import (
    grpc_exporter,
    http_exporter,
    make_trace,
    span_names,
    tracer_provider,
    v2_protobuf_trace,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("transport", ["grpc", "http", "http-api-port"])
def test_sdk_export_then_find_by_id_and_traceql(kms, transport):
    exporter = {
        "grpc": lambda: grpc_exporter(kms),
        "http": lambda: http_exporter(kms),
        "http-api-port": lambda: http_exporter(kms, port=kms.port),
    }[transport]()
    tp = tracer_provider(exporter, f"shop-{transport}")
    tid, names = make_trace(tp)
    tp.shutdown()

    with httpx.Client(base_url=kms.url, timeout=10) as c:
        # Grafana: protobuf v2 first.
        r = c.get(f"/api/v2/traces/{tid}", headers={"Accept": "application/protobuf"})
        assert r.status_code == 200
        data = v2_protobuf_trace(r.content)
        assert span_names(data) == sorted(names)
        rs = data.resource_spans[0]
        assert any(kv.key == "service.name" and kv.value.string_value == f"shop-{transport}" for kv in rs.resource.attributes)
        spans = {s.name: s for s in rs.scope_spans[0].spans}
        assert spans["render"].status.message == "template missing"
        assert spans["SELECT cart"].parent_span_id == spans["GET /cart"].span_id
        assert {kv.key for kv in spans["GET /cart"].attributes} == {"http.method", "http.status_code"}

        # v1 protobuf is the bare Trace; JSON forms follow Tempo's.
        r1 = c.get(f"/api/traces/{tid}", headers={"Accept": "application/protobuf"})
        assert span_names(trace_pb2.TracesData.FromString(r1.content)) == sorted(names)
        j1 = c.get(f"/api/traces/{tid}").json()
        assert base64.b64decode(j1["batches"][0]["scopeSpans"][0]["spans"][0]["traceId"]).hex() == tid
        j2 = c.get(f"/api/v2/traces/{tid}").json()
        assert j2["status"] == "COMPLETE" and len(j2["trace"]["resourceSpans"]) == 1

        # Ids with leading zeros stripped, and upper case, are accepted.
        assert c.get(f"/api/v2/traces/{tid.upper()}").status_code == 200
        if tid.startswith("0"):
            assert c.get(f"/api/v2/traces/{tid.lstrip('0')}").status_code == 200

        res = c.get("/api/search", params={"q": f'{{ resource.service.name = "shop-{transport}" && status = error }}'})
        assert res.status_code == 200, res.text
        traces = res.json()["traces"]
        assert [t["traceID"] for t in traces] == [tid]
        t = traces[0]
        assert t["rootServiceName"] == f"shop-{transport}" and t["rootTraceName"] == "GET /cart"
        assert t["spanSets"][0]["spans"][0]["name"] == "render"
        assert isinstance(t["startTimeUnixNano"], str) and isinstance(t["durationMs"], int)

        none = c.get("/api/search", params={"q": '{ resource.service.name = "nobody" }'}).json()
        assert none["traces"] == []


def test_unknown_trace_is_404_and_bad_id_is_400(kms):
    with httpx.Client(base_url=kms.url, timeout=10) as c:
        r = c.get("/api/v2/traces/" + "ab" * 16, headers={"Accept": "application/protobuf"})
        assert r.status_code == 404 and "trace not found" in r.text
        assert c.get("/api/traces/not-hex").status_code == 400
        assert c.get("/api/traces/" + "a" * 33).status_code == 400


def test_invalid_traceql_is_400_with_position(kms):
    r = httpx.get(kms.url + "/api/search", params={"q": "{ .a = }"})
    assert r.status_code == 400
    assert "col" in r.text or "position" in r.text


def test_echo_buildinfo_ready_metrics(kms):
    with httpx.Client(base_url=kms.url, timeout=10) as c:
        assert c.get("/api/echo").text == "echo"
        assert c.get("/ready").status_code == 200
        assert c.get("/api/status/buildinfo").json()["version"] >= "2.7.0"
        tp = tracer_provider(grpc_exporter(kms), "metered")
        make_trace(tp)
        tp.shutdown()
        m = c.get("/metrics").text
        assert 'kms_received_items_total{signal="traces",tenant="anonymous"} 3.0' in m
        assert "kms_storage_wal_bytes" in m


def test_tenant_isolation(kms):
    tp_a = tracer_provider(grpc_exporter(kms, tenant="team-a"), "svc-a")
    tid_a, _ = make_trace(tp_a)
    tp_a.shutdown()
    tp_b = tracer_provider(http_exporter(kms, tenant="team-b"), "svc-b")
    tid_b, _ = make_trace(tp_b)
    tp_b.shutdown()
    with httpx.Client(base_url=kms.url, timeout=10) as c:
        def get(tid, tenant):
            return c.get(f"/api/v2/traces/{tid}", headers={"X-Scope-OrgID": tenant} if tenant else {}).status_code

        assert (get(tid_a, "team-a"), get(tid_a, "team-b"), get(tid_a, None)) == (200, 404, 404)
        assert (get(tid_b, "team-b"), get(tid_b, "team-a")) == (200, 404)
        assert get(tid_a, "team-a|team-b") == 200 and get(tid_b, "team-a|team-b") == 200
        found = c.get("/api/search", params={"q": "{}"}, headers={"X-Scope-OrgID": "team-b"}).json()["traces"]
        assert [t["traceID"] for t in found] == [tid_b]
        assert c.get("/api/search", params={"q": "{}"}, headers={"X-Scope-OrgID": "bad/tenant"}).status_code == 400
