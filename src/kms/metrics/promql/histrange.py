"""Range-vector functions over native histograms: the rate family with counter resets (also
those start timestamps reveal), ``*_over_time``, ``changes``/``resets``; and the rules for windows
that mix floats and histograms. ``merge_range`` folds the results into the float results."""

from __future__ import annotations

import math

import numpy as np

from kms.metrics.promql import starts
from kms.metrics.promql.nativehist import FloatHistogram, IncompatibleSchema, sum_histograms
from kms.metrics.promql.values import VSeries

__all__ = ["HIST_RANGE", "merge_range", "merged", "changes_or_resets", "mixed_schemas", "metric_of"]


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


def metric_of(s) -> str:
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
        return mixed_schemas(ev, node, metric)
    min_schema = min(last.schema, prev.schema)
    for cur in hs[1:-1]:
        if not is_counter:
            continue
        if cur.hint == "gauge":
            ev.warn(f'this native histogram metric is not a counter: "{metric}"', node)
        min_schema = min(min_schema, cur.schema)
        if cur.custom != last.custom:
            return mixed_schemas(ev, node, metric)
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
        return mixed_schemas(ev, node, metric)
    h.hint = "gauge"
    return h.compact()


def mixed_schemas(ev, node, metric: str) -> None:
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


def merged(ft, fv, ht, hv):
    """Floats and histograms of one window in time order as (t, float or histogram)."""
    pts = [(int(t), float(v)) for t, v in zip(ft, fv, strict=True)]
    pts += [(int(t), h) for t, h in zip(ht, hv, strict=True)]
    pts.sort(key=lambda p: p[0])
    return pts


def _st_reset(st: dict[int, int] | None, t0: int, t1: int) -> bool:
    return st is not None and starts.is_reset(st.get(t0, 0), t0, st.get(t1, 0), t1)


def changes_or_resets(pts, resets: bool, st: dict[int, int] | None = None) -> float:
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
    metric = metric_of(s)
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
        return changes_or_resets(pts, name == "resets", st)
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
                return mixed_schemas(ev, node, metric)
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
            return mixed_schemas(ev, node, metric)
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
                    f'ignored histograms in a range containing both floats and histograms for metric name "{metric_of(s)}"',
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
            pts = merged(s.t[s.lo[j] : s.hi[j]], s.v[s.lo[j] : s.hi[j]], hts, hs)
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
