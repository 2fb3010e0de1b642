"""Log (non-metric) queries: the entries of a selector with its pipeline, Loki's limit and
direction semantics.

``limit`` counts entries over all streams; the answer is in the query's direction (backward:
newest first). With ``interval_ns`` > 0, each result stream (its full label set) keeps only
entries at least ``interval_ns`` apart, counted from the first one kept in query direction.
"""

from __future__ import annotations

from ..source import Direction, LogEntry, LogSource, QueryStats, StreamsResult
from .ast import LogSelector
from .scan import batch_rows, scan_batches, scan_rows, split_stages

__all__ = ["eval_log_query"]


def eval_log_query(
    source: LogSource,
    sel: LogSelector,
    start_ns: int,
    end_ns: int,
    *,
    direction: Direction,
    limit: int,
    interval_ns: int,
    stats: QueryStats,
) -> StreamsResult:
    out: list[LogEntry] = []
    last: dict[tuple, int] = {}
    if limit <= 0:
        return StreamsResult(out)
    _, rest = split_stages(sel)
    if not rest and interval_ns <= 0:
        # only line filters: rows are made for the entries returned, not for whole batches
        for b in scan_batches(source, sel, start_ns, end_ns, direction, stats):
            need = limit - len(out)
            for r in batch_rows(b, need):
                out.append(LogEntry(r.time_ns, r.line, dict(r.stream), dict(r.metadata), {}))
            if len(out) >= limit:
                break
        stats.entries_returned = len(out)
        return StreamsResult(out)
    for rows in scan_rows(source, sel, start_ns, end_ns, direction, stats):
        for r in rows:
            if interval_ns > 0:
                key = (tuple(r.stream.items()), tuple(r.metadata.items()), tuple(sorted(r.parsed.items())))
                prev = last.get(key)
                if prev is not None and abs(r.time_ns - prev) < interval_ns:
                    continue
                last[key] = r.time_ns
            out.append(LogEntry(r.time_ns, r.line, dict(r.stream), dict(r.metadata), dict(r.parsed)))
            if len(out) >= limit:
                stats.entries_returned = len(out)
                return StreamsResult(out)
    stats.entries_returned = len(out)
    return StreamsResult(out)
