"""Range aggregations (``count_over_time``, ``rate``, unwrapped ``*_over_time``, ...) at every
step at once.

Each step ``t`` (already shifted by ``offset``) aggregates the samples of a series in the
window ``(t - range, t]``; window bounds come from ``np.searchsorted`` over the series' sorted
times, and count/sum/rate are differences of cumulative sums, so no Python runs per entry
there. Series are the full label sets of the entries after the pipeline (stream labels,
structured metadata and parsed labels), without the unwrapped label; ``by``/``without`` on
the range function regroups them before aggregating. Without per-row stages (only line
filters) entries never become Python objects: series are keyed by (stream, metadata) codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyarrow.compute as pc

from kms.metrics.promql.aggregate import quantile_of
from kms.metrics.promql.values import InstantVec, VSeries
from kms.metrics.storage.labels import parse_labels_text

from ..source import LogSource, QueryStats
from .ast import Grouping, RangeAggregation, Unwrap
from .errors import PipelineError
from .hints import hinted_batch, logfmt_hint
from .pipeline import ERROR, Row, compile_label_filter, compile_stages, merged
from .scan import batch_rows, scan_batches, split_stages
from .values import go_duration_seconds, go_float, humanize_bytes

__all__ = ["eval_range_agg"]

_SeriesKey = tuple[tuple[str, str], ...]


class _Collector:
    """Per series: label dict and chunks of (times, values)."""

    def __init__(self) -> None:
        self.series: dict[_SeriesKey, tuple[dict[str, str], list[np.ndarray], list[np.ndarray]]] = {}

    def add(self, labels: dict[str, str], t: np.ndarray, v: np.ndarray) -> None:
        key = tuple(sorted(labels.items()))
        entry = self.series.get(key)
        if entry is None:
            entry = self.series[key] = (labels, [], [])
        entry[1].append(t)
        entry[2].append(v)

    def arrays(self):
        for labels, ts, vs in self.series.values():
            t = np.concatenate(ts)
            v = np.concatenate(vs)
            if len(t) > 1 and np.any(t[1:] < t[:-1]):
                order = np.argsort(t, kind="stable")
                t, v = t[order], v[order]
            yield labels, t, v


def _pipeline_error(row: Row, labels: dict[str, str]) -> PipelineError:
    """Loki's error for a sample whose line failed a stage: its series, ``__error__`` and
    ``__error_details__`` (Go's message: what failed to convert, and why) included."""
    err = row.parsed.get(ERROR, "")
    shown = "{" + ", ".join(f'{k}="{_go_quoted(v)}"' for k, v in sorted(labels.items())) + "}"
    return PipelineError(
        f"pipeline error: '{err}' for series: '{shown}'.\n"
        f'Use a label filter to intentionally skip this error. (e.g | __error__!="{err}").\n'
        'To skip all potential errors you can match empty errors.(e.g __error__="")\n'
        'The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__="" )\n'
    )


def _go_quoted(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _converter(u: Unwrap) -> Callable[[str], float]:
    """The unwrapped value's conversion, as Loki's (Go's parsers; ``values``)."""
    if u.conv == "bytes":
        return humanize_bytes
    if u.conv in ("duration", "duration_seconds"):
        return go_duration_seconds
    return go_float


def _regroup(labels: dict[str, str], g: Grouping | None) -> dict[str, str]:
    if g is None:
        return labels
    if g.without:
        return {k: v for k, v in labels.items() if k not in g.labels}
    return {k: v for k, v in labels.items() if k in g.labels}


def _collect_fast(source: LogSource, e: RangeAggregation, start: int, end: int, stats: QueryStats,
                  group: Grouping | None) -> _Collector:
    """Selectors with line filters only: series keyed by (stream, metadata) without Python per entry."""
    col = _Collector()
    want_bytes = e.op in ("bytes_over_time", "bytes_rate")
    for b in scan_batches(source, e.range.selector, start, end, "forward", stats, lines=want_bytes):
        meta = pc.dictionary_encode(pc.fill_null(b.metadata, "{}"))
        meta_codes = meta.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        meta_texts = meta.dictionary.to_pylist()
        key = b.stream_codes.astype(np.int64) * len(meta_texts) + meta_codes
        vals = (
            pc.binary_length(b.line).to_numpy(zero_copy_only=False).astype(np.float64)
            if want_bytes
            else np.ones(len(key))
        )
        order = np.argsort(key, kind="stable")
        skey = key[order]
        cuts = np.flatnonzero(np.diff(skey)) + 1
        for idx in np.split(order, cuts):
            k = int(key[idx[0]])
            labels = merged(parse_labels_text(b.streams[k // len(meta_texts)]),
                            parse_labels_text(meta_texts[k % len(meta_texts)]))
            col.add(_regroup(labels, group), b.time_ns[idx], vals[idx])
    return col


def _collect_hinted(source: LogSource, e: RangeAggregation, start: int, end: int, stats: QueryStats,
                    hint: tuple[tuple[str, ...], bool]) -> _Collector:
    """Line filters plus ``| logfmt`` under ``sum by``: see ``hints``."""
    col = _Collector()
    want_bytes = e.op in ("bytes_over_time", "bytes_rate")
    for b in scan_batches(source, e.range.selector, start, end, "forward", stats, lines=want_bytes):
        key, series = hinted_batch(b, *hint)
        vals = (
            pc.binary_length(b.line).to_numpy(zero_copy_only=False).astype(np.float64)
            if want_bytes
            else np.ones(len(key))
        )
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.diff(key[order])) + 1
        for idx in np.split(order, cuts):
            col.add(series[int(key[idx[0]])], b.time_ns[idx], vals[idx])
    return col


def _collect_rows(source: LogSource, e: RangeAggregation, start: int, end: int, stats: QueryStats,
                  group: Grouping | None) -> _Collector:
    sel, u = e.range.selector, e.range.unwrap
    _, rest = split_stages(sel)
    run = compile_stages(rest)
    conv = _converter(u) if u is not None else None
    post = [compile_label_filter(f) for f in u.post_filters] if u is not None else []
    want_bytes = e.op in ("bytes_over_time", "bytes_rate")
    by = None
    if group is not None and not group.without:
        by = sorted(n for n in set(group.labels) if u is None or n != u.name)
    col = _Collector()
    for b in scan_batches(source, sel, start, end, "forward", stats):
        groups: dict[_SeriesKey, tuple[dict[str, str], list[int], list[float]]] = {}
        for r in run(batch_rows(b)):
            value = 1.0
            if conv is not None:
                text = r.get(u.name)  # type: ignore[union-attr]
                if not text:
                    continue  # as Loki: a line without the label gives no sample, and no error
                if not r.has_error():
                    try:
                        value = conv(text)
                    except ValueError as ex:
                        r.set_error("SampleExtractionErr", str(ex))
            elif want_bytes:
                value = float(len(r.line.encode()))
            if post and not all(f(r) for f in post):
                continue
            if ERROR in r.parsed:
                labels = r.all_labels()
                raise _pipeline_error(r, labels)
            if by is not None:  # only the grouping labels: no merged dict per row
                key = tuple((k, v) for k in by if (v := r.get(k)) is not None)  # (an empty value is a label)
            else:
                labels = r.all_labels()
                if u is not None:
                    labels.pop(u.name, None)
                key = tuple(sorted(_regroup(labels, group).items()))
            g = groups.get(key)
            if g is None:
                g = groups[key] = (dict(key), [], [])
            g[1].append(r.time_ns)
            g[2].append(value)
        for labels, ts, vs in groups.values():
            col.add(labels, np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64))
    return col


def _per_window(fn: Callable[[np.ndarray], float], v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    out = np.full(len(lo), np.nan)
    for j in np.flatnonzero(hi > lo):
        out[j] = fn(v[lo[j] : hi[j]])
    return out


def _rate_counter(t: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, ets: np.ndarray,
                  range_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Prometheus' extrapolated counter rate per window (resets add the value before them); a
    window of one sample is 0, as in Loki."""
    out = np.where(hi - lo == 1, 0.0, np.nan)
    ok = hi - lo == 1
    range_s = range_ns / 1e9
    for j in np.flatnonzero(hi - lo >= 2):
        tt, vv = t[lo[j] : hi[j]], v[lo[j] : hi[j]]
        drops = vv[1:] < vv[:-1]
        result = vv[-1] - vv[0] + float(vv[:-1][drops].sum())
        to_start = (tt[0] - (ets[j] - range_ns)) / 1e9
        to_end = (ets[j] - tt[-1]) / 1e9
        sampled = (tt[-1] - tt[0]) / 1e9
        if sampled <= 0:
            continue
        avg = sampled / (len(tt) - 1)
        thresh = avg * 1.1
        if to_start >= thresh:  # a far edge: half an interval (this cap first, then the zero point's)
            to_start = avg / 2
        if to_end >= thresh:
            to_end = avg / 2
        if result > 0 and vv[0] >= 0:
            to_start = min(to_start, sampled * (vv[0] / result))  # never back past the counter's zero
        interval = sampled + to_start + to_end
        out[j] = result * (interval / sampled) / range_s
        ok[j] = True
    return out, ok


def _aggregate(op: str, param: float | None, t: np.ndarray, v: np.ndarray, ets: np.ndarray, range_ns: int,
               unwrapped: bool) -> tuple[np.ndarray, np.ndarray]:
    lo = np.searchsorted(t, ets - range_ns, "right")
    hi = np.searchsorted(t, ets, "right")
    cnt = (hi - lo).astype(np.float64)
    ok = cnt > 0
    range_s = range_ns / 1e9
    with np.errstate(all="ignore"):
        if np.isfinite(v).all():
            csum = np.concatenate([[0.0], np.cumsum(v)])
            wsum = csum[hi] - csum[lo]
        else:  # (prefix sums would turn a window's +Inf - +Inf into NaN)
            wsum = np.where(hi > lo, _per_window(lambda w: float(np.sum(w)), v, lo, hi), 0.0)
        if op == "count_over_time":
            return cnt, ok
        if op == "rate":
            return (wsum if unwrapped else cnt) / range_s, ok
        if op in ("bytes_over_time", "sum_over_time"):
            return wsum, ok
        if op == "bytes_rate":
            return wsum / range_s, ok
        if op == "avg_over_time":
            return _per_window(lambda w: float(np.mean(w)), v, lo, hi), ok
        if op == "min_over_time":
            return _per_window(lambda w: float(np.nanmin(w)) if not np.isnan(w).all() else math.nan, v, lo, hi), ok
        if op == "max_over_time":
            return _per_window(lambda w: float(np.nanmax(w)) if not np.isnan(w).all() else math.nan, v, lo, hi), ok
        if op == "first_over_time":
            return np.where(ok, v[np.minimum(lo, len(v) - 1)], np.nan), ok
        if op == "last_over_time":
            return np.where(ok, v[np.maximum(hi - 1, 0)], np.nan), ok
        if op == "stdvar_over_time":
            return _per_window(lambda w: float(np.var(w)), v, lo, hi), ok
        if op == "stddev_over_time":
            return _per_window(lambda w: float(np.std(w)), v, lo, hi), ok
        if op == "quantile_over_time":
            q = float(param if param is not None else math.nan)
            return _per_window(lambda w: quantile_of(q, w), v, lo, hi), ok
        if op == "rate_counter":
            return _rate_counter(t, v, lo, hi, ets, range_ns)
    raise RuntimeError(f"BUG: unknown range aggregation {op}")


def _absent_labels(e: RangeAggregation) -> dict[str, str]:
    """Loki's labels of an absent_over_time result: the selector's equality matchers."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for m in e.range.selector.matchers:
        if m.op == "=":
            if m.name in seen:
                out.pop(m.name, None)
            else:
                out[m.name] = m.value
            seen.add(m.name)
    return out


#: Range aggregations whose per-series values add up: ``sum by (x)`` over them may merge the
#: samples of series with equal ``x`` before aggregating (like Loki's parser hints, this keeps
#: a high-cardinality parsed label from creating one series per value).
ADDITIVE = {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time"}


def eval_range_agg(source: LogSource, e: RangeAggregation, ts: np.ndarray, stats: QueryStats,
                   project: Grouping | None = None) -> InstantVec:
    """``e`` at every step time in ``ts`` (int64 ns). ``project`` (only for ADDITIVE ops under
    a ``sum``) regroups series early by the sum's grouping."""
    r = e.range
    ets = ts - r.offset_ns
    start, end = int(ets.min()) - r.range_ns + 1, int(ets.max()) + 1
    _, rest = split_stages(r.selector)
    fast = not rest and r.unwrap is None
    if project is not None and (e.op not in ADDITIVE or e.grouping is not None):
        raise RuntimeError(f"BUG: cannot project {e.op}")
    group = project or e.grouping
    hint = logfmt_hint(e, project) if project is not None else None
    if hint is not None:
        col = _collect_hinted(source, e, start, end, stats, hint)
    else:
        col = (_collect_fast if fast else _collect_rows)(source, e, start, end, stats, group)
    n = len(ts)
    if e.op == "absent_over_time":
        present = np.zeros(n, dtype=bool)
        for _, t, _v in col.arrays():
            lo = np.searchsorted(t, ets - r.range_ns, "right")
            hi = np.searchsorted(t, ets, "right")
            present |= hi > lo
        if present.all():
            return InstantVec([])
        return InstantVec([VSeries(_absent_labels(e), np.ones(n), ~present)])
    out = []
    for labels, t, v in col.arrays():
        vals, ok = _aggregate(e.op, e.param, t, v, ets, r.range_ns, r.unwrap is not None)
        if ok.any():
            out.append(VSeries(labels, np.asarray(vals, dtype=np.float64), ok))
    return InstantVec(out)
