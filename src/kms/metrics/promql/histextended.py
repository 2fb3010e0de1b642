"""Native histograms under the ``anchored`` and ``smoothed`` selector modifiers: rates from
interpolated window ends with counter-reset corrections, anchored ``changes``/``resets``, and
smoothed instant selectors."""

from __future__ import annotations

import numpy as np

from kms.metrics.promql.histrange import changes_or_resets, merged, metric_of, mixed_schemas
from kms.metrics.promql.nativehist import FloatHistogram, IncompatibleSchema
from kms.metrics.promql.values import VSeries

__all__ = ["interpolate", "merge_extended", "smooth_histograms"]


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
        return mixed_schemas(ev, node, metric)
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
        return mixed_schemas(ev, node, metric)
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
                pts = merged(
                    s.t[s.lo[j] : s.hi[j]],
                    s.v[s.lo[j] : s.hi[j]],
                    s.ht[s.hlo[j] : s.hhi[j]],
                    s.hv[s.hlo[j] : s.hhi[j]],
                )
                # from the last sample at or before the window start (the anchor) on
                after = [k for k, p in enumerate(pts) if p[0] > rv.wstart[j]]
                r.ok[j] = bool(after)
                if after:
                    r.v[j] = changes_or_resets(pts[max(0, after[0] - 1) :], name == "resets")
                continue
            if s.hi[j] > s.lo[j]:
                ev.warn(f'encountered a mix of histograms and floats for metric name "{metric_of(s)}"', node)
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
                metric_of(s),
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
