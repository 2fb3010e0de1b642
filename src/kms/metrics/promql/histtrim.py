"""The native-histogram trim operators: ``h </ x`` keeps the observations below ``x``, ``h >/ x``
those above, partly cut buckets interpolated (linearly in custom and zero buckets,
exponentially in exponential ones) and count and sum re-estimated from bucket midpoints."""

from __future__ import annotations

import math

from kms.metrics.promql.histfns import fraction_below
from kms.metrics.promql.nativehist import FloatHistogram

__all__ = ["trim"]


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
        under = c * fraction_below(rhs, lo, up, linear)
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
