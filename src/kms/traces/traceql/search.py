"""TraceQL search: run a query over a span table and shape Tempo's per-trace results.

Traces are returned most recent first (by their first span's start), at most ``limit``;
each keeps every spanset the pipeline yielded for it with at most ``spss`` spans (in row
order) and the number that matched. Spans carry, as Tempo's search does, the attributes
the query looked at and those it ``select()``-ed (intrinsics name, duration and the
trace-level ones excluded), keyed by attribute name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .ast import (
    Aggregate,
    Attribute,
    BinaryOp,
    GroupOperation,
    Intrinsic,
    Pipeline,
    Query,
    ScalarFilter,
    ScalarOperation,
    Scope,
    SelectOperation,
    SpansetFilter,
    SpansetOperation,
    UnaryOp,
)
from .context import SpanContext
from .errors import TraceQLError, TraceQLUnsupported
from .evaluate import run_pipeline
from .fields import column
from .statics import FALSE, NIL

__all__ = ["TraceMatch", "SpanSetMatch", "evaluate", "matching_rows"]

_NOT_SHOWN = {Intrinsic.NAME, Intrinsic.DURATION, Intrinsic.TRACE_DURATION, Intrinsic.TRACE_ROOT_SERVICE,
              Intrinsic.TRACE_ROOT_SPAN, Intrinsic.TRACE_ID, Intrinsic.SPAN_ID, Intrinsic.EVENT_NAME,
              Intrinsic.EVENT_TIME_SINCE_START, Intrinsic.LINK_SPAN_ID, Intrinsic.LINK_TRACE_ID, Intrinsic.PARENT}


@dataclass
class SpanSetMatch:
    """One spanset: ``rows`` index the span table (at most spss of the ``matched`` spans)."""

    matched: int
    rows: list[int]
    attributes: list[tuple[str, Any]] = field(default_factory=list)
    selected: list[list[tuple[str, Any]]] = field(default_factory=list)


@dataclass
class TraceMatch:
    trace_id: bytes
    root_service_name: str | None
    root_name: str | None
    start_ns: int
    duration_ns: int
    service_stats: dict[str, tuple[int, int]]
    spansets: list[SpanSetMatch]


def _shown_attributes(p: object, out: list[Attribute]) -> None:
    """Attributes a query reads, in query order (what Tempo fetches and returns per span)."""
    if isinstance(p, Attribute):
        if p not in out and p.intrinsic not in _NOT_SHOWN and not p.parent and p.scope not in (Scope.EVENT, Scope.LINK):
            out.append(p)
    elif isinstance(p, Pipeline):
        for e in p.elements:
            _shown_attributes(e, out)
    elif isinstance(p, SpansetFilter):
        _shown_attributes(p.expr, out)
    elif isinstance(p, SpansetOperation | BinaryOp | ScalarFilter | ScalarOperation):
        _shown_attributes(p.lhs, out)
        _shown_attributes(p.rhs, out)
    elif isinstance(p, UnaryOp | GroupOperation | Aggregate):
        _shown_attributes(p.expr, out)
    elif isinstance(p, SelectOperation):
        for a in p.attrs:
            _shown_attributes(a, out)


def _is_noop(p: Pipeline) -> bool:
    return any(isinstance(e, SpansetFilter) and e.expr == FALSE for e in p.elements)


def evaluate(query: Query, spans: pa.Table, *, spss: int = 3, limit: int = 20) -> list[TraceMatch]:
    """Run a search query (not a metrics query) over a span table."""
    if query.pipeline is None:
        raise TraceQLUnsupported("evaluating a metrics query as a search")
    if spans.num_rows == 0 or _is_noop(query.pipeline):
        return []
    ctx = SpanContext.for_table(spans)
    try:
        batch = run_pipeline(ctx, query.pipeline)
    except RecursionError:
        raise TraceQLError("query is nested too deeply") from None
    if not batch.size:
        return []
    spss = spss if spss > 0 else 3
    traces = np.unique(batch.trace)
    first, last, root = ctx.bounds_of(traces)
    chosen = traces[np.argsort(-first[traces], kind="stable")][: max(limit, 0) or len(traces)]
    shown: list[Attribute] = []
    _shown_attributes(query.pipeline, shown)
    stats = _service_stats(ctx, chosen)
    bounds = batch.bounds()
    by_trace: dict[int, list[int]] = {}
    for s in np.flatnonzero(np.isin(batch.trace, chosen)).tolist():
        by_trace.setdefault(int(batch.trace[s]), []).append(s)
    name_codes, names = ctx.name
    svc_codes, services = ctx.service
    out = []
    all_sets: list[SpanSetMatch] = []
    for t in chosen.tolist():
        spansets = []
        for s in by_trace[t]:
            rows = batch.rows[bounds[s]:bounds[s + 1]]
            spansets.append(SpanSetMatch(
                matched=len(rows),
                rows=rows[:spss].tolist(),
                attributes=[(k, v.static_at(s).python()) for k, v in batch.labels],
            ))
        all_sets += spansets
        r = int(root[t])
        out.append(TraceMatch(
            trace_id=ctx.trace_id(t),
            root_service_name=services[svc_codes[r]] if r >= 0 else None,
            root_name=names[int(name_codes[r])].as_py() if r >= 0 else None,
            start_ns=int(first[t]),
            duration_ns=int(last[t] - first[t]),
            service_stats=stats.get(t, {}),
            spansets=spansets,
        ))
    _add_selected(ctx, shown, all_sets)
    return out


def matching_rows(query: Query, spans: pa.Table) -> np.ndarray:
    """Every row in any spanset the query yields (ascending), e.g. to filter tag values."""
    if query.pipeline is None:
        raise TraceQLUnsupported("evaluating a metrics query as a search")
    if spans.num_rows == 0 or _is_noop(query.pipeline):
        return np.zeros(0, np.int64)
    return np.unique(run_pipeline(SpanContext.for_table(spans), query.pipeline).rows)


def _service_stats(ctx: SpanContext, traces: np.ndarray) -> dict[int, dict[str, tuple[int, int]]]:
    rows = ctx.rows_of(traces)
    codes, services = ctx.service
    spans = Counter(zip(ctx.tix[rows].tolist(), codes[rows].tolist(), strict=True))
    errors = Counter(zip(ctx.tix[rows].tolist(), codes[rows].tolist(), ctx.otlp_error[rows].tolist(), strict=True))
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for (t, c), n in spans.items():
        out.setdefault(t, {})[services[c]] = (n, errors.get((t, c, True), 0))
    return out


def _add_selected(ctx: SpanContext, shown: list[Attribute], spansets: list[SpanSetMatch]) -> None:
    rows = np.array([r for ss in spansets for r in ss.rows], np.int64)
    values: list[list[tuple[str, Any]]] = [[] for _ in rows]
    seen: set[str] = set()
    for a in shown:
        key = a.name
        if key in seen:
            continue
        seen.add(key)
        v = column(ctx, a, rows)
        for i in range(len(rows)):
            s = v.static_at(i)
            if s is not NIL:
                values[i].append((key, s.python()))
    i = 0
    for ss in spansets:
        ss.selected = values[i:i + len(ss.rows)]
        i += len(ss.rows)
