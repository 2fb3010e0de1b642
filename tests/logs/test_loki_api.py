"""The Loki API over real HTTP against a ``kms up`` subprocess: push, queries, index endpoints,
refusals (each with Loki's status, nothing stored) and tenant isolation."""

from __future__ import annotations

import gzip
import time

import httpx
import orjson
import pytest

from kms.logs.batch import LogBatch, LogStream
from kms.logs.loki_push import encode_push
from kms.testing import KmsProcess

pytestmark = pytest.mark.slow

NOW = time.time_ns() // 10**9 * 10**9
JSON = {"Content-Type": "application/json"}
API = "/loki/api/v1"


@pytest.fixture(scope="module")
def kms(tmp_path_factory):
    proc = KmsProcess(tmp_path_factory.mktemp("loki") / "data", extra_args=[
        "--logs-max-line-size", "1000", "--max-request-bytes", "200000",
        "--logs-ingestion-rate-bytes", "100000", "--logs-ingestion-burst-bytes", "150000"]).start()
    with httpx.Client(base_url=proc.url, timeout=10) as c:
        body = {"streams": [
            {"stream": {"app": "api", "env": "prod"}, "values": [
                [str(NOW + i * 10**9), f"level=info GET /cart/{i} 200", {"trace_id": f"t{i % 3}"}] for i in range(10)]},
            {"stream": {"app": "web", "env": "dev"}, "values": [[str(NOW + 5 * 10**9 + 1), "level=error boom"]]},
        ]}
        r = c.post(API + "/push", content=gzip.compress(orjson.dumps(body)), headers={**JSON, "Content-Encoding": "gzip"})
        assert r.status_code == 204, r.text
        s = LogStream({"app": "db"})
        s.add(NOW + 2 * 10**9, "slow query", {"user": "u1"})
        r = c.post("/api/prom/push", content=encode_push(LogBatch([s])), headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 204, r.text
        yield proc, c
    proc.kill()


def get(c, path, headers=None, **params):
    return c.get(API + path, params=params, headers=headers or {})


RANGE = {"start": str(NOW - 10**9), "end": str(NOW + 60 * 10**9)}


def test_query_range_streams_backward_with_limit_and_stats(kms):
    _, c = kms
    r = get(c, "/query_range", query='{app="api"}', limit=3, **RANGE)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "streams" and "summary" in data["stats"]
    values = [v for s in data["result"] for v in s["values"]]
    assert [v[1] for v in sorted(values, key=lambda v: -int(v[0]))] == [f"level=info GET /cart/{i} 200" for i in (9, 8, 7)]
    for s in data["result"]:  # without the flag, structured metadata joins the stream labels
        assert s["stream"]["app"] == "api" and s["stream"]["trace_id"] in ("t0", "t1", "t2")


def test_query_range_forward_and_categorize_labels(kms):
    _, c = kms
    r = get(c, "/query_range", headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
            query='{env=~"prod|dev"}', direction="forward", limit=2, start=str(NOW / 1e9), end=str(NOW / 1e9 + 60))
    data = r.json()["data"]
    assert data["encodingFlags"] == ["categorize-labels"]
    [s] = data["result"]
    assert s["stream"] == {"app": "api", "env": "prod", "service_name": "api"}
    assert s["values"][0][:2] == [str(NOW), "level=info GET /cart/0 200"]
    assert s["values"][0][2] == {"structuredMetadata": {"detected_level": "info", "trace_id": "t0"}}


def test_metric_query_range(kms):
    _, c = kms
    at = str(NOW + 30 * 10**9)  # window (NOW - 30s, NOW + 30s]: every entry
    r = get(c, "/query_range", query='sum by (app) (count_over_time({env=~".+"}[1m]))', step="60s", start=at, end=at)
    assert r.status_code == 200, r.text
    got = {s["metric"]["app"]: s["values"][-1][1] for s in r.json()["data"]["result"]}
    assert got == {"api": "10", "web": "1"}
    assert "summary" in r.json()["data"]["stats"]


def test_grafana_logs_volume_query_groups_by_detected_level(kms):
    _, c = kms
    at = str(NOW + 30 * 10**9)
    q = 'sum by (level, detected_level) (count_over_time({env=~".+"} | drop __error__[1m]))'
    r = get(c, "/query_range", query=q, step="60000ms", start=at, end=at, headers={"X-Query-Tags": "Source=logvolhist"})
    assert r.status_code == 200, r.text
    assert {s["metric"]["detected_level"]: s["values"][0][1] for s in r.json()["data"]["result"]} == {
        "info": "10", "error": "1"}


def test_grafana_health_check(kms):
    _, c = kms
    r = get(c, "/query", query="vector(1)+vector(1)", time="4000000000", direction="backward")
    assert r.status_code == 200, r.text
    [sample] = r.json()["data"]["result"]
    assert r.json()["data"]["resultType"] == "vector" and sample["value"][1] == "2"


def test_instant_log_query_is_lokis_400(kms):
    _, c = kms
    r = get(c, "/query", query='{app="api"}')
    assert r.status_code == 400 and "log queries are not supported as an instant query type" in r.text
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("params, status, text", [
    ({"query": '{app="api"'}, 400, "parse error"),
    ({"query": '{app="api"}', "limit": "6000"}, 400, "max entries limit per query exceeded"),
    ({"query": '{app="api"}', "start": "yesterday"}, 400, "cannot parse"),
    ({"query": 'rate({app="api"}[1m])', "start": "0", "end": "100000", "step": "1"}, 400, "11,000 points"),
])
def test_bad_queries(kms, params, status, text):
    _, c = kms
    r = get(c, "/query_range", **params)
    assert r.status_code == status and text in r.text, r.text


def test_index_endpoints(kms):
    _, c = kms
    rng = {"start": str(NOW - 10**9), "end": str(NOW + 60 * 10**9)}
    assert get(c, "/labels", **rng).json() == {"status": "success", "data": ["app", "env", "service_name"]}
    assert get(c, "/label/app/values", **rng).json()["data"] == ["api", "db", "web"]
    assert get(c, "/label/app/values", query='{env="dev"}', **rng).json()["data"] == ["web"]
    assert get(c, "/series", **{"match[]": '{env=~"p.*"}'}, **rng).json()["data"] == [
        {"app": "api", "env": "prod", "service_name": "api"}]
    assert get(c, "/index/stats", query='{app="api"}', **rng).json() == {
        "streams": 1, "chunks": 1, "entries": 10, "bytes": sum(len(f"level=info GET /cart/{i} 200") for i in range(10))}
    vol = get(c, "/index/volume", query='{app=~".+"}', **rng).json()["data"]
    assert vol["resultType"] == "vector" and [s["metric"] for s in vol["result"]] == [
        {"app": "api"}, {"app": "web"}, {"app": "db"}]
    vr = get(c, "/index/volume_range", query='{app="web"}', step="60", **rng).json()["data"]
    assert vr["resultType"] == "matrix" and vr["result"][0]["values"][0][1] == str(len("level=error boom"))
    assert {"label": "app", "cardinality": 3} in get(c, "/detected_labels", **rng).json()["detectedLabels"]
    assert get(c, "/status/buildinfo").json()["version"].startswith("3.")
    assert get(c, "/format_query", query='{app="api"}|="x"').json()["status"] == "success"


def test_timestamp_forms_are_accepted(kms):
    _, c = kms
    for start, end in ((str(NOW // 10**9), str(NOW // 10**9 + 60)),
                       (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW // 10**9)), str(NOW + 60 * 10**9))):
        r = get(c, "/labels", start=start, end=end)
        assert r.status_code == 200 and "app" in r.json()["data"], (start, r.text)


def _stored(c, app: str, tenant: str | None = None) -> list[str]:
    h = {"X-Scope-OrgID": tenant} if tenant else {}
    return get(c, "/label/app/values", headers=h, start="0", end=str(NOW + 10**13)).json()["data"]


@pytest.mark.parametrize("body, headers, status, text", [
    ({"streams": [{"stream": {"app": "r1"}, "values": [[str(NOW), "x" * 1001]]}]}, JSON, 400, "Max entry size '1000'"),
    ({"streams": [{"stream": {"app": "r2"}, "values": [[str(NOW - 200 * 3600 * 10**9), "old"]]}]}, JSON, 400,
     "timestamp too old"),
    ({"streams": [{"stream": {"app": "r3", **{f"l{i}": "v" for i in range(15)}}, "values": [[str(NOW), "x"]]}]}, JSON,
     400, "label names; limit 15"),
    ({"streams": [{"stream": {"app": "r4"}, "values": [[NOW, "x"]]}]}, JSON, 400, "timestamp must be a string"),
    ({"streams": [{"stream": {"app": "r5"}, "values": [[str(NOW), "y" * 900]] * 250}]}, JSON, 413, "exceeds the limit"),
    ({"streams": [{"stream": {"app": "r6"}, "values": [[str(NOW), "z" * 900]] * 180}]}, JSON, 429,
     "Ingestion rate limit exceeded"),
])
def test_refusals_store_nothing(kms, body, headers, status, text):
    _, c = kms
    r = c.post(API + "/push", content=orjson.dumps(body), headers=headers)
    assert r.status_code == status and text in r.text, (r.status_code, r.text)
    if status == 429:
        assert int(r.headers["Retry-After"]) >= 1
    app = body["streams"][0]["stream"]["app"]
    assert app not in _stored(c, app)


def test_tenants_are_isolated(kms):
    _, c = kms
    for tenant, app in (("team-a", "only-a"), ("team-b", "only-b")):
        body = {"streams": [{"stream": {"app": app}, "values": [[str(NOW), "hi"]]}]}
        assert c.post(API + "/push", content=orjson.dumps(body), headers={**JSON, "X-Scope-OrgID": tenant}).status_code == 204
    assert _stored(c, "", "team-a") == ["only-a"]
    assert _stored(c, "", "team-b") == ["only-b"]
    assert _stored(c, "", "team-a|team-b") == ["only-a", "only-b"]
    both = get(c, "/series", headers={"X-Scope-OrgID": "team-a|team-b"}, start="0", end=str(NOW + 10**13),
               **{"match[]": '{app=~"only-.*"}'}).json()["data"]
    assert [s["__tenant_id__"] for s in both] == ["team-a", "team-b"]
    assert "only-a" not in _stored(c, "")


def test_tail_streams_new_entries_over_a_websocket(kms):
    from websockets.sync.client import connect

    proc, c = kms
    t = time.time_ns()
    url = proc.url.replace("http", "ws") + API + f'/tail?query={{app="tail"}}&start={t - 10**9}'
    with connect(url, open_timeout=5) as ws:
        body = {"streams": [{"stream": {"app": "tail"}, "values": [[str(t), "first"], [str(t + 1), "second"]]}]}
        assert c.post(API + "/push", content=orjson.dumps(body), headers=JSON).status_code == 204
        frame = orjson.loads(ws.recv(timeout=5))
        assert [v[1] for s in frame["streams"] for v in s["values"]] == ["first", "second"]
        body = {"streams": [{"stream": {"app": "tail"}, "values": [[str(t + 2), "third"]]}]}
        assert c.post(API + "/push", content=orjson.dumps(body), headers=JSON).status_code == 204
        frame = orjson.loads(ws.recv(timeout=5))
        assert [v[1] for s in frame["streams"] for v in s["values"]] == ["third"]  # nothing sent twice
        assert frame["streams"][0]["stream"]["app"] == "tail"


def test_detected_fields_and_their_values(kms):
    _, c = kms
    r = get(c, "/detected_fields", query='{app="api"}', **RANGE)
    assert r.status_code == 200, r.text
    fields = {f["label"]: f for f in r.json()["fields"]}
    assert fields["level"] == {"label": "level", "type": "string", "cardinality": 1, "parsers": ["logfmt"]}
    assert fields["trace_id"]["cardinality"] == 3 and fields["trace_id"]["parsers"] is None
    r = get(c, "/detected_field/trace_id/values", query='{app="api"}', **RANGE)
    assert r.json() == {"values": ["t0", "t1", "t2"], "limit": 1000}
    assert get(c, "/detected_fields", query='count_over_time({app="api"}[1m])', **RANGE).status_code == 400


def test_tail_refuses_a_metric_query(kms):
    from websockets.exceptions import ConnectionClosedError
    from websockets.sync.client import connect

    proc, _ = kms
    url = proc.url.replace("http", "ws") + API + '/tail?query=count_over_time({app="tail"}[1m])'
    with connect(url, open_timeout=5) as ws, pytest.raises(ConnectionClosedError, match="only supports log queries"):
        ws.recv(timeout=5)
