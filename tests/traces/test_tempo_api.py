"""Tempo HTTP API over a real store (in-process app): tags, tag values, legacy search, limits."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.testclient import TestClient

from kms.config import load_config
from kms.server import Stack

PB = {"Content-Type": "application/x-protobuf"}
T0 = 1_700_000_000_000_000_000


@pytest.fixture
def api(tmp_path):
    stack = Stack(load_config(None, {"data_dir": str(tmp_path / "d")}, {}))
    stack.store.open()
    stack.receiver.ready = True
    with TestClient(stack.app) as c:
        yield c
    stack.store.close()


def push(c, tenant=None):
    req = trace_service_pb2.ExportTraceServiceRequest()
    for t, (svc, method, code) in enumerate([("cart", "GET", 200), ("cart", "POST", 500), ("pay", "GET", 200)]):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = svc
        rs.resource.attributes.add(key="deployment.environment").value.string_value = "prod"
        ss = rs.scope_spans.add()
        ss.scope.name = "lib"
        tid = bytes([t + 1]) * 16
        root = ss.spans.add(trace_id=tid, span_id=bytes([t + 1]) * 8, name=f"{method} /{svc}", kind=2,
                            start_time_unix_nano=T0 + t * 10**9, end_time_unix_nano=T0 + t * 10**9 + (t + 1) * 10**8)
        root.attributes.add(key="http.method").value.string_value = method
        root.attributes.add(key="http.status_code").value.int_value = code
        if code == 500:
            root.status.code = 2
        child = ss.spans.add(trace_id=tid, span_id=bytes([t + 1, 9]) * 4, parent_span_id=root.span_id, name="db",
                             kind=3, start_time_unix_nano=T0 + t * 10**9 + 1, end_time_unix_nano=T0 + t * 10**9 + 5000)
        child.attributes.add(key="db.system").value.string_value = "postgresql"
        child.events.add(name="retry", time_unix_nano=T0 + 2).attributes.add(key="attempt").value.int_value = 2
    r = c.post("/v1/traces", content=req.SerializeToString(), headers={**PB, **({"X-Scope-OrgID": tenant} if tenant else {})})
    assert r.status_code == 200


def test_tags_v1_and_v2(api):
    push(api)
    v1 = api.get("/api/search/tags").json()
    assert {"service.name", "deployment.environment", "http.method", "http.status_code", "db.system"} <= set(v1["tagNames"])
    v2 = api.get("/api/v2/search/tags").json()
    scopes = {s["name"]: s["tags"] for s in v2["scopes"]}
    assert scopes["resource"] == ["deployment.environment", "service.name"]
    assert scopes["span"] == ["db.system", "http.method", "http.status_code"]
    assert scopes["event"] == ["attempt"]
    assert "rootServiceName" in scopes["intrinsic"] and "status" in scopes["intrinsic"]
    only_span = api.get("/api/v2/search/tags", params={"scope": "span"}).json()["scopes"]
    assert [s["name"] for s in only_span] == ["span"]
    filtered = api.get("/api/v2/search/tags", params={"scope": "span", "q": '{ span.db.system = "postgresql" }'}).json()
    assert filtered["scopes"][0]["tags"] == ["db.system"]
    assert api.get("/api/v2/search/tags", params={"scope": "nope"}).status_code == 400


def test_tag_values(api):
    push(api)
    assert api.get("/api/search/tag/service.name/values").json()["tagValues"] == ["cart", "pay"]
    assert api.get("/api/search/tag/http.status_code/values").json()["tagValues"] == ["200", "500"]
    v2 = api.get("/api/v2/search/tag/resource.service.name/values").json()["tagValues"]
    assert sorted(v2, key=lambda v: v["value"]) == [{"type": "string", "value": "cart"}, {"type": "string", "value": "pay"}]
    codes = api.get("/api/v2/search/tag/span.http.status_code/values").json()["tagValues"]
    assert sorted(v["value"] for v in codes) == ["200", "500"] and {v["type"] for v in codes} == {"int"}
    assert api.get("/api/v2/search/tag/.http.method/values").json()["tagValues"] != []
    status = api.get("/api/v2/search/tag/status/values").json()["tagValues"]
    assert {"type": "keyword", "value": "error"} in status and {"type": "keyword", "value": "unset"} in status
    kinds = api.get("/api/v2/search/tag/kind/values").json()["tagValues"]
    assert [k["value"] for k in kinds] == ["server", "client"]
    names = [v["value"] for v in api.get("/api/v2/search/tag/name/values").json()["tagValues"]]
    assert names == ["GET /cart", "GET /pay", "POST /cart", "db"]
    roots = [v["value"] for v in api.get("/api/v2/search/tag/rootServiceName/values").json()["tagValues"]]
    assert roots == ["cart", "pay"]
    q = {"q": '{ resource.service.name = "pay" }'}
    assert [v["value"] for v in api.get("/api/v2/search/tag/span.http.method/values", params=q).json()["tagValues"]] == ["GET"]
    # An unparsable q is ignored, as Tempo does.
    assert len(api.get("/api/v2/search/tag/span.http.method/values", params={"q": "{ nope"}).json()["tagValues"]) == 2


def test_search_shapes_and_legacy_tags(api):
    push(api)
    res = api.get("/api/search", params={"tags": "service.name=cart http.method=POST"}).json()["traces"]
    assert [t["traceID"] for t in res] == [(bytes([2]) * 16).hex()]
    by_dur = api.get("/api/search", params={"minDuration": "150ms"}).json()["traces"]
    assert sorted(t["traceID"] for t in by_dur) == sorted((bytes([i]) * 16).hex() for i in (2, 3))
    assert api.get("/api/search", params={"maxDuration": "1ms", "tags": "db.system=postgresql"}).json()["traces"]
    newest_first = api.get("/api/search", params={"q": "{}", "limit": 2}).json()["traces"]
    assert [t["rootServiceName"] for t in newest_first] == ["pay", "cart"]
    t = api.get("/api/search", params={"q": "{ status = error } | select(span.http.method)"}).json()["traces"][0]
    assert t["serviceStats"] == {"cart": {"spanCount": 2, "errorCount": 1}}
    span = t["spanSets"][0]["spans"][0]
    assert {"key": "http.method", "value": {"stringValue": "POST"}} in span["attributes"]
    assert isinstance(span["durationNanos"], str) and t["durationMs"] == 200
    grouped = api.get("/api/search", params={"q": "{ } | by(resource.service.name)"}).json()["traces"]
    assert any(ss.get("attributes") == [{"key": "by(resource.service.name)", "value": {"stringValue": "pay"}}]
               for tr in grouped for ss in tr["spanSets"])


@pytest.mark.parametrize("params, status, words", [
    ({"q": "{ .a = }"}, 400, "invalid TraceQL query: parse error"),
    ({"q": "{ parent }"}, 400, "invalid TraceQL query"),
    ({"limit": "abc"}, 400, "limit"),
    ({"limit": "5000"}, 400, "exceeds the maximum"),
    ({"start": "20", "end": "10"}, 400, "end"),
    ({"tags": "noequals"}, 400, "key=value"),
    ({"tags": "status.code=}"}, 400, "status.code"),
    ({"minDuration": "fast"}, 400, "duration"),
])
def test_search_refusals(api, params, status, words):
    r = api.get("/api/search", params=params)
    assert r.status_code == status and words in r.text


def test_search_time_range(api):
    push(api)
    start = T0 // 10**9
    only_first = api.get("/api/search", params={"q": "{}", "start": start, "end": start}).json()["traces"]
    assert [t["traceID"] for t in only_first] == [(bytes([1]) * 16).hex()]


def test_traceql_metrics_range_and_instant(api):
    push(api)
    start, end = T0 // 10**9 - 1, T0 // 10**9 + 3
    r = api.get("/api/metrics/query_range", params={
        "q": "{ kind = server } | count_over_time() by (resource.service.name)", "start": start, "end": end, "step": "1s"})
    assert r.status_code == 200, r.text
    series = {s["labels"][0]["value"]["stringValue"]: s["samples"] for s in r.json()["series"]}
    assert sum(x["value"] for x in series["cart"]) == 2 and sum(x["value"] for x in series["pay"]) == 1
    assert all(isinstance(x["timestampMs"], str) for x in series["cart"])
    inst = api.get("/api/metrics/query", params={"q": "{ } | count_over_time()", "start": start, "end": end}).json()
    assert [s["value"] for s in inst["series"]] == [6.0]
    assert api.get("/api/metrics/query_range", params={"q": "{ }"}).status_code == 400
    assert api.get("/api/metrics/query_range", params={"q": "{ } | rate()", "start": "x"}).status_code == 400


def test_trace_ids_with_leading_zeros(api):
    req = trace_service_pb2.ExportTraceServiceRequest()
    tid = bytes(6) + bytes(range(1, 11))
    req.resource_spans.add().scope_spans.add().spans.add(trace_id=tid, span_id=b"\x01" * 8, name="z",
                                                         start_time_unix_nano=T0, end_time_unix_nano=T0 + 1)
    assert api.post("/v1/traces", content=req.SerializeToString(), headers=PB).status_code == 200
    full = tid.hex()
    for form in (full, full.lstrip("0"), full.upper(), "0" + full.lstrip("0")):
        assert api.get(f"/api/v2/traces/{form}").status_code == 200, form
    found = api.get("/api/search", params={"q": '{ name = "z" }'}).json()["traces"]
    assert [t["traceID"] for t in found] == [full]  # always 32 lower-case hex characters out
