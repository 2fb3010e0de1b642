"""PromQL over native histograms: the histogram_* functions, quantile and fraction estimation.

Histogram samples are few next to floats, so these run per sample in Python over
``nativehist.FloatHistogram`` objects; the float paths stay vectorised.
"""

from __future__ import annotations

import math

import numpy as np

from kms.metrics.promql import starts
from kms.metrics.promql.nativehist import FloatHistogram, IncompatibleSchema, sum_histograms
from kms.metrics.promql.values import VSeries

__all__ = ["SIMPLE", "quantile", "fraction", "variance", "native_series", "per_step", "sum_or_avg"]


def quantile(ev, q: float, h: FloatHistogram, metric: str, node) -> float:
    """histogram_quantile of one native histogram (exponential interpolation inside exponential
    buckets, linear in custom and zero buckets), with Prometheus's NaN-observation infos."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if h.count == 0 or math.isnan(q):
        return math.nan
    buckets = list(h.buckets())
    nan_sum = math.isnan(h.sum)
    forward = nan_sum or q < 0.5
    if not forward:
        buckets.reverse()
    rank = q * h.count if forward else (1 - q) * h.count
    count = 0.0
    k = -1
    lower = upper = bc = 0.0
    for k in range(len(buckets)):
        b = buckets[k]
        count += b.count
        lower, upper, bc = b.lower, b.upper, b.count
        if count >= rank:
            break
    if k < 0:  # no bucket at all: every observation is NaN (or the histogram is malformed)
        count = lower = upper = bc = 0.0
    if not h.custom and lower < 0 < upper:
        if not h.has_neg() and h.has_pos():
            lower = 0.0
        elif not h.has_pos() and h.has_neg():
            upper = 0.0
    elif h.custom:
        if lower == -math.inf:
            if upper <= 0:
                return upper
            lower = 0.0
        elif upper == math.inf:
            return lower
    count = min(count, h.count)
    if count < rank:
        if nan_sum:
            ev.info(
                f'input to histogram_quantile has NaN observations, result is NaN for metric name "{metric}"',
                node,
            )
            return math.nan
        return upper
    rank = rank - (count - bc) if forward else count - rank
    if nan_sum:
        total = count + sum(b.count for b in buckets[k + 1 :])
        if total < h.count:
            ev.info(
                f'input to histogram_quantile has NaN observations, result is skewed higher for metric name "{metric}"',
                node,
            )
    if bc == 0:
        return math.nan  # Go's 0/0
    frac = rank / bc
    if h.custom or (lower <= 0 <= upper):
        return lower + (upper - lower) * frac
    log_lo, log_up = math.log2(abs(lower)), math.log2(abs(upper))
    if lower > 0:
        return 2.0 ** (log_lo + (log_up - log_lo) * frac)
    return -(2.0 ** (log_up + (log_lo - log_up) * (1 - frac)))


def _fraction_below(v: float, lower: float, upper: float, linear: bool) -> float:
    if linear:
        return (v - lower) / (upper - lower)
    log_lo, log_up, log_v = math.log2(abs(lower)), math.log2(abs(upper)), math.log2(abs(v))
    if v > 0:
        return (log_v - log_lo) / (log_up - log_lo)
    return 1 - (log_v - log_up) / (log_lo - log_up)


def fraction(ev, lo: float, hi: float, h: FloatHistogram, metric: str, node) -> float:
    """histogram_fraction: the estimated share of observations in ``(lo, hi]``."""
    if h.count == 0 or math.isnan(lo) or math.isnan(hi):
        return math.nan
    if lo >= hi:
        return 0.0
    rank = 0.0
    lo_rank = hi_rank = 0.0
    lo_set = hi_set = False
    buckets = list(h.buckets())
    seen = 0.0
    k = -1
    for k in range(len(buckets)):
        b = buckets[k]
        seen += b.count
        b_lo, b_up = b.lower, b.upper
        zero = b_lo <= 0 <= b_up
        if zero:
            if not h.has_neg() and h.has_pos():
                b_lo = 0.0
            elif not h.has_pos() and h.has_neg():
                b_up = 0.0
        linear = h.custom or zero

        def at(v: float, b_lo=b_lo, b_up=b_up, c=b.count, linear=linear, rank=rank) -> float:
            if linear and b_lo == -math.inf:
                return c
            return rank + c * _fraction_below(v, b_lo, b_up, linear)

        if not lo_set and b_lo >= lo:
            lo_rank, lo_set = rank, True
        if not hi_set and b_lo >= hi:
            hi_rank, hi_set = rank, True
        if lo_set and hi_set:
            break
        if not lo_set and b_lo < lo < b_up:
            lo_rank, lo_set = at(lo), True
        if not hi_set and b_lo < hi < b_up:
            hi_rank, hi_set = at(hi), True
        if lo_set and hi_set:
            break
        rank += b.count
    if math.isnan(h.sum):
        total = seen + sum(b.count for b in buckets[k + 1 :])
        if total < h.count:
            ev.info(
                "input to histogram_fraction has NaN observations, which are excluded from all fractions"
                f' for metric name "{metric}"',
                node,
            )
        count = total
    else:
        count = h.count
    if not lo_set or lo_rank > count:
        lo_rank = count
    if not hi_set or hi_rank > count:
        hi_rank = count
    return (hi_rank - lo_rank) / h.count


def variance(h: FloatHistogram) -> float:
    """Estimated variance of the observations, each bucket's taken at its (geometric) middle."""
    if h.count == 0:
        return math.nan
    mean = h.sum / h.count
    total = comp = 0.0
    for b in h.buckets():
        if h.custom:
            val = (b.upper + b.lower) / 2.0
        elif b.lower <= 0 <= b.upper:
            val = 0.0
        else:
            val = math.sqrt(b.upper * b.lower)
            if b.upper < 0:
                val = -val
        x = b.count * (val - mean) ** 2
        t = total + x
        if math.isinf(t):
            comp = 0.0  # as Prometheus's kahansum: no compensation once the sum is infinite
        else:
            comp += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
        total = t
    return (total + comp) / h.count


SIMPLE = {
    "histogram_count": lambda h: h.count,
    "histogram_sum": lambda h: h.sum,
    "histogram_avg": lambda h: (
        h.sum / h.count if h.count else (math.nan if h.sum == 0 else math.copysign(math.inf, h.sum))
    ),
    "histogram_stdvar": variance,
    "histogram_stddev": lambda h: math.sqrt(variance(h)),
}


def per_step(s: VSeries, fn) -> VSeries | None:
    """A float series of ``fn(histogram)`` at the steps where ``s`` holds a histogram."""
    if s.h is None:
        return None
    n = len(s.h)
    v = np.zeros(n)
    ok = np.zeros(n, dtype=bool)
    for j, h in enumerate(s.h):
        if h is not None:
            v[j] = fn(j, h)
            ok[j] = True
    if not ok.any():
        return None
    return VSeries(s.labels, v, ok, True)


def native_series(vec) -> list[VSeries]:
    return [s for s in vec.series if s.h is not None]


def sum_or_avg(ev, e, op: str, group: list[VSeries], n: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Native-histogram ``sum``/``avg`` of a group per step. Returns (histograms or None, the
    steps that mix floats and histograms, which give no result)."""
    mixed = np.zeros(n, dtype=bool)
    if all(s.h is None for s in group):
        return None, mixed
    out = np.empty(n, dtype=object)
    out[:] = None
    floats = np.any([s.ok for s in group], axis=0)
    for j in range(n):
        hs = [s.h[j] for s in group if s.h is not None and s.h[j] is not None]
        if not hs:
            continue
        if floats[j]:
            mixed[j] = True
            ev.warn("encountered a mix of histograms and floats for aggregation", e.expr)
            continue
        hints = {h.hint for h in hs}
        try:
            acc, reconciled = sum_histograms(hs, mean=op == "avg")
            if reconciled:
                ev.info("mismatched custom buckets were reconciled during aggregation", e.expr)
        except IncompatibleSchema:
            name = next((s.labels.get("__name__", "") for s in group if s.h is not None), "")
            ev.warn(
                f'vector contains a mix of histograms with exponential and custom buckets schemas for metric name "{name}"',
                e.expr,
            )
            continue
        if "reset" in hints and "not_reset" in hints:
            ev.warn("conflicting counter resets during histogram aggregation", e.expr)
        out[j] = acc.compact()
    return out, mixed


# ---- range-vector functions ----

_FLOAT_ONLY_RANGE = {
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "mad_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",
}
_NAME_KEPT = {"last_over_time", "first_over_time"}


def _metric(s) -> str:
    return s.labels.get("__name__", "")


def _hist_rate(ev, node, hs: list, is_counter: bool, metric: str, ts=None, sts=None) -> FloatHistogram | None:
    """The increase (counter) or difference (gauge) over a window's histograms, before
    extrapolation; counter resets inside the window (also those only the start timestamps
    ``sts`` show) are corrected for."""

    def st_reset(i: int) -> bool:  # between sample i-1 and sample i
        return sts is not None and starts.is_reset(int(sts[i - 1]), int(ts[i - 1]), int(sts[i]), int(ts[i]))

    prev, last = hs[0], hs[-1]
    if is_counter and (prev.hint == "gauge" or last.hint == "gauge"):
        ev.warn(f'this native histogram metric is not a counter: "{metric}"', node)
    if is_counter and (st_reset(1) or hs[1].detect_reset(prev)):
        prev = FloatHistogram(schema=hs[1].schema, custom_values=hs[1].custom_values)
    if last.custom != prev.custom:
        return _mixed_schemas(ev, node, metric)
    min_schema = min(last.schema, prev.schema)
    for cur in hs[1:-1]:
        if not is_counter:
            continue
        if cur.hint == "gauge":
            ev.warn(f'this native histogram metric is not a counter: "{metric}"', node)
        min_schema = min(min_schema, cur.schema)
        if cur.custom != last.custom:
            return _mixed_schemas(ev, node, metric)
    h = last.to_schema(min_schema)
    try:
        _, reconciled = h.sub(prev)
        if reconciled:
            ev.info("mismatched custom buckets were reconciled during subtraction", node)
        if is_counter:
            warned = False
            for i, cur in enumerate(hs[1:], 1):
                if (
                    sts is not None
                    and not warned
                    and starts.overlaps(int(sts[i - 1]), int(ts[i - 1]), int(sts[i]))
                ):
                    ev.warn(
                        f'sample has start time that overlaps with previous sample timestamp for metric "{metric}"',
                        node,
                    )
                    warned = True
                if st_reset(i) or cur.detect_reset(prev):
                    _, reconciled = h.add(prev)
                    if reconciled:
                        ev.info("mismatched custom buckets were reconciled during addition", node)
                prev = cur
        elif hs[0].hint != "gauge" or hs[-1].hint != "gauge":
            ev.warn(f'this native histogram metric is not a gauge: "{metric}"', node)
    except IncompatibleSchema:
        return _mixed_schemas(ev, node, metric)
    h.hint = "gauge"
    return h.compact()


def _mixed_schemas(ev, node, metric: str) -> None:
    ev.warn(
        f'vector contains a mix of histograms with exponential and custom buckets schemas for metric name "{metric}"',
        node,
    )
    return None


def _extrapolate(h, ts, hs, w_start: int, w_end: int, range_ms: int, is_counter, is_rate, st0: int = 0):
    """Prometheus's extrapolation to the window's ends; ``st0``: the first sample's start
    timestamp when it lies inside the window (the counter counted from zero there). ``h`` may be
    None only then (a single sample)."""
    first_t, last_t = int(ts[0]), int(ts[-1])
    to_start = (first_t - w_start) / 1000.0
    to_end = (w_end - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / (len(ts) - 1) if len(ts) > 1 else 0.0
    if st0:
        to_start, sampled = 0.0, (last_t - st0) / 1000.0
        if h is None:
            h = hs[0].copy()
            h.hint = "gauge"
        else:
            h.add(hs[0])
    else:
        if to_start >= avg * 1.1:
            to_start = avg / 2
        if is_counter and h.count > 0 and hs[0].count >= 0:
            to_start = min(to_start, sampled * (hs[0].count / h.count))
    if to_end >= avg * 1.1:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled if sampled else 1.0
    if is_rate:
        factor /= range_ms / 1000.0
    return h.scale(factor)


def _merged(ft, fv, ht, hv):
    """Floats and histograms of one window in time order as (t, float or histogram)."""
    pts = [(int(t), float(v)) for t, v in zip(ft, fv, strict=True)]
    pts += [(int(t), h) for t, h in zip(ht, hv, strict=True)]
    pts.sort(key=lambda p: p[0])
    return pts


def _st_reset(st: dict[int, int] | None, t0: int, t1: int) -> bool:
    return st is not None and starts.is_reset(st.get(t0, 0), t0, st.get(t1, 0), t1)


def _changes_or_resets(pts, resets: bool, st: dict[int, int] | None = None) -> float:
    n = 0
    for (t0, a), (t1, b) in zip(pts, pts[1:], strict=False):
        ah, bh = isinstance(a, FloatHistogram), isinstance(b, FloatHistogram)
        if ah != bh:
            n += 1
        elif ah:
            if (
                (b.detect_reset(a) or _st_reset(st, t0, t1))
                if resets
                else not b.same_as(a, lambda x, y: x == y)
            ):
                n += 1
        elif resets:
            n += b < a or _st_reset(st, t0, t1)
        else:
            n += a != b and not (math.isnan(a) and math.isnan(b))
    return float(n)


def _hist_step(ev, node, name: str, s, j: int, rv, pts, hs, hts, st: dict[int, int] | None = None):
    """One step of a range function over a window holding histograms: a float, a histogram,
    None for no result. ``st``: the samples' start timestamps by time, if they have any."""
    metric = _metric(s)
    floats = [p for p in pts if not isinstance(p[1], FloatHistogram)]
    if name in ("count_over_time", "present_over_time"):
        return float(len(pts)) if name == "count_over_time" else 1.0
    if name == "last_over_time":
        return pts[-1][1]
    if name in ("ts_of_last_over_time", "ts_of_first_over_time"):
        return pts[-1 if name == "ts_of_last_over_time" else 0][0] / 1000.0
    if name == "first_over_time":
        return pts[0][1]
    if name in ("changes", "resets"):
        return _changes_or_resets(pts, name == "resets", st)
    if name in ("irate", "idelta"):
        if len(pts) < 2:
            return None
        (t0, a), (t1, b) = pts[-2], pts[-1]
        if not (isinstance(a, FloatHistogram) and isinstance(b, FloatHistogram)):
            if isinstance(a, FloatHistogram) or isinstance(b, FloatHistogram):
                ev.warn(f'encountered a mix of histograms and floats for metric name "{metric}"', node)
                return None
            return "float"
        is_rate = name == "irate"
        if is_rate and (a.hint == "gauge" or b.hint == "gauge"):
            ev.warn(f'this native histogram metric is not a counter: "{metric}"', node)
        if not is_rate and (a.hint != "gauge" or b.hint != "gauge"):
            ev.warn(f'this native histogram metric is not a gauge: "{metric}"', node)
        h = b.copy()
        if not is_rate or not (_st_reset(st, t0, t1) or b.detect_reset(a)):
            try:
                _, reconciled = h.sub(a)
            except IncompatibleSchema:
                return _mixed_schemas(ev, node, metric)
            if reconciled:
                ev.info("mismatched custom buckets were reconciled during subtraction", node)
        h.hint = "gauge"
        h.compact()
        return h.div((t1 - t0) / 1000.0) if is_rate else h
    if floats:
        ev.warn(f'encountered a mix of histograms and floats for metric name "{metric}"', node)
        return None
    if name in ("rate", "increase", "delta"):
        is_counter = name != "delta"
        sts = [st.get(int(x), 0) for x in hts] if st is not None else None
        st0 = sts[0] if is_counter and sts and int(rv.wstart[j]) < sts[0] < int(hts[0]) else 0
        h = None
        if len(hs) >= 2:
            h = _hist_rate(ev, node, list(hs), is_counter, metric, hts, sts)
            if h is None:
                return None
        elif not st0:
            return None
        return _extrapolate(
            h, hts, hs, int(rv.wstart[j]), int(rv.wend[j]), rv.range_ms, is_counter, name == "rate", st0
        )
    if name in ("sum_over_time", "avg_over_time"):
        try:
            acc, reconciled = sum_histograms(list(hs), mean=name == "avg_over_time")
        except IncompatibleSchema:
            return _mixed_schemas(ev, node, metric)
        hints = {h.hint for h in hs}
        if "reset" in hints and "not_reset" in hints:
            ev.warn("conflicting counter resets during histogram aggregation", node)
        if reconciled:
            ev.info("mismatched custom buckets were reconciled during aggregation", node)
        return acc.compact()
    return None


HIST_RANGE = {
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "sum_over_time",
    "avg_over_time",
    "count_over_time",
    "present_over_time",
    "last_over_time",
    "first_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "changes",
    "resets",
}


def merge_range(ev, node, name: str, rv, floats: list[VSeries]) -> list[VSeries]:
    """Fold the histogram samples of ``rv`` into a range function's float results: histogram
    results where the windows hold histograms, floats dropped where Prometheus drops them."""
    if all(s.ht is None for s in rv.series):
        return floats
    by_labels = {id(r.labels): r for r in floats}
    out = [r for r in floats]
    n = len(rv.wend)
    for s in rv.series:
        if s.ht is None:
            continue
        hcnt = s.hhi - s.hlo
        fcnt = s.hi - s.lo
        if name in _FLOAT_ONLY_RANGE or name not in HIST_RANGE:
            if name in _FLOAT_ONLY_RANGE and np.any((hcnt > 0) & (fcnt > 0)):
                ev.info(
                    f'ignored histograms in a range containing both floats and histograms for metric name "{_metric(s)}"',
                    node,
                )
            continue
        r = by_labels.get(id(s.labels))
        if r is None:
            r = VSeries(s.labels, np.zeros(n), np.zeros(n, dtype=bool), name not in _NAME_KEPT)
            out.append(r)
        h = np.empty(n, dtype=object)
        h[:] = None
        v, ok = r.v.copy(), r.ok.copy()
        st = None
        if s.st is not None or s.hst is not None:
            st = {}
            for t_arr, st_arr in ((s.t, s.st), (s.ht, s.hst)):
                if st_arr is not None:
                    st.update(zip(t_arr.tolist(), st_arr.tolist(), strict=True))
        for j in np.nonzero(hcnt > 0)[0]:
            hts = s.ht[s.hlo[j] : s.hhi[j]]
            hs = s.hv[s.hlo[j] : s.hhi[j]]
            pts = _merged(s.t[s.lo[j] : s.hi[j]], s.v[s.lo[j] : s.hi[j]], hts, hs)
            res = _hist_step(ev, node, name, s, j, rv, pts, hs, hts, st)
            if isinstance(res, str):  # the float result stands
                continue
            ok[j] = False
            if isinstance(res, FloatHistogram):
                h[j] = res
            elif res is not None:
                v[j], ok[j] = res, True
        r.v, r.ok = v, ok
        r.h = h if any(x is not None for x in h) else None
    return [r for r in out if r.ok.any() or r.h is not None]


# ---- the trim operators ``</`` (keep observations below) and ``>/`` (keep those above) ----


def _midpoint(lo: float, up: float, positive: bool, linear: bool) -> float:
    if math.isinf(lo):
        if math.isinf(up):
            return 0.0
        return up / 2 if up > 0 else up
    if math.isinf(up):
        return lo
    if linear:
        return (lo + up) / 2
    geo = math.sqrt(abs(lo * up))
    return geo if positive else -geo


def _infinite_bucket(upper_trim: bool, lo: float, up: float, c: float, rhs: float) -> tuple[float, float]:
    """Kept count and midpoint of a bucket with an infinite bound; its spread is unknown, so
    partial trims keep nothing of it unless the bucket can be read as starting at 0."""

    def finite(x: float) -> float:
        return 0.0 if math.isinf(x) else x

    if lo == -math.inf:
        if upper_trim:
            if rhs >= up:
                return c, 0.0
            if rhs > 0 and 0 < up < math.inf:
                return c * rhs / up, rhs / 2
            if up <= 0:
                return c, rhs
            return 0.0, finite(up)
        if rhs <= lo:
            return c, 0.0
        if rhs >= 0 and rhs < up < math.inf:
            return c * (1 - rhs / up), (rhs + up) / 2
        return 0.0, finite(up)
    if upper_trim:
        return 0.0, finite(lo)
    if rhs >= lo:
        return c, rhs
    return 0.0, finite(lo)


def _bucket_trim(upper_trim: bool, lo: float, up: float, c: float, rhs: float, positive: bool, linear: bool):
    if lo == -math.inf or up == math.inf:
        return _infinite_bucket(upper_trim, lo, up, c, rhs)
    if rhs <= lo:
        under = 0.0
    elif rhs >= up:
        under = c
    else:
        under = c * _fraction_below(rhs, lo, up, linear)
    if upper_trim:
        return under, _midpoint(lo, rhs, positive, linear)
    return c - under, _midpoint(rhs, up, positive, linear)


def _zero_trim(h: FloatHistogram, rhs: float, has_neg: bool, has_pos: bool, upper_trim: bool):
    lo, up = -h.zero_threshold, h.zero_threshold
    if has_neg and not has_pos:
        up = 0.0
    if has_pos and not has_neg:
        lo = 0.0
    c = h.zero_count
    if upper_trim:
        if rhs <= lo:
            return 0.0, 0.0
        if rhs >= up:
            return c, (lo + up) / 2
        return c * (rhs - lo) / (up - lo), (lo + rhs) / 2
    if rhs <= lo:
        return c, (lo + up) / 2
    if rhs >= up:
        return 0.0, 0.0
    return c * (up - rhs) / (up - lo), (rhs + up) / 2


def trim(h: FloatHistogram, rhs: float, upper_trim: bool) -> FloatHistogram:
    """``h </ rhs`` (upper_trim) or ``h >/ rhs``: observations on the other side of ``rhs``
    removed, partly cut buckets interpolated, count and sum re-estimated from bucket midpoints."""
    h = h.copy()
    linear = h.custom
    count = total = 0.0
    trimmed = False
    seen = {"pos": False, "neg": False}
    for attr, positive in (("pos", True), ("neg", False)):
        buckets = getattr(h, attr)
        for i in sorted(buckets):
            c = buckets[i]
            if c == 0:
                continue
            seen[attr] = True
            if positive:
                lo, up = h.lower(i), h.upper(i)
            else:
                lo, up = -h.upper(i), -h.lower(i)
            whole = up <= rhs if upper_trim else lo >= rhs
            partial = lo < rhs if upper_trim else up > rhs
            if whole:
                count += c
                total += _midpoint(lo, up, positive, linear) * c
            elif partial:
                keep, mid = _bucket_trim(upper_trim, lo, up, c, rhs, positive, linear)
                count += keep
                total += mid * keep
                if keep != c:
                    buckets[i] = keep
                    trimmed = True
            else:
                buckets[i] = 0.0
                trimmed = True
    if h.zero_count > 0:
        keep, mid = _zero_trim(h, rhs, seen["neg"], seen["pos"], upper_trim)
        if keep != h.zero_count:
            h.zero_count = keep
            trimmed = True
        total += mid * keep
        count += keep
    if trimmed:
        h.count, h.sum = count, total
        h.compact()
    return h


# ---- anchored and smoothed selectors ----


def interpolate(h1: FloatHistogram, t1: int, h2: FloatHistogram, t2: int, t: int, is_counter: bool):
    """The histogram at ``t`` on the straight line from (t1, h1) to (t2, h2); after a counter
    reset the line starts at zero. Returns (histogram, reconciled custom bounds)."""
    if t == t1:
        return h1.copy(), False
    if t == t2:
        return h2.copy(), False
    frac = (t - t1) / (t2 - t1)
    if is_counter and h2.detect_reset(h1):
        return h2.copy().scale(frac), False
    res = h2.copy()
    _, rec1 = res.sub(h1)
    res.scale(frac)
    _, rec2 = res.add(h1)
    return res, rec1 or rec2


def _extended_hist_rate(
    ev, node, name: str, ts, hs, start: int, end: int, smoothed: bool, range_ms: int, metric
):
    is_counter, is_rate = name != "delta", name == "rate"
    last = len(hs) - 1
    first = max(0, int(np.searchsorted(ts[:last], start, "right")) - 1)
    if smoothed:
        last = int(np.searchsorted(ts[:last], end, "left"))
    if ts[last] <= start or (smoothed and ts[first] > end):
        return None
    window = hs[first : last + 1]
    if any(h.custom != window[0].custom for h in window):
        return _mixed_schemas(ev, node, metric)
    if is_counter and any(h.hint == "gauge" for h in window):
        ev.warn(f'this native histogram metric is not a counter: "{metric}"', node)
    try:
        if smoothed and ts[first] < start:
            left, _ = interpolate(hs[first], ts[first], hs[first + 1], ts[first + 1], start, is_counter)
        else:
            left = hs[first].copy()
        if smoothed and last > 0 and ts[last] > end:
            right, _ = interpolate(hs[last - 1], ts[last - 1], hs[last], ts[last], end, is_counter)
        else:
            right = hs[last].copy()
        if not is_counter and (left.hint != "gauge" or right.hint != "gauge"):
            ev.warn(f'this native histogram metric is not a gauge: "{metric}"', node)
        res = right.copy()
        res.sub(left)
        if is_counter:
            k, prev = first + 1, left
            if smoothed and ts[first] < start and hs[first + 1].detect_reset(hs[first]):
                prev, k = hs[first + 1], first + 2
            # when the left end was interpolated across the only reset, it is already accounted for
            for h in list(hs[k:last]) + [right] if k <= last else []:
                if h.detect_reset(prev):
                    res.add(prev)
                prev = h
    except IncompatibleSchema:
        return _mixed_schemas(ev, node, metric)
    if is_rate:
        res.div(range_ms / 1000.0)
    res.hint = "gauge"
    return res.compact()


def merge_extended(ev, node, name: str, rv, floats: list[VSeries]) -> list[VSeries]:
    """rate/increase/delta over anchored or smoothed windows holding native histograms."""
    if all(s.ht is None for s in rv.series):
        return floats
    by_labels = {id(r.labels): r for r in floats}
    out = list(floats)
    n = len(rv.wend)
    for s in rv.series:
        if s.ht is None:
            continue
        r = by_labels.get(id(s.labels))
        if r is None:
            r = VSeries(s.labels, np.zeros(n), np.zeros(n, dtype=bool), True)
            out.append(r)
        h = np.empty(n, dtype=object)
        h[:] = None
        for j in np.nonzero(s.hhi > s.hlo)[0]:
            if name in ("changes", "resets"):
                pts = _merged(
                    s.t[s.lo[j] : s.hi[j]],
                    s.v[s.lo[j] : s.hi[j]],
                    s.ht[s.hlo[j] : s.hhi[j]],
                    s.hv[s.hlo[j] : s.hhi[j]],
                )
                # from the last sample at or before the window start (the anchor) on
                after = [k for k, p in enumerate(pts) if p[0] > rv.wstart[j]]
                r.ok[j] = bool(after)
                if after:
                    r.v[j] = _changes_or_resets(pts[max(0, after[0] - 1) :], name == "resets")
                continue
            if s.hi[j] > s.lo[j]:
                ev.warn(f'encountered a mix of histograms and floats for metric name "{_metric(s)}"', node)
                r.ok[j] = False
                continue
            ts, hs = s.ht[s.hlo[j] : s.hhi[j]], s.hv[s.hlo[j] : s.hhi[j]]
            h[j] = _extended_hist_rate(
                ev,
                node,
                name,
                ts,
                hs,
                int(rv.wstart[j]),
                int(rv.wend[j]),
                rv.mode == "smoothed",
                rv.range_ms,
                _metric(s),
            )
        r.h = h if any(x is not None for x in h) else None
    return [r for r in out if r.ok.any() or r.h is not None]


def smooth_histograms(ts: np.ndarray, hs: np.ndarray, eff: np.ndarray, lb: int) -> tuple[np.ndarray, bool]:
    """A smoothed instant selector over histograms: the exact sample, else interpolation between
    the neighbours within one lookback each side, else the previous sample. Also returns whether
    an exponential and a custom-bucket histogram met."""
    mixed_schema = False
    out = np.empty(len(eff), dtype=object)
    out[:] = None
    for j, d in enumerate(eff.tolist()):
        lo = int(np.searchsorted(ts, d - lb, "right"))
        hi = int(np.searchsorted(ts, d + lb, "right"))
        k = int(np.searchsorted(ts, d, "left"))
        if hi <= lo:
            continue
        if k < hi and k < len(ts) and ts[k] == d:
            out[j] = hs[k]
        elif lo < k < hi:
            prev, nxt = hs[k - 1], hs[k]
            if prev.custom != nxt.custom:
                mixed_schema = True
                continue
            is_counter = prev.hint != "gauge" or nxt.hint != "gauge"
            try:
                out[j] = interpolate(prev, int(ts[k - 1]), nxt, int(ts[k]), d, is_counter)[0]
            except IncompatibleSchema:
                mixed_schema = True
        elif k > lo:  # no next sample yet: the previous one, its hint no longer about a neighbour
            out[j] = hs[k - 1].copy()
            out[j].hint = "unknown"
    return out, mixed_schema
