"""The LogQL engine end to end over a ``MemoryLogSource``: log queries and metric queries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms.logs.logql import LogQLEngine, LogQLError
from kms.logs.logql.errors import PipelineError
from kms.logs.memory import MemoryLogSource
from kms.metrics.promql.values import Matrix, Scalar, Vector

S = 10**9
T0 = 1_700_000_000 * S


@pytest.fixture(scope="module")
def engine() -> LogQLEngine:
    src = MemoryLogSource(batch_rows=7)  # small batches: results must not depend on batch cuts
    src.add_stream(
        {"app": "api", "env": "prod"},
        [
            (T0 + i * S, f'level={"error" if i % 4 == 0 else "info"} status={500 if i % 4 == 0 else 200} '
             f'dur={i * 10}ms size={i}KB msg="req {i}" ip=10.0.0.{i}', {"trace_id": f"t{i % 2}"})
            for i in range(40)
        ],
    )
    src.add_stream(
        {"app": "web", "env": "prod"},
        [(T0 + i * S + S // 2, f'{{"level":"warn","user":{{"id":{i},"name":"u{i}"}},"tags":["a"]}}') for i in range(20)]
        + [(T0 + 100 * S, "not json \x1b[31mred\x1b[0m")],
    )
    return LogQLEngine(src, max_entries_limit=1000)


def logs(engine: LogQLEngine, q: str, **kw) -> list:
    kw.setdefault("limit", 1000)
    res, stats = engine.query_range(q, T0, T0 + 1000 * S, S, **kw)
    assert stats.lines_processed >= len(res.entries)
    return res.entries


def lines(engine: LogQLEngine, q: str, **kw) -> list[str]:
    return [e.line for e in logs(engine, q, **kw)]


def instant(engine: LogQLEngine, q: str, t: int) -> dict:
    res, _ = engine.instant(q, t)
    assert isinstance(res.value, Vector), res.value
    return {tuple(sorted(s.labels.items())): s.value for s in res.value.samples}


# ------------------------------------------------------------------------------ log queries


def test_line_filters(engine: LogQLEngine) -> None:
    assert len(lines(engine, '{app="api"} |= "level=error"')) == 10
    assert len(lines(engine, '{app="api"} != "level=error" != "req 1\\""')) == 29
    assert lines(engine, '{app="api"} |~ "req (7|13)$"') == []  # msg is quoted: "$" anchors the line end
    assert len(lines(engine, '{app="api"} |~ "req (7|13)\\"" ')) == 2
    assert len(lines(engine, '{app="api"} !~ "(?i)LEVEL=INFO"')) == 10
    assert len(lines(engine, '{app="api"} |= "req 3\\"" or "req 5\\""')) == 2
    assert len(lines(engine, '{app=~"api|web"} |= ip("10.0.0.0/30")')) == 4
    assert len(lines(engine, '{app="api"} |> "level=<_> status=500 <_>"')) == 10
    assert len(lines(engine, '{app="api"} !> "level=<_> status=500 <_>"')) == 30
    assert lines(engine, '{app="api"} |= ""') == lines(engine, '{app="api"}')


def test_direction_limit_and_interval(engine: LogQLEngine) -> None:
    back = logs(engine, '{env="prod"}', limit=3)
    assert [e.time_ns for e in back] == [T0 + 100 * S, T0 + 39 * S, T0 + 38 * S]
    fwd = logs(engine, '{env="prod"}', limit=3, direction="forward")
    assert [e.time_ns for e in fwd] == [T0, T0 + S // 2, T0 + S]
    sparse = logs(engine, '{app="web"}', direction="forward", interval_ns=5 * S)
    assert [(e.time_ns - T0) // S for e in sparse] == [0, 5, 10, 15, 100]
    with pytest.raises(LogQLError, match="max entries limit"):
        engine.query_range('{app="api"}', T0, T0 + S, S, limit=5000)
    with pytest.raises(LogQLError, match="instant query"):
        engine.instant('{app="api"}', T0)


def test_parsers_and_errors(engine: LogQLEngine) -> None:
    e = logs(engine, '{app="api"} |= "req 8\\"" | logfmt')[0]
    assert e.parsed == {"level": "error", "status": "500", "dur": "80ms", "size": "8KB", "msg": "req 8",
                        "ip": "10.0.0.8"}
    assert e.metadata == {"trace_id": "t0"} and e.stream == {"app": "api", "env": "prod"}
    j = logs(engine, '{app="web"} | json', direction="forward")
    assert j[0].parsed == {"level": "warn", "user_id": "0", "user_name": "u0"}  # arrays skipped
    assert j[-1].parsed["__error__"] == "JSONParserErr" and j[-1].parsed["__error_details__"]
    p = logs(engine, '{app="web"} | json uid="user.id", first="tags[0]", u="user" | __error__=""', limit=1)[0]
    assert p.parsed == {"uid": "19", "first": "a", "u": '{"id":19,"name":"u19"}'}
    r = logs(engine, '{app="api"} | regexp "status=(?P<code>\\\\d+) dur=(?P<d>\\\\w+)"', limit=1)[0]
    assert r.parsed == {"code": "200", "d": "390ms"}
    pt = logs(engine, '{app="api"} | pattern "level=<lvl> status=<_> <rest>"', limit=1)[0]
    assert pt.parsed["lvl"] == "info" and pt.parsed["rest"].startswith("dur=390ms")
    env = logs(engine, '{app="api"} | logfmt --keep-empty | env="prod"', limit=1)[0]
    assert "env" not in env.parsed  # a clash with a stream label is renamed, the filter sees the stream label
    assert [x.line for x in logs(engine, '{app="web"} |= "red" | decolorize')] == ["not json red"]


def test_unpack() -> None:
    src = MemoryLogSource()
    src.add_stream({"app": "p"}, [(T0, '{"_entry":"original line","pod":"x","n":1}')])
    e = LogQLEngine(src).query_range('{app="p"} | unpack', T0, T0 + S, S)[0].entries[0]
    assert e.line == "original line" and e.parsed == {"pod": "x"}


def test_label_filters(engine: LogQLEngine) -> None:
    assert len(lines(engine, '{app="api"} | logfmt | status >= 500')) == 10
    assert len(lines(engine, '{app="api"} | logfmt | dur > 250ms and dur <= 300ms')) == 5
    # "and" binds tighter than "or"; "," takes everything to its right (Loki's grammar)
    assert len(lines(engine, '{app="api"} | logfmt | size > 30KB or level="error" and status=500')) == 17
    assert len(lines(engine, '{app="api"} | logfmt | status=500, size > 30KB or level="info"')) == 2
    assert len(lines(engine, '{app="api"} | logfmt | (size > 30KB or level="error") , status=500')) == 10
    assert len(lines(engine, '{app="api"} | trace_id="t1"')) == 20  # structured metadata
    assert len(lines(engine, '{app="api"} | env=~"pr.*" | app!="web"')) == 40  # stream labels
    assert len(lines(engine, '{app="api"} | logfmt | ip = ip("10.0.0.0/29")')) == 8
    assert len(lines(engine, '{app="api"} | logfmt | ip != ip("10.0.0.0/29")')) == 32
    bad = logs(engine, '{app="api"} | logfmt | level > 5', limit=1)[0]
    assert bad.parsed["__error__"] == "LabelFilterErr"  # kept, flagged
    assert lines(engine, '{app="api"} | logfmt | level > 5 | __error__=""') == []


def test_formatting_and_label_shaping(engine: LogQLEngine) -> None:
    out = lines(engine, '{app="api"} |= "req 4\\"" | logfmt | line_format "{{.level | ToUpper}} {{ .msg }} '
                        '{{ if eq .status \\"500\\" }}bad{{ else }}ok{{ end }} {{ printf \\"%05d\\" .status }}"')
    assert out == ["ERROR req 4 bad 00500"]
    assert lines(engine, '{app="api"} |= "req 4\\"" | line_format "{{ __line__ | trunc 11 }}"') == ["level=error"]
    e = logs(engine, '{app="api"} |= "req 4\\"" | logfmt | label_format lvl=level, where="{{.env}}/{{.app}}" '
                     '| drop size, dur, msg, ip, trace_id, status="200"')[0]
    assert e.parsed == {"status": "500", "lvl": "error", "where": "prod/api"} and e.metadata == {}
    k = logs(engine, '{app="api"} |= "req 4\\"" | logfmt | keep app, level')[0]
    assert k.stream == {"app": "api"} and k.parsed == {"level": "error"} and k.metadata == {}
    # line filters after line_format see the new line
    assert len(lines(engine, '{app="api"} | logfmt | line_format "{{.level}}" |= "err"')) == 10


# ------------------------------------------------------------------------------ metric queries


def test_health_check_and_literals(engine: LogQLEngine) -> None:
    res, _ = engine.instant("vector(1)+vector(1)", 4_000_000_000 * S)
    assert isinstance(res.value, Vector) and [(s.labels, s.value) for s in res.value.samples] == [({}, 2.0)]
    res, _ = engine.instant("1 + 2 * 3", T0)
    assert isinstance(res.value, Scalar) and res.value.value == 7.0


def test_count_and_rate_windows(engine: LogQLEngine) -> None:
    # window (t-10s, t]: at T0+10s the api stream has entries 1..10, per trace_id metadata 5 each
    got = instant(engine, 'count_over_time({app="api"}[10s])', T0 + 10 * S)
    assert sorted(got.values()) == [5.0, 5.0] and all(("trace_id", "t0") in k or ("trace_id", "t1") in k for k in got)
    assert instant(engine, 'sum(count_over_time({app="api"}[10s]))', T0 + 10 * S) == {(): 10.0}
    assert instant(engine, 'sum(rate({app="api"} |= "error" [10s]))', T0 + 12 * S) == {(): 0.3}
    assert instant(engine, 'sum(count_over_time({app="api"}[10s] offset 30s))', T0 + 40 * S) == {(): 10.0}
    web = instant(engine, 'bytes_over_time({app="web"}[1s])', T0 + 2 * S)
    assert list(web.values()) == [float(len('{"level":"warn","user":{"id":1,"name":"u1"},"tags":["a"]}'))]
    res, _ = engine.query_range('sum(count_over_time({app="api"}[5s]))', T0, T0 + 60 * S, 20 * S)
    assert isinstance(res.value, Matrix) and len(res.value.series) == 1
    s = res.value.series[0]
    assert s.t.tolist() == [(T0 + k * S) // 10**6 for k in (0, 20, 40)] and s.v.tolist() == [1.0, 5.0, 4.0]


def test_parsed_series_and_vector_aggregation(engine: LogQLEngine) -> None:
    q = 'sum by (level) (count_over_time({app="api"} | logfmt [40s]))'
    assert instant(engine, q, T0 + 39 * S) == {(("level", "error"),): 10.0, (("level", "info"),): 30.0}
    with pytest.raises(PipelineError, match="JSONParserErr"):
        engine.instant('count_over_time({app="web"} | json [1000s])', T0 + 200 * S)
    ok = instant(engine, 'sum(count_over_time({app="web"} | json | __error__="" [1000s]))', T0 + 200 * S)
    assert ok == {(): 20.0}
    # Grafana's logs volume query: dropping __error__ drops its details too
    vol = instant(engine, 'sum by (level) (count_over_time({app="web"} | json | drop __error__ [1000s]))', T0 + 200 * S)
    assert vol == {(("level", "warn"),): 20.0, (): 1.0}
    top = engine.instant('topk(1, sum by (level) (count_over_time({app="api"} | logfmt [40s])))', T0 + 39 * S)[0]
    assert [s.labels for s in top.value.samples] == [{"level": "info"}]
    srt = engine.instant('sort(sum by (level) (count_over_time({app="api"} | logfmt [40s])))', T0 + 39 * S)[0]
    assert [s.value for s in srt.value.samples] == [10.0, 30.0]
    srt = engine.instant('sort_desc(sum by (level) (count_over_time({app="api"} | logfmt [40s])))', T0 + 39 * S)[0]
    assert [s.value for s in srt.value.samples] == [30.0, 10.0]
    assert instant(engine, 'count(sum by (level) (count_over_time({app="api"} | logfmt [40s])))', T0 + 39 * S) == \
        {(): 2.0}


def test_unwrap(engine: LogQLEngine) -> None:
    base = '{app="api"} | logfmt | unwrap '
    t = T0 + 9 * S  # entries 0..9 in a 10s window
    with pytest.raises(PipelineError):  # "0ms" is not a float
        engine.instant(f"sum(sum_over_time({base}dur [10s]))", t)
    assert instant(engine, f"sum(sum_over_time({base}duration(dur) [10s]))", t) == {(): 0.45}
    assert instant(engine, f"max_over_time({base}bytes(size) [10s]) by (app)", t) == {(("app", "api"),): 9000.0}
    assert instant(engine, f"min_over_time({base}status [10s]) by (app)", t) == {(("app", "api"),): 200.0}
    assert instant(engine, f"avg_over_time({base}status [10s]) by (level)", t) == \
        {(("level", "error"),): 500.0, (("level", "info"),): 200.0}
    q = instant(engine, f"quantile_over_time(0.5, {base}duration_seconds(dur) [10s]) by (env)", t)
    assert q == {(("env", "prod"),): pytest.approx(0.045)}
    first = instant(engine, f"first_over_time({base}status [10s]) by (env)", t)
    last = instant(engine, f"last_over_time({base}status [10s]) by (env)", t)
    assert first == {(("env", "prod"),): 500.0} and last == {(("env", "prod"),): 200.0}
    sd = instant(engine, f"stddev_over_time({base}status [10s]) by (env)", t)
    assert sd[(("env", "prod"),)] == pytest.approx(float(np.std([500, 200, 200, 200, 500, 200, 200, 200, 500, 200])))
    # the unwrapped label leaves the series labels; conversion failures are errors unless filtered
    s = engine.instant(f"sum_over_time({base}status [10s])", t)[0].value.samples[0]
    assert "status" not in s.labels and "level" in s.labels
    with pytest.raises(PipelineError, match="SampleExtractionErr"):
        engine.instant(f"sum_over_time({base}level [10s])", t)
    assert instant(engine, f'sum(sum_over_time({base}level | __error__="" [10s]))', t) == {}
    rate = instant(engine, f"sum(rate({base}status [10s]))", t)
    assert rate == {(): pytest.approx((3 * 500 + 7 * 200) / 10)}


def test_rate_counter() -> None:
    src = MemoryLogSource()
    src.add_stream({"app": "c"}, [(T0 + i * S, f"total={v}") for i, v in enumerate([1, 2, 3, 1, 2])])
    res, _ = LogQLEngine(src).instant('rate_counter({app="c"} | logfmt | unwrap total [10s])', T0 + 4 * S)
    (sample,) = res.value.samples
    # increase 1->3, reset, 1->2: 2 + 1 + 1 = 4 over 4s of samples, extrapolated into the 10s window
    assert 0.4 < sample.value < 1.0


def test_absent_and_binops(engine: LogQLEngine) -> None:
    assert instant(engine, 'absent_over_time({app="nope", env=~"p.*"}[1m])', T0) == {(("app", "nope"),): 1.0}
    assert instant(engine, 'absent_over_time({app="api"}[1m])', T0 + 5 * S) == {}
    per = 'sum by (app) (count_over_time({env="prod"}[10s]))'
    t = T0 + 9 * S
    assert instant(engine, f"{per} * 2", t) == {(("app", "api"),): 20.0, (("app", "web"),): 18.0}
    assert instant(engine, f"{per} > 9", t) == {(("app", "api"),): 10.0}
    assert instant(engine, f"{per} > bool 9", t) == {(("app", "api"),): 1.0, (("app", "web"),): 0.0}
    ratio = f'{per} / on() group_left sum(count_over_time({{env="prod"}}[10s]))'
    assert instant(engine, ratio, t) == {(("app", "api"),): 10 / 19, (("app", "web"),): 9 / 19}
    assert instant(engine, f'{per} unless on (app) sum by (app) (count_over_time({{app="web"}}[10s]))', t) == \
        {(("app", "api"),): 10.0}
    assert instant(engine, '(sum(count_over_time({app="zzz"}[10s])) or vector(0))', t) == {(): 0.0}
    lr = instant(engine, f'label_replace({per}, "short", "$1", "app", "(.)..")', t)
    assert lr[(("app", "api"), ("short", "a"))] == 10.0


def test_metric_nan_free_on_empty_steps(engine: LogQLEngine) -> None:
    res, _ = engine.query_range('sum(count_over_time({app="web"}[1s]))', T0 + 50 * S, T0 + 110 * S, 10 * S)
    (s,) = res.value.series
    assert s.t.tolist() == [(T0 + 100 * S) // 10**6] and not any(math.isnan(v) for v in s.v)


@pytest.mark.parametrize(
    ("agg", "want"),
    [
        ("sum", {(): 40.0}), ("avg", {(): 20.0}), ("min", {(): 10.0}), ("max", {(): 30.0}), ("count", {(): 2.0}),
        ("stdvar", {(): 100.0}), ("stddev", {(): 10.0}), ("bottomk(1,", {(("level", "error"),): 10.0}),
        ("sum without (level)", {(): 40.0}), ("max by (level)", {(("level", "error"),): 10.0,
                                                                 (("level", "info"),): 30.0}),
    ],
)
def test_vector_aggregations(engine: LogQLEngine, agg: str, want: dict) -> None:
    inner = 'sum by (level) (count_over_time({app="api"} | logfmt [40s]))'
    q = f"{agg} {inner})" if agg.endswith(",") else f"{agg} ({inner})"
    assert instant(engine, q, T0 + 39 * S) == want


def test_template_failures() -> None:
    src = MemoryLogSource()
    src.add_stream({"a": "b"}, [(T0, "x=1")])
    eng = LogQLEngine(src)
    (e,) = eng.query_range('{a="b"} | logfmt | line_format "{{ b64dec .x }}"', T0, T0 + S, S)[0].entries
    assert e.line == "x=1" and e.parsed["__error__"] == "TemplateFormatErr"  # flagged, line kept
    with pytest.raises(LogQLError, match="not defined"):  # an unknown function is the query's fault
        eng.query_range('{a="b"} | line_format "{{ nosuch .x }}"', T0, T0 + S, S)


def test_memory_source_contract() -> None:
    from kms.logs.source import LOG_BATCH_SCHEMA
    from kms.metrics.promql.model import Matcher

    src = MemoryLogSource(batch_rows=2)
    src.add_stream({"a": "1"}, [(5, "x5"), (1, "x1"), (3, "x3a"), (3, "x3b")])
    src.add_stream({"a": "2"}, [(2, "y2", {"k": "v"})])
    fwd = list(src.select([Matcher("a", "=~", ".+")], 1, 5, "forward"))
    assert all(t.schema == LOG_BATCH_SCHEMA and t.num_rows <= 2 for t in fwd)
    rows = [r for t in fwd for r in t.to_pylist()]
    assert [r["line"] for r in rows] == ["x1", "y2", "x3a", "x3b"]  # [start, end), ties in written order
    assert rows[1]["stream"] == '{a="2"}' and rows[1]["metadata"] == '{k="v"}' and rows[0]["metadata"] == "{}"
    back = [r["line"] for t in src.select([Matcher("a", "=", "1")], 0, 10, "backward") for r in t.to_pylist()]
    assert back == ["x5", "x3b", "x3a", "x1"]
    assert src.streams([Matcher("a", "=", "2")], 0, 10) == [{"a": "2"}]
    assert src.streams([], 3, 5) == [{"a": "1"}]


_TOKENS = ["level=info", "level=error", "level=", "level", "le.vel=x", "lvl=1", 'msg="a level=bad"', "level=a=b",
           "=level", "app=shadow", 'level="q v"', "levelx=1", "level=warn", 'x="unterminated', "le_vel=y"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(_TOKENS), max_size=5).map(" ".join), min_size=1, max_size=12),
       st.booleans())
def test_vectorised_logfmt_matches_per_line(lines: list[str], keep_empty: bool) -> None:
    import kms.logs.logql.rangeagg as rangeagg

    src = MemoryLogSource(batch_rows=5)
    src.add_stream({"app": "a"}, [(T0 + i, line) for i, line in enumerate(lines)])
    src.add_stream({"app": "b", "level": "stream"}, [(T0 + i, line) for i, line in enumerate(lines)])
    eng = LogQLEngine(src)
    flag = " --keep-empty" if keep_empty else ""
    q = f'sum by (level, le_vel, app) (count_over_time({{app=~".+"}} | logfmt{flag} [1m]))'

    def run() -> dict:
        return {tuple(sorted(s.labels.items())): s.value for s in eng.instant(q, T0 + S)[0].value.samples}

    fast = run()
    hint, rangeagg.logfmt_hint = rangeagg.logfmt_hint, lambda *a: None
    try:
        slow = run()
    finally:
        rangeagg.logfmt_hint = hint
    assert fast == slow


def test_logs_volume_query_takes_the_vectorised_path(engine: LogQLEngine, monkeypatch) -> None:
    import kms.logs.logql.rangeagg as rangeagg

    def no_rows(*a, **kw):
        raise AssertionError("per-row path used")

    monkeypatch.setattr(rangeagg, "_collect_rows", no_rows)
    q = 'sum by (level, detected_level, env) (count_over_time({env="prod"} |= "req" | drop __error__[40s]))'
    assert instant(engine, q, T0 + 39 * S) == {(("env", "prod"),): 40.0}
