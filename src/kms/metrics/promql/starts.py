"""Start (created) timestamps in the rate family, ``resets`` and ``start_timestamp()``.

A sample may carry the time its counter started (OTLP's ``start_time_unix_nano``, remote write
2.0's start timestamp). Prometheus uses it to see resets a drop in value would miss (the start
moved past the previous sample) and, when a counter started inside a window, to count from zero
at that start instead of extrapolating. Only series whose samples carry start timestamps take
these per-window paths; the rest stay on the vectorised ones in ``rangefns``.
"""

from __future__ import annotations

import numpy as np

from kms.metrics.promql.values import RangeVec, VSeries

__all__ = ["is_reset", "overlaps", "apply_starts"]


def is_reset(prev_st: int, prev_t: int, st: int, t: int) -> bool:
    """Whether a sample's start timestamp says its counter restarted after the previous sample."""
    if st == 0 or st >= t:  # unknown, invalid, or OTel's "unknown start" (st == t)
        return False
    if st < prev_t:
        return False
    if st > prev_t:
        return True
    # st == prev_t: a delta point, unless the previous start was unknown (cumulative, unknown start)
    if prev_st > prev_t:
        return False
    return prev_st != 0 and prev_st != prev_t


def overlaps(prev_st: int, prev_t: int, st: int) -> bool:
    return st != 0 and st < prev_t and st != prev_st


def _rate(
    t, v, st, start: int, end: int, range_s: float, is_counter: bool, is_rate: bool, warn
) -> float | None:
    n = len(t)
    result = float(v[-1] - v[0])
    if is_counter:
        warned = False
        for i in range(1, n):
            if not warned and overlaps(int(st[i - 1]), int(t[i - 1]), int(st[i])):
                warn()
                warned = True
            if v[i] < v[i - 1] or is_reset(int(st[i - 1]), int(t[i - 1]), int(st[i]), int(t[i])):
                result += float(v[i - 1])
    to_start = (int(t[0]) - start) / 1000
    to_end = (end - int(t[-1])) / 1000
    sampled = (int(t[-1]) - int(t[0])) / 1000
    avg = sampled / (n - 1) if n > 1 else 0.0
    if is_counter and st[0] != 0 and start < int(st[0]) < int(t[0]):
        to_start = 0.0  # the counter was zero at its start, inside the window
        sampled = (int(t[-1]) - int(st[0])) / 1000
        result += float(v[0])
    elif n == 1:
        return None
    else:
        if to_start >= avg * 1.1:
            to_start = avg / 2
        if is_counter and result > 0 and v[0] >= 0:
            to_start = min(to_start, sampled * (float(v[0]) / result))
    if to_end >= avg * 1.1:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled if sampled else 1.0
    return result * factor / (range_s if is_rate else 1.0)


def _instant(t, v, st, is_rate: bool) -> float | None:
    if len(t) < 2:
        return None
    t0, t1 = int(t[-2]), int(t[-1])
    v0, v1 = float(v[-2]), float(v[-1])
    if t1 == t0:
        return None
    r = v1 - v0
    if is_rate and (v1 < v0 or is_reset(int(st[-2]), t0, int(st[-1]), t1)):
        r = v1
    return r / ((t1 - t0) / 1000) if is_rate else r


def _resets(t, v, st) -> float:
    n = 0
    for i in range(1, len(t)):
        n += bool(v[i] < v[i - 1] or is_reset(int(st[i - 1]), int(t[i - 1]), int(st[i]), int(t[i])))
    return float(n)


def apply_starts(ev, node, name: str, rv: RangeVec, floats: list[VSeries]) -> list[VSeries]:
    """Recompute ``name`` (rate, increase, delta, irate, idelta, resets) for the series of ``rv``
    whose float samples carry start timestamps."""
    if all(s.st is None for s in rv.series):
        return floats
    by_labels = {id(r.labels): r for r in floats}
    out = list(floats)
    n = len(rv.wend)
    metric_warned: set[str] = set()
    for s in rv.series:
        if s.st is None:
            continue
        r = by_labels.get(id(s.labels))
        if r is None:
            r = VSeries(s.labels, np.zeros(n), np.zeros(n, dtype=bool), True)
            out.append(r)
        v, ok = r.v.copy(), r.ok.copy()
        metric = s.labels.get("__name__", "")

        def warn(metric=metric) -> None:
            if metric not in metric_warned:
                metric_warned.add(metric)
                ev.warn(
                    f'sample has start time that overlaps with previous sample timestamp for metric "{metric}"',
                    node,
                )

        for j in range(n):
            lo, hi = int(s.lo[j]), int(s.hi[j])
            if hi <= lo:
                continue
            t, x, st = s.t[lo:hi], s.v[lo:hi], s.st[lo:hi]
            if name in ("rate", "increase", "delta"):
                res = _rate(t, x, st, int(rv.wstart[j]), int(rv.wend[j]), rv.range_ms / 1000, name != "delta",
                            name == "rate", warn)  # fmt: skip
            elif name in ("irate", "idelta"):
                res = _instant(t, x, st, name == "irate")
            else:
                res = _resets(t, x, st)
            ok[j] = res is not None
            if res is not None:
                v[j] = res
        r.v, r.ok = v, ok
    return [r for r in out if r.ok.any() or r.h is not None]
