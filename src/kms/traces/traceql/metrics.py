"""TraceQL metrics (``| rate()``, ``| quantile_over_time(...)``, ...) over a span table.

Follows Tempo's engine: a span counts in the interval holding its start time; range queries
align ``start`` down and ``end`` up to the step and use right-closed intervals
``(start + i*step, start + (i+1)*step]``, each sample stamped with its interval's end; an
instant query has the single interval ``[start, end]``. ``by()`` labels are named as written
(``resource.service.name``), missing values are dropped from the label set (all missing:
the first label with value "nil"), ungrouped series are ``{__name__=<function>}``.
``duration`` is in seconds; other attributes as numbers. Quantiles and histograms use
Tempo's power-of-two buckets (labels ``p`` and ``__bucket``). Second stages (topk/bottomk,
comparisons, scalar arithmetic) and arithmetic between queries are applied afterwards;
empty samples are NaN. ``compare()`` is not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .ast import (
    Attribute,
    Intrinsic,
    MetricsAggregate,
    MetricsCompare,
    MetricsFilter,
    MetricsLeaf,
    MetricsNode,
    MetricsScalarOp,
    Query,
    TopK,
)
from .context import SpanContext
from .errors import TraceQLError, TraceQLUnsupported
from .evaluate import group_rows, row_values, run_pipeline, value_keys
from .fields import column
from .statics import NIL, Op, T
from .values import StrPart, Vals

__all__ = ["MetricSeries", "MetricsResult", "evaluate_metrics", "DEFAULT_MAX_SERIES"]

DEFAULT_MAX_SERIES = 10_000
_DURATION = Attribute.of(Intrinsic.DURATION)
Labels = list[tuple[str, Any]]


@dataclass
class MetricSeries:
    labels: Labels
    values: np.ndarray  # float64 per interval; NaN where there is no sample


@dataclass
class MetricsResult:
    timestamps_ms: np.ndarray  # the end of each interval (unix ms)
    series: list[MetricSeries] = field(default_factory=list)


@dataclass
class _Intervals:
    start: int
    end: int
    step: int
    instant: bool

    @property
    def count(self) -> int:
        return 1 if self.instant else max((self.end - self.start) // self.step, 0)

    def index(self, ts: np.ndarray) -> np.ndarray:
        """Interval of each start time, -1 outside the range."""
        if self.instant:
            ok = (ts >= self.start) & (ts <= self.end) & (self.end != self.start)
            return np.where(ok, 0, -1)
        ok = (ts > self.start) & (ts <= self.end)
        off = ts - self.start
        i = off // self.step - (off % self.step == 0)
        return np.where(ok, i, -1)

    def timestamps_ms(self) -> np.ndarray:
        if self.instant:
            return np.array([self.end // 1_000_000], np.int64)
        return (self.start + (np.arange(self.count) + 1) * self.step) // 1_000_000


def evaluate_metrics(query: Query, spans: pa.Table, *, start_ns: int, end_ns: int, step_ns: int,
                     instant: bool = False, max_series: int = DEFAULT_MAX_SERIES) -> MetricsResult:
    """Evaluate a metrics query; ``step_ns`` is ignored for instant queries."""
    if query.metrics is None:
        raise TraceQLError("not a metrics query")
    if not instant and step_ns <= 0:
        raise TraceQLError("step must be positive")
    if end_ns < start_ns:
        raise TraceQLError("end must not be before start")
    iv = _Intervals(start_ns, end_ns, step_ns, True) if instant else _Intervals(
        start_ns - start_ns % step_ns, end_ns + (-end_ns) % step_ns, step_ns, False)
    ctx = SpanContext.for_table(spans) if spans.num_rows else None
    try:
        series = _node(ctx, query.metrics, iv, max_series)
    except RecursionError:
        raise TraceQLError("query is nested too deeply") from None
    return MetricsResult(iv.timestamps_ms(), series)


def _node(ctx: SpanContext | None, node: MetricsNode, iv: _Intervals, max_series: int) -> list[MetricSeries]:
    if isinstance(node, MetricsLeaf):
        series = _leaf(ctx, node, iv, max_series)
    else:
        series = _math(node.op, _node(ctx, node.lhs, iv, max_series), _node(ctx, node.rhs, iv, max_series))
    for st in node.stages:
        series = _stage(st, series)
    return series


# ------------------------------------------------------------------------------ first stage


def _leaf(ctx: SpanContext | None, leaf: MetricsLeaf, iv: _Intervals, max_series: int) -> list[MetricSeries]:
    agg = leaf.agg
    if isinstance(agg, MetricsCompare):
        raise TraceQLUnsupported("compare()")
    if ctx is None or iv.count == 0:
        return []
    rows = run_pipeline(ctx, leaf.pipeline).rows
    slot = iv.index(ctx.start[rows])
    keep = slot >= 0
    rows, slot = rows[keep], slot[keep]
    keys: list[np.ndarray] = []
    label_vals: list[tuple[str, Vals]] = []
    for attr in agg.by:
        v = row_values(column(ctx, attr, rows), len(rows))
        keys += value_keys(v)
        label_vals.append((str(attr), v))
    bucket = None
    if agg.op in ("quantile_over_time", "histogram_over_time"):
        bucket = _log2_buckets(ctx, agg.attr, rows)
        has = ~np.isnan(bucket)
        rows, slot, bucket = rows[has], slot[has], bucket[has]
        keys = [k[has] for k in keys]
        label_vals = [(k, v.take(np.flatnonzero(has))) for k, v in label_vals]
    if agg.op == "quantile_over_time":
        group, first = group_rows(keys) if keys else (np.zeros(len(rows), np.int64), np.zeros(min(len(rows), 1), np.int64))
        return _quantiles(agg, group, first, slot, bucket, label_vals, iv, max_series)
    if bucket is not None:
        keys.append(bucket.view(np.int64))
        label_vals.append(("__bucket", Vals.of(T.FLOAT, bucket)))
    if not len(rows):
        return []
    if keys:
        group, first = group_rows(keys)
    else:
        group, first = np.zeros(len(rows), np.int64), np.zeros(1, np.int64)
    n_groups = len(first)
    if n_groups > max_series:
        raise TraceQLError(f"the query would return {n_groups} series, over the limit of {max_series}")
    values = _aggregate(ctx, agg, rows, group * iv.count + slot, n_groups * iv.count, iv).reshape(n_groups, iv.count)
    return [MetricSeries(_labels(label_vals, int(first[g]), agg), values[g])
            for g in range(n_groups) if not np.isnan(values[g]).all()]  # e.g. a group without the attribute


def _labels(label_vals: list[tuple[str, Vals]], pos: int, agg: MetricsAggregate) -> Labels:
    if not label_vals:
        return [("__name__", agg.op)]
    labels = [(k, s.python()) for k, v in label_vals if (s := v.static_at(pos)) is not NIL]
    return labels or [(label_vals[0][0], "nil")]


def _numbers(ctx: SpanContext, attr: Attribute, rows: np.ndarray) -> np.ndarray:
    """The attribute as float per row (NaN when missing or not a number); duration in seconds."""
    if attr == _DURATION:
        return ctx.duration[rows] / 1e9
    v = row_values(column(ctx, attr, rows), len(rows))
    out = np.full(len(rows), np.nan)
    for t, p in v.parts.items():
        if t in (T.INT, T.FLOAT, T.DURATION) and not isinstance(p, StrPart):
            out[p[0]] = p[1][p[0]]
    return out


def _aggregate(ctx: SpanContext, agg: MetricsAggregate, rows: np.ndarray, cell: np.ndarray, size: int,
               iv: _Intervals) -> np.ndarray:
    op = agg.op
    if op in ("count_over_time", "rate", "histogram_over_time"):
        counts = np.bincount(cell, minlength=size).astype(np.float64)
        if op == "rate":
            seconds = (iv.end - iv.start) / 1e9 if iv.instant else iv.step / 1e9
            counts = counts / seconds
        counts[counts == 0] = np.nan
        return counts
    vals = _numbers(ctx, agg.attr, rows)
    ok = ~np.isnan(vals)
    cell, vals = cell[ok], vals[ok]
    n = np.bincount(cell, minlength=size)
    if op == "sum_over_time":
        out = np.bincount(cell, weights=vals, minlength=size).astype(np.float64)
    elif op == "avg_over_time":
        with np.errstate(all="ignore"):
            out = np.bincount(cell, weights=vals, minlength=size).astype(np.float64) / n
    else:
        out = np.full(size, np.inf if op == "min_over_time" else -np.inf)
        (np.minimum if op == "min_over_time" else np.maximum).at(out, cell, vals)
    out[n == 0] = np.nan
    return out


def _log2_buckets(ctx: SpanContext, attr: Attribute | None, rows: np.ndarray) -> np.ndarray:
    """Tempo's Log2Bucketize per row (NaN when dropped): the next power of two, durations in s."""
    if attr == _DURATION:
        raw, scale = ctx.duration[rows].astype(np.float64), 1e9
    else:
        v = row_values(column(ctx, attr, rows), len(rows))
        raw, scale = np.full(len(rows), np.nan), np.ones(len(rows))
        for t, p in v.parts.items():
            if t in (T.INT, T.DURATION) and not isinstance(p, StrPart):
                raw[p[0]] = p[1][p[0]]
                if t is T.DURATION:
                    scale[p[0]] = 1e9
    with np.errstate(invalid="ignore"):
        ok = raw >= 2
        b = np.where(ok, np.exp2(np.ceil(np.log2(np.where(ok, raw, 2)))), np.nan)
    return b / scale


def _quantiles(agg: MetricsAggregate, group: np.ndarray, first: np.ndarray, slot: np.ndarray, bucket: np.ndarray,
               label_vals: list[tuple[str, Vals]], iv: _Intervals, max_series: int) -> list[MetricSeries]:
    if not len(group):
        return []
    if len(first) * len(agg.quantiles) > max_series:
        raise TraceQLError(f"the query would return more than {max_series} series")
    values = np.full((len(first), len(agg.quantiles), iv.count), np.nan)
    buckets, bidx = np.unique(bucket, return_inverse=True)
    counts = np.zeros((len(first), iv.count, len(buckets)), np.int64)
    np.add.at(counts, (group, slot, bidx.reshape(-1)), 1)
    for g in range(len(first)):
        for i in range(iv.count):
            c = counts[g, i]
            if c.sum():
                for j, q in enumerate(agg.quantiles):
                    values[g, j, i] = _log2_quantile(q, buckets, c)
    out = []
    for g in range(len(first)):
        base = [(k, s.python()) for k, v in label_vals if (s := v.static_at(int(first[g]))) is not NIL]
        if not base and label_vals:
            base = [(label_vals[0][0], "nil")]
        out += [MetricSeries(base + [("p", q)], values[g, j]) for j, q in enumerate(agg.quantiles)]
    return out


def _log2_quantile(p: float, maxes: np.ndarray, counts: np.ndarray) -> float:
    """Tempo's Log2Quantile over buckets with upper bounds ``maxes`` (ascending)."""
    used = counts > 0
    maxes, counts = maxes[used], counts[used]
    total = int(counts.sum())
    want = max(int(math.ceil(p * total)), 1)
    seen, b = 0, 0
    for b, c in enumerate(counts.tolist()):
        if seen + c > want:
            break
        seen += c
        if seen == want:
            return float(maxes[b])
    frac = (want - seen) / counts[b]
    hi = math.log2(maxes[b])
    lo = math.log2(maxes[b - 1]) if b > 0 else hi - 1
    return float(2 ** (lo + (hi - lo) * frac))


# ------------------------------------------------------------------------------ second stage


def _stage(st: object, series: list[MetricSeries]) -> list[MetricSeries]:
    if isinstance(st, TopK):
        return _topk(series, st.limit, st.op == "topk")
    if isinstance(st, MetricsFilter):
        cmp = {Op.EQ: np.equal, Op.NEQ: np.not_equal, Op.GT: np.greater, Op.GTE: np.greater_equal,
               Op.LT: np.less, Op.LTE: np.less_equal}[st.op]
        out = []
        for s in series:
            with np.errstate(invalid="ignore"):
                v = np.where(cmp(s.values, st.value), s.values, np.nan)
            if not np.isnan(v).all():
                out.append(MetricSeries(s.labels, v))
        return out
    if isinstance(st, MetricsScalarOp):
        return [MetricSeries(s.labels, _arith(st.op, st.value, s.values) if st.scalar_on_left
                             else _arith(st.op, s.values, st.value)) for s in series]
    raise RuntimeError(f"BUG: unknown second stage {st!r}")


def _topk(series: list[MetricSeries], k: int, top: bool) -> list[MetricSeries]:
    """Per timestamp keep the k largest (smallest) series; series never kept are dropped."""
    if len(series) <= k:
        return series
    vals = np.vstack([s.values for s in series])
    ranked = np.where(np.isnan(vals), -np.inf if top else np.inf, vals)
    order = np.argsort(-ranked if top else ranked, axis=0, kind="stable")[:k]
    keep = np.zeros_like(vals, bool)
    np.put_along_axis(keep, order, True, axis=0)
    keep &= ~np.isnan(vals)
    return [MetricSeries(s.labels, np.where(keep[i], vals[i], np.nan)) for i, s in enumerate(series) if keep[i].any()]


def _arith(op: Op, a: Any, b: Any) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op is Op.ADD:
            return np.add(a, b)
        if op is Op.SUB:
            return np.subtract(a, b)
        if op is Op.MULT:
            return np.multiply(a, b)
        out = np.divide(a, b)
        return np.where(np.asarray(b) == 0, np.nan, out)


def _key(labels: Labels) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in labels if k != "__name__"))


def _math(op: Op, lhs: list[MetricSeries], rhs: list[MetricSeries]) -> list[MetricSeries]:
    """Series with equal labels combined; a side with one unlabelled series applies to all."""
    lmap, rmap = {_key(s.labels): s for s in lhs}, {_key(s.labels): s for s in rhs}
    target = rhs if () not in rmap else lhs
    out = []
    for s in target:
        k = _key(s.labels)
        lo = lmap.get(k) or (lmap.get(()) if len(lmap) == 1 else None)
        ro = rmap.get(k) or (rmap.get(()) if len(rmap) == 1 else None)
        if lo is None or ro is None:
            continue
        labels = list(lo.labels)
        names = {kk for kk, _ in labels}
        labels += [kv for kv in ro.labels if kv[0] != "__name__" and kv[0] not in names]
        out.append(MetricSeries(labels, _arith(op, lo.values, ro.values)))
    return out
