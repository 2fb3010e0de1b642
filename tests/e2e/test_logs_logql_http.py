"""Every LogQL feature of the logs issue end to end: a fixed set of lines pushed to a ``kms up``
subprocess over Loki's JSON push, one representative query per feature over the Loki HTTP API;
and a real Loki-protocol client (``python-logging-loki``) pushing through Python logging."""

from __future__ import annotations

import json
import logging
import math
import time

import httpx
import pytest

from kms.testing import KmsProcess

pytestmark = pytest.mark.slow

S = 10**9
T0 = (time.time_ns() // S - 600) * S  # ten minutes ago, whole seconds; entries sit at T0 + i s + 0.5 s
API = [  # (level, status, duration, size, ip, trace_id)
    ("info", 200, "15ms", "1KB", "10.0.0.1", "t2"),
    ("info", 201, "1.5s", "2MB", "10.0.0.7", "t1"),
    ("warn", 404, "250ms", "512B", "192.168.1.5", "t2"),
    ("error", 500, "3s", "10KB", "10.0.1.2", "t1"),
    ("info", 200, "90ms", "3KB", "172.16.0.1", "t2"),
    ("debug", 503, "20ms", "1KB", "10.0.0.200", "t2"),
]
JSON = [("error", 500, 0.25, "u1"), ("info", 200, 0.5, "u2"), ("info", 200, 1.0, "u1"), ("warn", 404, 2.0, "u3")]
RAW = ["\x1b[31mERROR\x1b[0m disk full on /dev/sda1", "GET /index.html 200 from 10.1.2.3",
       "POST /login 401 from 10.1.2.4"]


def _ts(i: int) -> str:
    return str(T0 + i * S + S // 2)


def _push_body() -> dict:
    api = [[_ts(i), f'level={lv} status={st} duration={d} size={sz} ip={ip} msg="req {i}"', {"trace_id": tid}]
           for i, (lv, st, d, sz, ip, tid) in enumerate(API)]
    js = [[_ts(i), json.dumps({"level": lv, "status": st, "latency": lat, "user": {"id": u}})]
          for i, (lv, st, lat, u) in enumerate(JSON)]
    return {"streams": [
        {"stream": {"app": "api", "env": "prod"}, "values": api},
        {"stream": {"app": "json", "env": "prod"}, "values": js},
        {"stream": {"app": "raw", "env": "dev"}, "values": [[_ts(i), x] for i, x in enumerate(RAW)]},
        {"stream": {"app": "packed", "env": "dev"},
         "values": [[_ts(0), json.dumps({"_entry": "original line", "foo": "bar"})]]},
    ]}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    kms = KmsProcess(tmp_path_factory.mktemp("logql") / "data").start()
    try:
        with httpx.Client(base_url=kms.url, timeout=20) as c:
            r = c.post("/loki/api/v1/push", json=_push_body())
            assert r.status_code == 204, r.text
            yield c
    finally:
        kms.kill()


def lines(c: httpx.Client, query: str) -> list[str]:
    """The lines a log query returns, oldest first."""
    r = c.get("/loki/api/v1/query_range", params={"query": query, "start": str(T0 - S), "end": str(T0 + 60 * S),
                                                  "limit": "1000", "direction": "forward"})
    assert r.status_code == 200, r.text
    vals = sorted(v for s in r.json()["data"]["result"] for v in s["values"])
    return [v[1] for v in vals]


def streams(c: httpx.Client, query: str) -> list[dict[str, str]]:
    r = c.get("/loki/api/v1/query_range", params={"query": query, "start": str(T0 - S), "end": str(T0 + 60 * S)})
    assert r.status_code == 200, r.text
    return [s["stream"] for s in r.json()["data"]["result"]]


def instant(c: httpx.Client, query: str, at_s: float = 30) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of an instant metric query at ``T0 + at_s``, in the answer's order."""
    r = c.get("/loki/api/v1/query", params={"query": query, "time": str(T0 + int(at_s * S))})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    return [(s["metric"], float(s["value"][1])) for s in data["result"]]


def value(c: httpx.Client, query: str, at_s: float = 30) -> float:
    [(_, v)] = instant(c, query, at_s)
    return v


def req(*idx: int) -> list[str]:
    return [f"req {i}" for i in idx]


def msgs(found: list[str]) -> list[str]:
    return [x.split('msg="')[1].rstrip('"') for x in found]


@pytest.mark.parametrize("query,want", [
    ('{app="api"} |= "status=50"', req(3, 5)),
    ('{app="api"} != "level=info"', req(2, 3, 5)),
    ('{app="api"} |~ "req [12]"', req(1, 2)),
    ('{app="api"} !~ "status=(2|4)"', req(3, 5)),
    ('{app="api"} |= "req 1" or "req 4"', req(1, 4)),
    ('{app="api"} |= ip("10.0.0.0/24")', req(0, 1, 5)),
    ('{app="api"} |= "status" != "debug" |~ "10\\\\.0\\\\."', req(0, 1, 3)),  # chained
    ('{app="api"} | logfmt | status >= 500', req(3, 5)),
    ('{app="api"} | logfmt | duration > 200ms', req(1, 2, 3)),
    ('{app="api"} | logfmt | size >= 3KB', req(1, 3, 4)),
    ('{app="api"} | logfmt | level="info" and status=201 or level="debug"', req(1, 5)),
    ('{app="api"} | trace_id="t1"', req(1, 3)),  # structured metadata
])
def test_line_filters_parsers_and_label_filters(api, query, want):
    assert msgs(lines(api, query)) == want


@pytest.mark.parametrize("query,want", [
    ('{app="json"} | json | user_id="u1" | line_format "{{.level}}"', ["error", "info"]),
    ('{app="json"} | json lat="latency" | lat > 0.6 | line_format "{{.lat}}"', ["1.0", "2.0"]),
    ('{app="raw"} | regexp "(?P<method>[A-Z]+) (?P<path>\\\\S+) (?P<code>\\\\d+)" | code=401 | line_format "{{.path}}"',
     ["/login"]),
    ('{app="raw"} | pattern "<method> <path> <_> from <ip>" | method="GET" | line_format "{{.ip}}"', ["10.1.2.3"]),
    ('{app="packed"} | unpack | foo="bar"', ["original line"]),
    ('{app="api"} | logfmt | status=404 | line_format "{{.level}} {{.status}} {{ToUpper .msg}}"', ["warn 404 REQ 2"]),
    ('{app="raw"} |= "disk" | decolorize', ["ERROR disk full on /dev/sda1"]),
])
def test_parsers_and_formatting(api, query, want):
    assert lines(api, query) == want


def test_label_format_drop_and_keep(api):
    [s] = streams(api, '{app="api"} | logfmt | status=500 | keep level')
    assert s == {"level": "error"}
    [s] = streams(api, '{app="api"} | logfmt | status=500 | drop ip, size, duration, msg')
    assert s["app"] == "api" and s["level"] == "error" and not {"ip", "size", "duration", "msg"} & set(s)
    got = {m["lvl"]: v for m, v in instant(api, 'sum by (lvl) (count_over_time({app="api"} | logfmt '
                                                '| label_format lvl=level [1m]))')}
    assert got == {"info": 3, "warn": 1, "error": 1, "debug": 1}


LAT = [x[2] for x in JSON]


# Structured metadata and parsed labels are labels of a metric query's series: aggregate them away.
@pytest.mark.parametrize("query,want,at", [
    ('sum(count_over_time({app="api"}[1m]))', 6, 30),
    ('sum(rate({app="api"}[1m]))', 0.1, 30),
    ('bytes_over_time({app="raw"}[1m])', sum(len(x.encode()) for x in RAW), 30),
    ('bytes_rate({app="raw"}[1m])', sum(len(x.encode()) for x in RAW) / 60, 30),
    ('absent_over_time({app="nope"}[1m])', 1, 30),
    ('sum(sum_over_time({app="json"} | json | unwrap latency [1m]))', sum(LAT), 30),
    ('avg_over_time({app="json"} | json | unwrap latency [1m]) by (app)', sum(LAT) / 4, 30),
    ('min_over_time({app="json"} | json | unwrap latency [1m]) by (app)', 0.25, 30),
    ('max_over_time({app="json"} | json | unwrap latency [1m]) by (app)', 2.0, 30),
    ('first_over_time({app="json"} | json | unwrap latency [1m]) by (app)', 0.25, 30),
    ('last_over_time({app="json"} | json | unwrap latency [1m]) by (app)', 2.0, 30),
    ('stdvar_over_time({app="json"} | json | unwrap latency [1m]) by (app)', 0.44921875, 30),
    ('stddev_over_time({app="json"} | json | unwrap latency [1m]) by (app)', math.sqrt(0.44921875), 30),
    ('quantile_over_time(0.5, {app="json"} | json | unwrap latency [1m]) by (app)', 0.75, 30),
    ('sum(sum_over_time({app="api"} | logfmt | unwrap duration(duration) [1m]))', 4.875, 30),
    ('sum(sum_over_time({app="api"} | logfmt | unwrap bytes(size) [1m]))', 1000 + 2e6 + 512 + 10_000 + 3000 + 1000,
     30),
    ('sum(count_over_time({app="api"}[5s]))', 5, 5.9),  # (T0+0.9, T0+5.9] holds entries 1..5
    ('sum(count_over_time({app="api"}[5s] offset 3s))', 5, 8),  # (T0, T0+5] holds entries 0..4
    ('sum(count_over_time({app="api"}[1m])) / sum(count_over_time({env="prod"}[1m]))', 0.6, 30),
    ('sum(count_over_time({app="api"}[1m])) * 2 + 1', 13, 30),
])
def test_range_aggregations_unwrap_offset_and_binary_ops(api, query, want, at):
    assert value(api, query, at) == pytest.approx(want)


def test_rate_counter_over_one_series(api):
    got = value(api, 'rate_counter({app="json"} | json lat="latency" | keep app, lat | unwrap lat [1m])')
    assert 0 < got < math.inf  # a counter 0.25 -> 2.0 over 3 s, extrapolated like Prometheus's rate


def test_vector_aggregations_topk_and_sort(api):
    by_level = 'sum by (level) (count_over_time({app="api"} | logfmt [1m]))'
    assert {m["level"]: v for m, v in instant(api, by_level)} == {"info": 3, "warn": 1, "error": 1, "debug": 1}
    assert instant(api, f"topk(1, {by_level})") == [({"level": "info"}, 3)]
    assert {m["level"] for m, _ in instant(api, f"bottomk(3, {by_level})")} == {"warn", "error", "debug"}
    assert instant(api, f"sort_desc({by_level})")[0] == ({"level": "info"}, 3)
    assert [v for _, v in instant(api, f"sort({by_level})")] == [1, 1, 1, 3]
    assert value(api, f"count({by_level})") == 4
    assert value(api, f"max({by_level})") == 3
    assert value(api, f"avg({by_level})") == 1.5
    got = instant(api, 'sum without (env, service_name, detected_level, trace_id) (count_over_time({env=~".+"}[1m]))')
    assert {m["app"]: v for m, v in got} == {"api": 6, "json": 4, "raw": 3, "packed": 1}
    assert [v for _, v in instant(api, f"{by_level} > 1")] == [3]


def test_python_logging_loki_client(tmp_path):
    """``python-logging-loki``'s handler (Loki JSON push, as applications ship it) through Python logging."""
    import logging_loki  # the test extras install it
    kms = KmsProcess(tmp_path / "data").start()
    try:
        handler = logging_loki.LokiHandler(url=kms.url + "/loki/api/v1/push", tags={"app": "pll"}, version="1")
        logger = logging.getLogger("e2e.pll")
        logger.propagate = False
        logger.addHandler(handler)
        t0 = time.time_ns()
        logger.warning("disk almost full")
        logger.error("disk full", extra={"tags": {"volume": "data"}})
        logger.removeHandler(handler)
        with httpx.Client(base_url=kms.url, timeout=10) as c:
            r = c.get("/loki/api/v1/query_range", params={"query": '{app="pll"}', "start": str(t0 - S),
                                                          "end": str(time.time_ns() + S), "direction": "forward"})
            assert r.status_code == 200, r.text
            got = {s["stream"]["severity"]: (s["stream"], [v[1] for v in s["values"]]) for s in r.json()["data"]["result"]}
    finally:
        kms.kill()
    assert got["warning"][1] == ["disk almost full"] and got["error"][1] == ["disk full"]
    assert got["error"][0]["volume"] == "data" and got["error"][0]["logger"] == "e2e.pll"
