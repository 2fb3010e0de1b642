"""PromQL over native histograms: the histogram_* functions (quantile and fraction estimation
included) and the sum/avg aggregation. Range functions are in ``histrange``, anchored and
smoothed selectors in ``histextended``, the trim operators in ``histtrim``.

Histogram samples are few next to floats, so these run per sample in Python over
``nativehist.FloatHistogram`` objects; the float paths stay vectorised.
"""

from __future__ import annotations

import math

import numpy as np

from kms.metrics.promql.nativehist import FloatHistogram, IncompatibleSchema, sum_histograms
from kms.metrics.promql.values import VSeries

__all__ = [
    "SIMPLE",
    "quantile",
    "fraction",
    "fraction_below",
    "variance",
    "native_series",
    "per_step",
    "sum_or_avg",
]


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


def fraction_below(v: float, lower: float, upper: float, linear: bool) -> float:
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
            return rank + c * fraction_below(v, b_lo, b_up, linear)

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
