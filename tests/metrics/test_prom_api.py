"""Prometheus HTTP query API (``kms.metrics.api``) over MemorySeriesSource, via Starlette's TestClient."""

from __future__ import annotations

import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from kms.errors import KmsError
from kms.metrics.api import PrometheusApi
from kms.metrics.http.encode import fmt_ts, fmt_value
from kms.metrics.http.params import Form, parse_time_ms, unescape_name
from kms.metrics.promql import STALE_NAN, MemorySeriesSource
from kms.telemetry import Telemetry

T0 = 1_700_000_000  # seconds
PREFIXES = ["/api/v1", "/prometheus/api/v1"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class NoOrgId(KmsError):
    reason = "no_org_id"


def read_tenants(header):
    if header == "missing":
        raise NoOrgId("no org id")
    return sorted(set((header or "anonymous").split("|")))


class ExemplarSource(MemorySeriesSource):
    def exemplars(self, matcher_sets, start_ms, end_ms):
        out = []
        for ms in matcher_sets:
            for s in self.select(ms, start_ms, end_ms):
                if s.labels.get("__name__") == "lat_bucket":
                    t_ms = T0 * 1000 + 12_345
                    ex = [{"labels": {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736"}, "value": 0.231,
                           "timestamp": t_ms / 1000}] if start_ms <= t_ms <= end_ms else []
                    out.append({"seriesLabels": s.labels, "exemplars": ex})
        return out

    def metadata(self, metric, limit):
        meta = {"up": [{"type": "gauge", "help": "up", "unit": ""}],
                "http_requests_total": [{"type": "counter", "help": "reqs", "unit": ""}]}
        return {k: v for k, v in meta.items() if not metric or k == metric}


def build_sources():
    a = ExemplarSource()
    for i in range(0, 121, 15):
        t = (T0 + i) * 1000
        a.add({"__name__": "http_requests_total", "job": "shop/api", "code": "200"}, t, float(i))
        a.add({"__name__": "http_requests_total", "job": "shop/api", "code": "500"}, t, i / 10)
        a.add({"__name__": "up", "job": "shop/api", "http.status_code": "200"}, t, 1.0)
    a.add({"__name__": "weird"}, T0 * 1000, float("nan"))
    a.add({"__name__": "weird", "k": "inf"}, T0 * 1000, float("inf"))
    a.add({"__name__": "weird", "k": "ninf"}, T0 * 1000, float("-inf"))
    a.add({"__name__": "gone"}, T0 * 1000, 1.0)
    a.add({"__name__": "gone"}, (T0 + 30) * 1000, STALE_NAN)
    a.add({"__name__": "lat_bucket", "le": "0.512"}, T0 * 1000, 3.0)
    b = MemorySeriesSource()
    b.add({"__name__": "only_in_b", "job": "b"}, T0 * 1000, 7.0)
    return {"anonymous": a, "b": b}


def source_for_factory(sources):
    def source_for(tenants):
        if len(tenants) == 1:
            return sources.get(tenants[0], MemorySeriesSource())
        merged = MemorySeriesSource()
        for t in tenants:
            for s in sources[t].select([], -(2**62), 2**62):
                merged.add_series(s.labels, s.t, s.v)
        return merged

    return source_for


@pytest.fixture(scope="module")
def client():
    api = PrometheusApi(source_for_factory(build_sources()), read_tenants, Telemetry(), clock=lambda: T0 + 60)
    with TestClient(Starlette(routes=api.routes())) as c:
        yield c


def ok(r):
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body


def err(r, status, kind):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == kind
    return body["error"]


# -- encoding and parameter units --

def test_encoding_helpers():
    assert fmt_ts(1_700_000_000_500) == "1700000000.500" and fmt_ts(4000) == "4" and fmt_ts(1) == "0.001"
    assert [fmt_value(v) for v in (2.0, 0.1, 1e-7, 1e21, 1e20, float("nan"), float("inf"), -float("inf"))] == [
        "2", "0.1", "1e-07", "1e+21", "100000000000000000000", "NaN", "+Inf", "-Inf"]


def test_time_param_formats():
    def t(s):
        return parse_time_ms(Form(f"time={s}"), "time", 0)

    assert t("1700000000.1234") == 1_700_000_000_123
    assert t("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert t("2023-11-14T23:13:20.123456789%2B01:00") == 1_700_000_000_123
    assert t("1700000000000") == 1_700_000_000_000_000  # the exemplar probe's milliseconds


def test_unescape_name():
    assert unescape_name("U__http_2e_status__code") == "http.status_code"
    assert unescape_name("U__bad_zz_") == "U__bad_zz_"
    assert unescape_name("plain") == "plain"


# -- queries --

@pytest.mark.parametrize("prefix", PREFIXES)
def test_grafana_health_check(client, prefix):
    r = client.post(prefix + "/query", data={"query": "1+1", "time": "4"}, headers=FORM)
    assert ok(r)["data"] == {"resultType": "scalar", "result": [4, "2"]}
    info = ok(client.get(prefix + "/status/buildinfo"))["data"]
    # Mimir's features: Grafana then manages rules through the ruler API, which kms serves
    assert info["version"] == "3.5.0" and info["features"]["ruler_config_api"] == "true"
    assert info["features"]["alertmanager_config_api"] == "false"


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_instant_query(client, prefix, method):
    params = {"query": 'http_requests_total{code="200"}', "time": f"{T0 + 60}.5"}
    if method == "GET":
        r = client.get(prefix + "/query", params=params)
    else:
        r = client.post(prefix + "/query", data=params, headers=FORM)
    assert ok(r)["data"] == {"resultType": "vector", "result": [
        {"metric": {"__name__": "http_requests_total", "code": "200", "job": "shop/api"},
         "value": [T0 + 60.5, "60"]}]}
    assert f"[{T0 + 60}.500," in r.text  # exactly three decimals, as a number


def test_query_default_time_and_body_wins(client):
    r = client.post(f"/api/v1/query?query=up&time={T0 + 15}", data={"query": 'http_requests_total{code="200"}'},
                    headers=FORM)
    assert ok(r)["data"]["result"][0]["value"] == [T0 + 15, "15"]  # query from the body, time from the URL
    r = client.get("/api/v1/query", params={"query": "up"})  # time defaults to the clock
    assert ok(r)["data"]["result"][0]["value"] == [T0 + 60, "1"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_range_query(client, prefix, method):
    params = {"query": 'http_requests_total{code="500"}', "start": str(T0), "end": str(T0 + 30), "step": "15"}
    if method == "GET":
        r = client.get(prefix + "/query_range", params=params)
    else:
        r = client.post(prefix + "/query_range", data=params, headers=FORM)
    data = ok(r)["data"]
    assert data["resultType"] == "matrix"
    assert data["result"][0]["values"] == [[T0, "0"], [T0 + 15, "1.5"], [T0 + 30, "3"]]


def test_range_query_durations_and_rfc3339(client):
    r = client.get("/api/v1/query_range", params={
        "query": "up", "start": "2023-11-14T22:13:20Z", "end": "2023-11-14T22:14:20Z", "step": "30s"})
    assert [v[0] for v in ok(r)["data"]["result"][0]["values"]] == [T0, T0 + 30, T0 + 60]
    r = client.get("/api/v1/query_range", params={"query": "up", "start": T0, "end": T0 + 1, "step": "0.5"})
    assert [v[0] for v in ok(r)["data"]["result"][0]["values"]] == [T0, T0 + 0.5, T0 + 1]


def test_nan_inf_and_stale(client):
    r = client.get("/api/v1/query", params={"query": "weird", "time": T0})
    assert {x["metric"].get("k", ""): x["value"][1] for x in ok(r)["data"]["result"]} == {
        "": "NaN", "inf": "+Inf", "ninf": "-Inf"}
    # a staleness marker ends the series at once (not after the 5m lookback)
    assert ok(client.get("/api/v1/query", params={"query": "gone", "time": T0 + 15}))["data"]["result"]
    assert ok(client.get("/api/v1/query", params={"query": "gone", "time": T0 + 45}))["data"]["result"] == []
    r = client.get("/api/v1/query_range", params={"query": "gone", "start": T0, "end": T0 + 60, "step": 15})
    assert ok(r)["data"]["result"][0]["values"] == [[T0, "1"], [T0 + 15, "1"]]


def test_scalar_string_and_limit(client):
    assert ok(client.get("/api/v1/query", params={"query": '"hi"', "time": 5}))["data"] == {
        "resultType": "string", "result": [5, "hi"]}
    r = client.get("/api/v1/query", params={"query": "http_requests_total", "time": T0, "limit": 1})
    body = ok(r)
    assert len(body["data"]["result"]) == 1 and body["warnings"] == ["results truncated due to limit"]


def test_lookback_delta_param(client):
    q = {"query": "up", "time": T0 + 200}
    assert ok(client.get("/api/v1/query", params=q))["data"]["result"]
    assert ok(client.get("/api/v1/query", params={**q, "lookback_delta": "1m"}))["data"]["result"] == []
    err(client.get("/api/v1/query", params={**q, "lookback_delta": "zz"}), 400, "bad_data")


def test_query_errors(client):
    msg = err(client.get("/api/v1/query", params={"query": "sum(", "time": 1}), 400, "bad_data")
    assert msg.startswith('invalid parameter "query": parse error')
    err(client.post("/api/v1/query", data={"query": ""}, headers=FORM), 400, "bad_data")
    msg = err(client.get("/api/v1/query", params={"query": "up", "time": "yesterday"}), 400, "bad_data")
    assert msg == 'invalid parameter "time": cannot parse "yesterday" to a valid timestamp'
    err(client.get("/api/v1/query", params={"query": "up", "timeout": "x"}), 400, "bad_data")
    rq = {"query": "up", "start": T0, "end": T0 + 60, "step": 15}
    assert "must not be before" in err(client.get("/api/v1/query_range", params={**rq, "end": T0 - 1}), 400,
                                       "bad_data")
    assert "zero or negative" in err(client.get("/api/v1/query_range", params={**rq, "step": 0}), 400, "bad_data")
    assert "11,000 points" in err(client.get("/api/v1/query_range", params={**rq, "step": "1ms"}), 400, "bad_data")
    err(client.get("/api/v1/query_range", params={**rq, "start": ""}), 400, "bad_data")
    msg = err(client.get("/api/v1/query_range", params={**rq, "query": "up[5m]"}), 400, "bad_data")
    assert "invalid expression type" in msg
    # duplicate labelsets after dropping the name: an evaluation error
    err(client.get("/api/v1/query", params={"query": 'label_replace(http_requests_total, "code", "", "", "")',
                                             "time": T0}), 422, "execution")


def test_timeout_and_max_samples():
    class Slow(MemorySeriesSource):
        def select(self, matchers, start_ms, end_ms):
            time.sleep(0.5)
            return []

    src = MemorySeriesSource()
    for i in range(5):
        src.add({"__name__": "m", "i": str(i)}, 0, 1.0)
    sources = {"anonymous": src, "slow": Slow()}
    api = PrometheusApi(lambda ts: sources[ts[0]], read_tenants, Telemetry(), max_samples=3)
    with TestClient(Starlette(routes=api.routes())) as c:
        r = c.get("/api/v1/query", params={"query": "m", "time": 0, "timeout": "0.05"},
                  headers={"X-Scope-OrgID": "slow"})
        err(r, 503, "timeout")
        err(c.get("/api/v1/query", params={"query": "m", "time": 0}), 422, "execution")


# -- series, labels, values --

@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_series(client, prefix, method):
    params = {"match[]": ["up", 'http_requests_total{code="500"}'], "start": T0, "end": T0 + 60}
    if method == "GET":
        r = client.get(prefix + "/series", params=params)
    else:
        r = client.post(prefix + "/series", data=params, headers=FORM)
    assert ok(r)["data"] == [
        {"__name__": "http_requests_total", "code": "500", "job": "shop/api"},
        {"__name__": "up", "http.status_code": "200", "job": "shop/api"},
    ]


def test_series_grafana_calls_and_errors(client):
    r = client.get("/api/v1/series", params={"match[]": '{__name__!=""}', "start": T0, "end": T0 + 60,
                                             "limit": 40000})
    assert len(ok(r)["data"]) == 8
    r = client.get("/api/v1/series", params={"match[]": "traces_service_graph_request_server_seconds",
                                             "limit": 1})
    assert ok(r)["data"] == []
    r = ok(client.get("/api/v1/series", params={"match[]": "http_requests_total", "limit": 1}))
    assert len(r["data"]) == 1 and r["warnings"] == ["results truncated due to limit"]
    assert err(client.get("/api/v1/series"), 400, "bad_data") == "no match[] parameter provided"
    err(client.get("/api/v1/series", params={"match[]": "sum(up)"}), 400, "bad_data")
    err(client.get("/api/v1/series", params={"match[]": '{a=""}'}), 400, "bad_data")
    err(client.get("/api/v1/series", params={"match[]": "up", "limit": "-1"}), 400, "bad_data")


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_labels(client, prefix, method):
    if method == "GET":
        r = client.get(prefix + "/labels", params={"start": T0, "end": T0 + 60, "limit": 40000})
    else:
        r = client.post(prefix + "/labels", data={"start": T0, "end": T0 + 60}, headers=FORM)
    assert ok(r)["data"] == ["__name__", "code", "http.status_code", "job", "k", "le"]
    r = client.get(prefix + "/labels", params={"match[]": "up"})
    assert ok(r)["data"] == ["__name__", "http.status_code", "job"]
    body = ok(client.get(prefix + "/labels", params={"limit": 2}))
    assert body["data"] == ["__name__", "code"] and body["warnings"] == ["results truncated due to limit"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_label_values(client, prefix):
    r = client.get(prefix + "/label/__name__/values", params={"start": T0, "end": T0 + 60, "limit": 40000})
    assert ok(r)["data"] == ["gone", "http_requests_total", "lat_bucket", "up", "weird"]
    r = client.get(prefix + "/label/code/values", params={"match[]": "http_requests_total", "start": T0,
                                                           "end": T0 + 60, "limit": 40000})
    assert ok(r)["data"] == ["200", "500"]
    r = client.get(prefix + "/label/U__http_2e_status__code/values")  # Grafana's escaping of http.status_code
    assert ok(r)["data"] == ["200"]
    assert ok(client.get(prefix + "/label/nope/values"))["data"] == []
    assert client.post(prefix + "/label/code/values").status_code == 405  # GET only, like Prometheus


# -- exemplars, metadata, misc --

@pytest.mark.parametrize("prefix", PREFIXES)
def test_exemplars(client, prefix):
    r = client.post(prefix + "/query_exemplars", data={
        "query": "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
        "start": T0, "end": T0 + 60}, headers=FORM)
    assert ok(r)["data"] == [{"seriesLabels": {"__name__": "lat_bucket", "le": "0.512"}, "exemplars": [
        {"labels": {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736"}, "value": "0.231", "timestamp": T0 + 12.345}]}]
    assert '"timestamp":1700000012.345' in r.text
    # Grafana's probe: query=test with millisecond start/end
    r = client.get(prefix + "/query_exemplars", params={"query": "test", "start": T0 * 1000,
                                                        "end": (T0 + 3600) * 1000})
    assert ok(r)["data"] == []
    assert ok(client.get(prefix + "/query_exemplars", params={"query": "1+1"}))["data"] == []
    err(client.get(prefix + "/query_exemplars", params={"query": "up{"}), 400, "bad_data")
    # a source without exemplars answers empty
    r = client.get(prefix + "/query_exemplars", params={"query": "only_in_b"}, headers={"X-Scope-OrgID": "b"})
    assert ok(r)["data"] == []


@pytest.mark.parametrize("prefix", PREFIXES)
def test_metadata_and_stubs(client, prefix):  # /rules and /alerts: tests/rules/test_api.py
    assert set(ok(client.get(prefix + "/metadata"))["data"]) == {"up", "http_requests_total"}
    assert ok(client.get(prefix + "/metadata", params={"metric": "up"}))["data"] == {
        "up": [{"type": "gauge", "help": "up", "unit": ""}]}
    assert len(ok(client.get(prefix + "/metadata", params={"limit": 1}))["data"]) == 1
    err(client.get(prefix + "/metadata", params={"limit": "x"}), 400, "bad_data")
    r = client.get(prefix + "/metadata", headers={"X-Scope-OrgID": "b"})
    assert ok(r)["data"] == {}
    assert ok(client.get(prefix + "/status/flags"))["data"] == {}
    assert ok(client.get(prefix + "/status/config"))["data"] == {"yaml": ""}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_format_query(client, prefix):
    assert ok(client.get(prefix + "/format_query", params={"query": "sum(rate(x[5m]))by(a)"}))["data"] == \
        "sum by (a) (rate(x[5m]))"
    r = client.post(prefix + "/format_query", data={"query": "up"}, headers=FORM)
    assert ok(r)["data"] == "up"
    err(client.get(prefix + "/format_query", params={"query": "("}), 400, "bad_data")


# -- tenancy --

def test_tenant_separation(client):
    q = {"query": "only_in_b", "time": T0}
    assert ok(client.get("/api/v1/query", params=q))["data"]["result"] == []
    r = client.get("/api/v1/query", params=q, headers={"X-Scope-OrgID": "b"})
    assert ok(r)["data"]["result"][0]["value"] == [T0, "7"]
    assert ok(client.get("/api/v1/label/__name__/values", headers={"X-Scope-OrgID": "b"}))["data"] == ["only_in_b"]
    r = client.get("/api/v1/label/__name__/values", headers={"X-Scope-OrgID": "anonymous|b"})
    assert "only_in_b" in ok(r)["data"] and "up" in r.json()["data"]
    r = client.get("/api/v1/series", params={"match[]": "up"}, headers={"X-Scope-OrgID": "b"})
    assert ok(r)["data"] == []
    assert err(client.get("/api/v1/labels", headers={"X-Scope-OrgID": "missing"}), 401, "bad_data") == "no org id"
