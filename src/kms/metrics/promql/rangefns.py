"""Functions over range vectors: rate family (with Prometheus's extrapolation) and ``*_over_time``.

Each returns a list of ``VSeries``. The common ones are vectorised with prefix sums over the
per-step window bounds ``lo:hi``; the rarer ones loop over non-empty windows.
"""

from __future__ import annotations

import math

import numpy as np

from kms.metrics.promql.aggregate import quantile_of
from kms.metrics.promql.values import RangeVec, RSeries, VSeries

__all__ = ["extrapolated", "instant_delta", "over_time"]


def _ends(s: RSeries):
    cnt = s.hi - s.lo
    first = np.minimum(s.lo, max(len(s.t) - 1, 0))
    last = np.maximum(s.hi - 1, 0)
    return cnt, first, last


def extrapolated(rv: RangeVec, is_counter: bool, is_rate: bool) -> list[VSeries]:
    """rate/increase/delta with Prometheus's extrapolation, on all series × steps at once."""
    series = [s for s in rv.series if len(s.t) >= 2]
    if not series:
        return []
    lens = np.array([len(s.t) for s in series])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    T = np.concatenate([s.t for s in series])
    V = np.concatenate([s.v for s in series])
    LO = np.stack([s.lo for s in series]) + starts[:, None]
    HI = np.stack([s.hi for s in series]) + starts[:, None]
    cnt = HI - LO
    ok = cnt >= 2
    fi = np.where(ok, LO, 0)
    li = np.where(ok, HI - 1, 0)
    with np.errstate(all="ignore"):
        fv, lv = V[fi], V[li]
        result = lv - fv
        if is_counter:
            drops = np.zeros(len(V))
            drops[1:] = np.where(V[1:] < V[:-1], V[:-1], 0.0)
            drops[starts] = 0.0  # never across a series boundary
            pre = np.cumsum(drops)
            result = result + (pre[li] - pre[fi])
        ft, lt = T[fi], T[li]
        to_start = (ft - rv.wstart[None, :]) / 1000.0
        to_end = (rv.wend[None, :] - lt) / 1000.0
        sampled = (lt - ft) / 1000.0
        avg = sampled / np.maximum(cnt - 1, 1)
        thresh = avg * 1.1
        to_start = np.where(to_start >= thresh, avg / 2, to_start)
        if is_counter:
            to_zero = np.where((result > 0) & (fv >= 0), sampled * (fv / result), np.inf)
            to_start = np.minimum(to_start, to_zero)
        to_end = np.where(to_end >= thresh, avg / 2, to_end)
        factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor = factor / (rv.range_ms / 1000.0)
        result = np.where(ok, result * factor, 0.0)
    return [VSeries(s.labels, result[i], ok[i], True) for i, s in enumerate(series) if ok[i].any()]


def instant_delta(rv: RangeVec, is_rate: bool) -> list[VSeries]:
    out = []
    for s in rv.series:
        cnt, fi, li = _ends(s)
        ok = cnt >= 2
        if not ok.any():
            continue
        prev = np.maximum(li - 1, 0)
        with np.errstate(all="ignore"):
            lv, pv = s.v[li], s.v[prev]
            if is_rate:
                r = np.where(lv < pv, lv, lv - pv)
                dt = (s.t[li] - s.t[prev]) / 1000.0
                r = r / dt
            else:
                r = lv - pv
        out.append(VSeries(s.labels, np.where(ok, r, 0.0), ok, True))
    return out


def _windowed(rv: RangeVec, fn, min_count: int = 1, keep_name: bool = False) -> list[VSeries]:
    """Generic per-window loop: ``fn(t, v, step_index) -> float`` on each non-empty window."""
    out = []
    for s in rv.series:
        cnt = s.hi - s.lo
        ok = cnt >= min_count
        if not ok.any():
            continue
        r = np.zeros(len(cnt))
        with np.errstate(all="ignore"):
            for j in np.nonzero(ok)[0]:
                r[j] = fn(s.t[s.lo[j] : s.hi[j]], s.v[s.lo[j] : s.hi[j]], j)
        out.append(VSeries(s.labels, r, ok, not keep_name))
    return out


def _prefix(rv: RangeVec, kind: str) -> list[VSeries]:
    out = []
    for s in rv.series:
        cnt = s.hi - s.lo
        ok = cnt > 0
        if not ok.any():
            continue
        if kind == "count":
            r = cnt.astype(np.float64)
        elif kind == "last":
            r = s.v[np.maximum(s.hi - 1, 0)]
        elif kind == "first":
            r = s.v[np.minimum(s.lo, len(s.v) - 1)]
        elif kind == "present":
            r = np.ones(len(cnt))
        else:
            raise ValueError(kind)
        out.append(VSeries(s.labels, np.where(ok, r, 0.0), ok, kind not in ("last", "first")))
    return out


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


_EXACT_SCALE = 2.0**20  # values on a 2^-20 grid with |partial sums| < 2^32 add up exactly in float64


def _fast(rv: RangeVec, kind: str, slow) -> list[VSeries]:
    """Vectorised over steps, per series: prefix sums (sum/avg only when provably exact, else the
    Kahan loop ``slow``), a sparse table for min/max (NaN only if all NaN), indicator prefix sums
    for changes/resets."""
    out = []
    for s in rv.series:
        cnt = s.hi - s.lo
        ok = cnt > 0
        if not ok.any():
            continue
        v, lo, hi = s.v, s.lo, np.maximum(s.hi, s.lo + 1)
        if kind in ("sum", "avg"):
            scaled = v * _EXACT_SCALE
            if not (
                np.isfinite(scaled).all() and (scaled == np.round(scaled)).all() and np.abs(v).sum() < 2.0**32
            ):
                out += _windowed(RangeVec([s], rv.wstart, rv.wend, rv.range_ms, rv.ts), slow)
                continue
            pre = np.concatenate([[0.0], np.cumsum(v)])
            r = pre[np.minimum(hi, len(v))] - pre[lo]
            if kind == "avg":
                r = r / np.maximum(cnt, 1)
        elif kind in ("min", "max"):
            r = _range_extreme(v, lo, hi, np.fmin if kind == "min" else np.fmax)
        else:
            if kind == "changes":
                ind = _changed(v[1:], v[:-1])
            else:
                ind = v[1:] < v[:-1]
            pre = np.concatenate([[0], np.cumsum(ind)])  # pre[i] = indicators for pairs ending at <= i
            last = np.maximum(s.hi - 1, 0)
            r = (pre[last] - pre[np.minimum(lo, len(v) - 1)]).astype(np.float64)
        out.append(VSeries(s.labels, np.where(ok, r, 0.0), ok, True))
    return out


def _range_extreme(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, fn) -> np.ndarray:
    """``fn``-reduction of ``v[lo:hi]`` for every step, from a sparse table (O(n log n) build)."""
    n = len(v)
    levels = [v]
    width = 1
    while width * 2 <= n:
        prev = levels[-1]
        levels.append(fn(prev[: len(prev) - width], prev[width:]))
        width *= 2
    length = np.clip(hi - lo, 1, n)
    k = np.floor(np.log2(length)).astype(int)
    lo_c = np.clip(lo, 0, n - 1)
    r = np.empty(len(lo))
    for level in np.unique(k):
        sel = k == level
        table = levels[level]
        a = lo_c[sel]
        b = np.clip(hi[sel] - (1 << level), 0, len(table) - 1)
        r[sel] = fn(table[np.minimum(a, len(table) - 1)], table[b])
    return r


def _kahan_sum(v: np.ndarray) -> float:
    total = c = 0.0
    for x in v.tolist():
        total, c = kahan_inc(x, total, c)
    return total + c


def _avg(v: np.ndarray) -> float:
    """Prometheus's avg_over_time: Kahan sum, switching to an incremental mean on overflow."""
    total = c = mean = kc = 0.0
    incremental = False
    count = 0
    for x in v.tolist():
        count += 1
        if not incremental:
            nt, nc = kahan_inc(x, total, c)
            if count == 1 or not math.isinf(nt):
                total, c = nt, nc
                continue
            incremental = True
            mean = total / (count - 1)
            kc = c / (count - 1)
        q = (count - 1) / count
        mean, kc = kahan_inc(x / count, q * mean, q * kc)
    if incremental:
        return mean + kc
    return total / count + c / count


def _variance(v: np.ndarray) -> float:
    count = 0
    mean = cm = aux = ca = 0.0
    for x in v.tolist():
        count += 1
        delta = x - (mean + cm)
        mean, cm = kahan_inc(delta / count, mean, cm)
        aux, ca = kahan_inc(delta * (x - (mean + cm)), aux, ca)
    return (aux + ca) / count


def _linreg(t: np.ndarray, v: np.ndarray, intercept_t: float):
    if len(t) < 2:
        return math.nan, math.nan
    v = np.asarray(v, dtype=np.float64)
    if np.all(v == v[0]):
        return (math.nan, math.nan) if math.isinf(v[0]) else (0.0, float(v[0]))
    x = (t - intercept_t) / 1000.0
    n = len(x)
    with np.errstate(all="ignore"):
        sx, sy = _kahan_sum(x), _kahan_sum(v)
        sxy, sx2 = _kahan_sum(x * v), _kahan_sum(x * x)
        cov = sxy - sx * sy / n
        var = sx2 - sx * sx / n
        slope = cov / var if var != 0 else math.nan
        icpt = sy / n - slope * sx / n
    return float(slope), float(icpt)


def over_time(name: str, rv: RangeVec, args: list) -> list[VSeries]:
    """``args`` are the evaluated scalar arguments (arrays per step) that precede/follow the range."""
    if name in ("count_over_time", "last_over_time", "present_over_time", "first_over_time"):
        return _prefix(rv, name.split("_", 1)[0])
    if name == "sum_over_time":
        return _fast(rv, "sum", lambda t, v, j: _kahan_sum(v))
    if name == "avg_over_time":
        return _fast(rv, "avg", lambda t, v, j: _avg(v))
    if name == "min_over_time":
        return _fast(rv, "min", None)
    if name == "max_over_time":
        return _fast(rv, "max", None)
    if name == "stdvar_over_time":
        return _windowed(rv, lambda t, v, j: _variance(v))
    if name == "stddev_over_time":
        return _windowed(rv, lambda t, v, j: math.sqrt(_variance(v)))
    if name == "mad_over_time":
        return _windowed(
            rv,
            lambda t, v, j: (
                math.nan if np.isnan(v).any() else quantile_of(0.5, np.abs(v - quantile_of(0.5, v)))
            ),
        )
    if name == "quantile_over_time":
        q = args[0]
        return _windowed(rv, lambda t, v, j: quantile_of(float(q[j]), v))
    if name == "ts_of_last_over_time":
        return _windowed(rv, lambda t, v, j: t[-1] / 1000.0)
    if name == "ts_of_first_over_time":
        return _windowed(rv, lambda t, v, j: t[0] / 1000.0)
    if name == "ts_of_max_over_time":
        return _windowed(rv, lambda t, v, j: _ts_of(t, v, np.nanmax))
    if name == "ts_of_min_over_time":
        return _windowed(rv, lambda t, v, j: _ts_of(t, v, np.nanmin))
    if name == "changes":
        return _fast(rv, "changes", None)
    if name == "resets":
        return _fast(rv, "resets", None)
    if name == "deriv":
        return _windowed(rv, lambda t, v, j: _linreg(t, v, t[0])[0], min_count=2)
    if name == "predict_linear":
        dur = args[0]

        def pl(t, v, j):
            slope, icpt = _linreg(t, v, rv.ts[j])
            return icpt + slope * float(dur[j])

        return _windowed(rv, pl, min_count=2)
    if name == "double_exponential_smoothing":
        sf, tf = args
        return _windowed(rv, lambda t, v, j: _holt(v, float(sf[j]), float(tf[j])), min_count=2)
    raise KeyError(name)


def _changed(a, b):
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def _ts_of(t, v, fn):
    if np.isnan(v).all():
        return t[-1] / 1000.0
    target = fn(v)
    idx = np.nonzero(v == target)[0]
    return t[idx[-1]] / 1000.0


def _holt(v, sf, tf):
    if not (0 < sf < 1) or not (0 < tf < 1):
        return math.nan
    s0, s1 = 0.0, v[0]
    b = v[1] - v[0]
    for i in range(1, len(v)):
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        s0, s1 = s1, sf * v[i] + (1 - sf) * (s1 + b)
    return float(s1)
