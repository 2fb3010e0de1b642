"""TraceQL metrics: ``/api/metrics/query_range`` and ``/api/metrics/query`` (Tempo's shapes)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime

from kms.config import parse_duration
from kms.errors import BadInput
from kms.traces import traceql
from kms.traces.query import spans_in_range
from kms.traces.search import anyvalue_json, columns_for

__all__ = ["metrics_query", "parse_time_ns", "default_step_ns"]


def parse_time_ns(v: str, name: str) -> int:
    """Unix seconds (float), unix nanoseconds, or RFC3339, as Tempo accepts them."""
    try:
        f = float(v)
    except ValueError:
        try:
            return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1e9)
        except ValueError as e:
            raise BadInput(f"invalid {name} {v!r}: want unix seconds, unix nanoseconds or RFC3339") from e
    return int(f) if f > 1e15 else int(f * 1e9)


def default_step_ns(start_ns: int, end_ns: int) -> int:
    """About 100 points per range, at least one second (Grafana usually sends a step)."""
    return max(10**9, (end_ns - start_ns) // 100)


def metrics_query(store, tenants: list[str], q: Mapping[str, str], instant: bool) -> dict:
    text = q.get("q")
    if not text:
        raise BadInput("missing q: a TraceQL metrics query, e.g. { } | rate()")
    query = traceql.parse(text)
    if not query.is_metrics:
        raise traceql.TraceQLError("not a metrics query: add a metrics function, e.g. | rate()")
    now = time.time_ns()
    end = parse_time_ns(q["end"], "end") if q.get("end") else now
    since = parse_duration(q.get("since") or "1h")
    start = parse_time_ns(q["start"], "start") if q.get("start") else end - int(since * 1e9)
    if end < start:
        raise BadInput("end must not be before start")
    step = int(parse_duration(q["step"]) * 1e9) if q.get("step") else default_step_ns(start, end)
    if step <= 0:
        raise BadInput("step must be positive")
    spans = spans_in_range(store, tenants, start, end, columns_for(query))
    res = traceql.evaluate_metrics(query, spans, start_ns=start, end_ns=end, step_ns=step, instant=instant)
    series = []
    for s in res.series:
        labels = [{"key": k, "value": anyvalue_json(v)} for k, v in s.labels]
        if instant:
            v = float(s.values[-1]) if len(s.values) else math.nan
            if not math.isnan(v):
                series.append({"labels": labels, "value": v})
            continue
        samples = [{"timestampMs": str(int(t)), "value": float(v)}
                   for t, v in zip(res.timestamps_ms, s.values, strict=True) if not math.isnan(v)]
        series.append({"labels": labels, "samples": samples})
    return {"series": series, "metrics": {"inspectedSpans": str(spans.num_rows)}}
