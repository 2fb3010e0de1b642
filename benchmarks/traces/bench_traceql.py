"""TraceQL search latency over an in-memory span table (no server, no storage).

Builds 1M spans (100k traces x 10 spans, ~8 span attributes, 20 services) with the same
generator as bench_traces.py, ingests them with ``decode_spans`` and concatenates the
tables as a search over many blocks sees them. Each query is run once on a fresh table
("cold": per-table caches empty, as for every search the server runs over a freshly
concatenated table) and then ``--repeat`` times ("warm"); prints milliseconds and spans/s.
Metrics queries run over the whole table's time range in 60 steps.

Usage: python benchmarks/traces/bench_traceql.py [--traces 100000] [--repeat 5]
No peer runs here (Debian has no Tempo package), so no ratio is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
import spangen  # noqa: E402

from kms.traces import traceql  # noqa: E402
from kms.traces.ingest import decode_spans  # noqa: E402

QUERIES = [
    '{ resource.service.name = "svc-3" && duration > 100ms }',
    '{ resource.service.name = "svc-3" && duration > 40ms }',
    "{ status = error }",
    '{ name = "GET /api/v1/cart/{id}" && kind = server }',
    '{ span.http.status_code = 500 && kind = server }',
    '{ span.http.status_code >= 500 }',
    '{ span.http.target = "/api/v1/item/4242" }',
    '{ .http.method =~ "DEL.*" }',
    '{ kind = server } >> { span.http.method = "DELETE" }',
    '{ kind = server } && { status = error }',
    "{ } | count() > 9",
    '{ status = error } | by(resource.service.name) | count() > 1',
    '{ traceDuration > 40ms && rootServiceName = "svc-1" }',
    '{ span.http.status_code = 404 } | select(span.thread.name, span.http.route)',
]
METRICS = [  # over the whole table, 60 steps
    "{ } | rate() by (resource.service.name)",
    "{ kind = server } | quantile_over_time(duration, .5, .9, .99) by (resource.service.name)",
    '{ status = error } | count_over_time() by (span.http.route) | topk(5)',
]


def build(n_traces: int) -> pa.Table:
    reqs = spangen.make_requests(n_traces, spans_per_trace=10)
    return pa.concat_tables([decode_spans(r).table for r in reqs]).unify_dictionaries()


def timed(query: traceql.Query, table: pa.Table) -> tuple[float, int]:
    t0 = time.perf_counter()
    if query.is_metrics:
        start = pc.min(table.column("time_ns")).as_py()
        end = pc.max(table.column("time_ns")).as_py()
        found = len(traceql.evaluate_metrics(query, table, start_ns=start, end_ns=end,
                                             step_ns=max((end - start) // 60, 1)).series)
    else:
        found = len(traceql.evaluate(query, table))
    return time.perf_counter() - t0, found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    table = build(args.traces)
    print(f"table: {table.num_rows:,} spans, {table.nbytes / 1e6:.0f} MB, "
          f"{table.column('attrs').num_chunks} chunks, built in {time.perf_counter() - t0:.1f}s")
    print(f"{'cold ms':>9} {'warm ms':>9} {'Mspans/s':>9} {'found':>6}  query (found: traces, or series)")
    for text in QUERIES + METRICS:
        query = traceql.parse(text)
        fresh = pa.Table.from_batches(table.to_batches())  # same data, empty per-table caches
        cold, _ = timed(query, fresh)
        warm = [timed(query, fresh) for _ in range(args.repeat)]
        med = statistics.median(w[0] for w in warm)
        print(f"{cold * 1e3:9.1f} {med * 1e3:9.1f} {table.num_rows / med / 1e6:9.1f} {warm[0][1]:6d}  {text}")


if __name__ == "__main__":
    main()
