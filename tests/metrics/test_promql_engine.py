"""Engine basics on a small in-memory data set: one dense ``check()`` line per case."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kms.errors import BadInput
from kms.metrics.promql import STALE_NAN, Engine, Matcher, MemorySeriesSource, PromQLError, is_stale

M = 60_000  # one minute in ms


@pytest.fixture(scope="module")
def engine() -> Engine:
    src = MemorySeriesSource()
    for i in range(0, 61):  # 0..60 min at 1m, counters growing 1/s and 2/s
        src.add({"__name__": "req_total", "job": "api", "inst": "a"}, i * M, 60.0 * i)
        src.add({"__name__": "req_total", "job": "api", "inst": "b"}, i * M, 120.0 * i)
        src.add({"__name__": "req_total", "job": "web", "inst": "c"}, i * M, 30.0 * i)
    src.add_series({"__name__": "gauge", "inst": "a"}, [0, M, 2 * M, 3 * M], [5.0, 1.0, STALE_NAN, 7.0])
    src.add_series({"__name__": "reset_total"}, [0, M, 2 * M, 3 * M, 4 * M], [0.0, 10.0, 20.0, 5.0, 15.0])
    for le, c in (("0.1", 1.0), ("0.5", 5.0), ("1", 9.0), ("+Inf", 10.0)):
        src.add({"__name__": "lat_bucket", "le": le}, 0, c)
    return Engine(src)


def vec(engine: Engine, q: str, t: int) -> dict[tuple, float]:
    res = engine.instant(q, t).value
    assert res.type == "vector", res
    return {tuple(sorted(s.labels.items())): s.value for s in res.samples}


def check(engine: Engine, q: str, t: int, want: dict[str, float]) -> None:
    got = {",".join(f"{k}={v}" for k, v in key): val for key, val in vec(engine, q, t).items()}
    assert got.keys() == want.keys(), (q, got)
    for k, v in want.items():
        assert math.isclose(got[k], v, rel_tol=1e-9) or (math.isnan(v) and math.isnan(got[k])), (
            q,
            k,
            got[k],
            v,
        )


@pytest.mark.parametrize(
    "q, t, want",
    [
        ('req_total{inst="a"}', 10 * M, {"__name__=req_total,inst=a,job=api": 600}),
        ('req_total{inst="a"}', 10 * M + 30_000, {"__name__=req_total,inst=a,job=api": 600}),
        ('req_total{inst="a"} offset 5m', 10 * M, {"__name__=req_total,inst=a,job=api": 300}),
        ('req_total{inst="a"} @ 120', 10 * M, {"__name__=req_total,inst=a,job=api": 120}),
        ('req_total{inst="a"}', 66 * M, {}),  # beyond the 5m lookback
        ("gauge", 2 * M, {}),  # staleness marker hides the series
        ("gauge", 2 * M - 1, {"__name__=gauge,inst=a": 1}),
        ("gauge", 3 * M, {"__name__=gauge,inst=a": 7}),
        ('rate(req_total{inst="a"}[5m])', 30 * M, {"inst=a,job=api": 1}),
        ('increase(req_total{inst="b"}[5m])', 30 * M, {"inst=b,job=api": 600}),
        ("increase(reset_total[5m])", 4 * M, {"": 35}),  # 15 + 20 lost at the reset; zero-point clamp
        ("resets(reset_total[5m])", 4 * M, {"": 1}),
        ("changes(reset_total[5m])", 4 * M, {"": 4}),
        ('irate(req_total{inst="c"}[5m])', 30 * M, {"inst=c,job=web": 0.5}),
        ('idelta(req_total{inst="c"}[5m])', 30 * M, {"inst=c,job=web": 30}),
        ('deriv(req_total{inst="c"}[5m])', 30 * M, {"inst=c,job=web": 0.5}),
        ('delta(req_total{inst="c"}[5m])', 30 * M, {"inst=c,job=web": 150}),
        ("max_over_time(gauge[5m])", 3 * M, {"inst=a": 7}),
        ("count_over_time(gauge[5m])", 3 * M, {"inst=a": 3}),
        ("last_over_time(gauge[5m])", 3 * M, {"__name__=gauge,inst=a": 7}),
        ("avg_over_time(gauge[5m])", 3 * M, {"inst=a": 13 / 3}),
        ("sum by (job) (rate(req_total[5m]))", 30 * M, {"job=api": 3, "job=web": 0.5}),
        ("sum without (inst) (req_total)", 1 * M, {"job=api": 180, "job=web": 30}),
        ("count(req_total)", 1 * M, {"": 3}),
        ("avg(req_total)", 1 * M, {"": 70}),
        ("max by (job) (req_total)", 1 * M, {"job=api": 120, "job=web": 30}),
        ("stddev(req_total)", 1 * M, {"": float(np.std([60, 120, 30]))}),
        ("quantile(0.5, req_total)", 1 * M, {"": 60}),
        ("topk(1, req_total)", 1 * M, {"__name__=req_total,inst=b,job=api": 120}),
        (
            "bottomk by (job) (1, req_total)",
            1 * M,
            {"__name__=req_total,inst=a,job=api": 60, "__name__=req_total,inst=c,job=web": 30},
        ),
        ('count_values("v", gauge)', 0, {"v=5": 1}),
        ("req_total / 60", 1 * M, {"inst=a,job=api": 1, "inst=b,job=api": 2, "inst=c,job=web": 0.5}),
        (
            "req_total > 50",
            1 * M,
            {"__name__=req_total,inst=a,job=api": 60, "__name__=req_total,inst=b,job=api": 120},
        ),
        ("req_total > bool 50", 1 * M, {"inst=a,job=api": 1, "inst=b,job=api": 1, "inst=c,job=web": 0}),
        ('req_total{inst="a"} + on(job) group_left sum by (job) (req_total)', 1 * M, {"inst=a,job=api": 240}),
        ("req_total and on(inst) gauge", 1 * M, {"__name__=req_total,inst=a,job=api": 60}),
        (
            "req_total unless on(inst) gauge",
            1 * M,
            {"__name__=req_total,inst=b,job=api": 120, "__name__=req_total,inst=c,job=web": 30},
        ),
        (
            'gauge or on(inst) req_total{inst=~"a|b"}',
            1 * M,
            {"__name__=gauge,inst=a": 1, "__name__=req_total,inst=b,job=api": 120},
        ),
        ("abs(-gauge)", 1 * M, {"inst=a": 1}),
        ("clamp_max(req_total{inst='b'}, 100)", 1 * M, {"inst=b,job=api": 100}),
        ("round(gauge / 3, 0.1)", 1 * M, {"inst=a": 0.3}),
        ('label_replace(gauge, "x", "$1", "inst", "(.*)")', 1 * M, {"__name__=gauge,inst=a,x=a": 1}),
        ('label_join(gauge, "x", "-", "inst", "__name__")', 1 * M, {"__name__=gauge,inst=a,x=a-gauge": 1}),
        ("absent(nope)", 0, {"": 1}),
        ('absent(nope{job="x"})', 0, {"job=x": 1}),
        ("absent(gauge)", 0, {}),
        ("histogram_quantile(0.5, lat_bucket)", 0, {"": 0.1 + 0.4 * 4 / 4}),
        ("vector(time())", 90_000, {"": 90}),
        ("timestamp(gauge)", 3 * M + 5000, {"inst=a": 180}),
        ("minute(vector(3720))", 0, {"": 2}),
        ("max_over_time(rate(req_total{inst='a'}[2m])[10m:1m])", 30 * M, {"inst=a,job=api": 1}),
        ("sum_over_time(vector(1)[5m:1m])", 30 * M, {"": 5}),
    ],
)
def test_instant(engine, q, t, want):
    check(engine, q, t, want)


@pytest.mark.parametrize(
    "q, want",
    [
        ("1 + 2 * 3", 7.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("scalar(gauge)", 1.0),
        ("time()", 60.0),
        ("-(1)", -1.0),
        ("5 % 3", 2.0),
    ],
)
def test_scalar(engine, q, want):
    res = engine.instant(q, M).value
    assert res.type == "scalar" and res.value == want


def test_string_and_matrix(engine):
    assert engine.instant('"hi"', 0).value.value == "hi"
    m = engine.instant("gauge[5m]", 3 * M).value
    assert m.type == "matrix" and m.series[0].t.tolist() == [0, M, 3 * M]


def test_range_query_vectorised(engine):
    res = engine.range('rate(req_total{inst="a"}[5m])', 10 * M, 20 * M, M).value
    (s,) = res.series
    assert s.t.tolist() == list(range(10 * M, 21 * M, M)) and np.allclose(s.v, 1.0)
    res = engine.range("gauge", 0, 4 * M, M).value
    assert res.series[0].t.tolist() == [0, M, 3 * M, 4 * M]  # the stale step is absent
    res = engine.range("time()", 0, 2 * M, M).value
    assert res.series[0].v.tolist() == [0, 60, 120]


@pytest.mark.parametrize(
    "q, msg",
    [
        ("sum(", "parse error"),
        ("rate(gauge)", "parse error"),
        ("req_total + on(job) req_total", "many-to-many"),
        ("label_replace(req_total, 'inst', 'x', 'inst', '.*')", "same labelset"),
    ],
)
def test_errors(engine, q, msg):
    with pytest.raises(PromQLError, match=msg) as ei:
        engine.instant(q, M)
    assert isinstance(ei.value, BadInput)


def test_range_query_rejects_range_vector(engine):
    with pytest.raises(PromQLError, match="range vector"):
        engine.range("gauge[1m]", 0, M, M)


def test_memory_source_and_stale():
    src = MemorySeriesSource()
    src.add({"__name__": "x", "a": "1"}, 10, 1.0)
    src.add({"__name__": "x", "a": "1"}, 5, STALE_NAN)
    (s,) = src.select([Matcher("a", "=~", "1|2")], 0, 100)
    assert s.t.tolist() == [5, 10] and is_stale(s.v).tolist() == [True, False]
    assert src.select([Matcher("b", "=", "")], 0, 100)  # a missing label matches ""
    assert not src.select([Matcher("a", "!~", "1")], 0, 100)
    assert not src.select([Matcher("a", "=", "1")], 11, 100)


@pytest.mark.parametrize(
    "q, want",
    [
        ("x[2m*(10+5)]", "x[1800000ms]"),
        ("x[29s+1s:5s+5s]", "x[30000ms:10000ms]"),
        ("x[1h30m % 1h]", "x[1800000ms]"),
        ("m offset -step()*2", "m offset -5000ms*2"),  # offset binds to the atom only
        ("m offset max_of(3s, min_of(step(), 1s))+8", "m offset 3000ms+8"),
        ("m offset (-2 ^ 2)", "m offset -4000ms"),  # unary minus binds looser than ^
        ("m offset range()", "m offset 0"),
        ('m{a="[x]"}[5m]', 'm{a="[x]"}[300000ms]'),
    ],
)
def test_duration_rewrite(q, want):
    from kms.metrics.promql.durations import rewrite_durations

    assert rewrite_durations(q, 5000, 0) == want


def test_duration_expressions_end_to_end(engine):
    check(engine, 'rate(req_total{inst="a"}[2m+3m])', 30 * M, {"inst=a,job=api": 1})
    res = engine.range('count_over_time(req_total{inst="a"}[step()*2])', 10 * M, 12 * M, M).value
    assert res.series[0].v.tolist() == [2, 2, 2]


@pytest.mark.parametrize(
    "lo, hi, want",
    [
        (0, 0.1, 0.1),
        (0, 0.5, 0.5),
        (0.1, 1, 0.8),
        (0.3, 0.5, 0.2),
        (0.5, 0.1, 0.0),
        (-math.inf, math.inf, 1.0),
    ],
)
def test_histogram_fraction(engine, lo, hi, want):
    check(engine, f"histogram_fraction({lo}, {hi}, lat_bucket)", 0, {"": want})


def test_histogram_warnings(engine):
    res = engine.instant("histogram_quantile(1.5, lat_bucket)", 0)
    assert res.value.samples[0].value == math.inf
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:20)"]
    res = engine.instant("rate(gauge[5m])", 3 * M)
    assert res.infos and "might not be a counter" in res.infos[0] and res.infos[0].endswith("(1:6)")


def test_info_function():
    src = MemorySeriesSource()
    src.add({"__name__": "up", "job": "j", "instance": "i"}, 0, 1.0)
    src.add({"__name__": "target_info", "job": "j", "instance": "i", "region": "eu"}, 0, 1.0)
    src.add({"__name__": "build_info", "job": "j", "instance": "i", "version": "2"}, 0, 1.0)
    eng = Engine(src)
    check(eng, "info(up)", 0, {"__name__=up,instance=i,job=j,region=eu": 1})
    check(eng, 'info(up, {__name__="build_info"})', 0, {"__name__=up,instance=i,job=j,version=2": 1})
    check(eng, 'info(up, {missing=~".+"})', 0, {})


def test_window_index_matches_per_series_search():
    from kms.metrics.promql.engine import window_index

    rng = np.random.default_rng(1)
    ts = [np.sort(rng.choice(1000, size=k, replace=False)).astype(np.int64) for k in (0, 5, 17, 1)]
    sid = np.repeat(np.arange(len(ts)), [len(t) for t in ts])
    T = np.concatenate(ts)
    bounds = np.array([-5, 0, 3, 250, 999, 1200], dtype=np.int64)
    got = window_index(T, sid, len(ts), bounds)
    start = 0
    for i, t in enumerate(ts):
        assert (got[i] - start).tolist() == np.searchsorted(t, bounds, "right").tolist()
        start += len(t)


def test_label_hash_is_xxh64_of_the_serialised_labels():
    from kms.metrics.promql.labelhash import labels_hash

    assert labels_hash({}) == 0xEF46DB3751D8E999  # XXH64 of no bytes, the published test vector
    assert labels_hash({"b": "2", "a": "1"}) == labels_hash({"a": "1", "b": "2"})
    assert labels_hash({"a": "1"}) != labels_hash({"a": "2"})


def test_limit_ratio_complements(engine):
    lhs = vec(engine, "limit_ratio(0.3, req_total)", M)
    rhs = vec(engine, "limit_ratio(-0.7, req_total)", M)
    assert not (lhs.keys() & rhs.keys()) and len(lhs) + len(rhs) == 3
    assert len(vec(engine, "limit_ratio(1, req_total)", M)) == 3
    with pytest.raises(PromQLError, match="Ratio value is NaN"):
        engine.instant("limit_ratio(NaN, req_total)", M)


@pytest.mark.parametrize(
    "q, t, want",
    [
        ("increase(reset_total[2m] anchored)", 4 * M, {"": 15.0}),  # anchor 20 @2m, reset to 5, then 15
        ("increase(req_total{inst='a'}[1m] smoothed)", 90_000, {"inst=a,job=api": 60.0}),
        ("gauge smoothed", 30_000, {"__name__=gauge,inst=a": 3.0}),  # halfway between 5 and 1
    ],
)
def test_anchored_smoothed(engine, q, t, want):
    check(engine, q, t, want)


def test_anchored_rejects_other_functions(engine):
    with pytest.raises(PromQLError, match="anchored modifier can only be used with"):
        engine.instant("max_over_time(gauge[5m] anchored)", 3 * M)


def _naive(fn: str, w: np.ndarray) -> float:
    if fn == "sum":
        return math.fsum(w) if not np.isnan(w).any() else math.nan
    if fn == "avg":
        return float(np.mean(w))
    if fn in ("min", "max"):
        return math.nan if np.isnan(w).all() else float(np.nanmin(w) if fn == "min" else np.nanmax(w))
    if fn == "changes":
        a, b = w[1:], w[:-1]
        return float(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))
    if fn == "resets":
        return float(np.sum(w[1:] < w[:-1]))
    return float(len(w))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fn", ["sum", "avg", "min", "max", "changes", "resets", "count"])
def test_over_time_vectorised_matches_naive(fn, seed):
    """The vectorised window paths agree with a direct per-window computation."""
    rng = np.random.default_rng(seed)
    src = MemorySeriesSource()
    t = np.sort(rng.choice(600, size=80, replace=False)).astype(np.int64) * 1000
    v = rng.integers(0, 5, size=80).astype(float) * (0.5 if seed == 1 else 1.7)
    v[rng.random(80) < 0.1] = np.nan
    src.add_series({"__name__": "m"}, t, v)
    q = f"{fn}(m[47s])" if fn in ("changes", "resets") else f"{fn}_over_time(m[47s])"
    res = Engine(src).range(q, 0, 600_000, 7000).value
    got = dict(zip(res.series[0].t.tolist(), res.series[0].v.tolist(), strict=True)) if res.series else {}
    for step in range(0, 600_001, 7000):
        w = v[(t > step - 47_000) & (t <= step)]
        if len(w) == 0:
            assert step not in got
            continue
        want = _naive(fn, w)
        assert math.isclose(got[step], want, rel_tol=1e-9) or (math.isnan(want) and math.isnan(got[step])), (
            step,
            w,
        )
