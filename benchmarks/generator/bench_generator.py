"""Metrics-generator overhead on span ingest, and memory per active series.

1. Span ingest, durable and acknowledged, through the real write door (``Receiver.export``: decode,
   WAL append + fsync, head) of a ``Stack`` on a temporary directory, one thread, with the
   generator on and off, after an untimed tenth (steady state: the series exist), the spans it
   still buffers processed inside the timing; spans per CPU
   second and the cost of the generator in percent (target <= 25%). The collection (writing the
   series every 15 s) is timed on its own: its cost depends on the series, not the spans.
   Traces of 10 spans over 20 services: 7 of 10 spans take part in the service graph
   (client/server pairs across services, a database call, a call to an uninstrumented peer).
2. The generator alone (span metrics + service graphs of the same requests' span tables): spans
   per CPU second, in its batches and request by request.
3. Memory per active series: distinct span names make distinct label sets; bytes traced by
   ``tracemalloc`` / active series (a histogram series counts each bucket, _sum and _count, as
   Prometheus's active series do), and per label set (calls + size + latency histogram).

Usage: python benchmarks/generator/bench_generator.py [--spans 200000] [--series 20000]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from kms.config import load_config
from kms.generator import GeneratorSettings, TenantGenerator
from kms.server import Stack
from kms.traces.ingest import decode_spans

SERVICES = [f"svc-{i}" for i in range(20)]
ROUTES = [f"/api/v1/{n}" for n in ("cart", "user", "order", "item", "price", "stock", "search", "auth")]


def _attrs(span: trace_pb2.Span, rng: random.Random, **extra: str) -> None:
    a = span.attributes
    a.add(key="http.method").value.string_value = rng.choice(("GET", "GET", "POST", "PUT"))
    a.add(key="http.route").value.string_value = rng.choice(ROUTES)
    a.add(key="http.status_code").value.int_value = rng.choice((200, 200, 201, 404, 500))
    a.add(key="net.peer.port").value.int_value = 8080
    a.add(key="thread.name").value.string_value = f"worker-{rng.randrange(8)}"
    a.add(key="http.target").value.string_value = f"/api/v1/item/{rng.randrange(10**6)}"
    for k, v in extra.items():
        a.add(key=k).value.string_value = v


# (service offset, kind, parent index, extra attributes) of the 10 spans of a trace
SHAPE = [(0, 2, None, {}), (0, 3, 0, {}), (1, 2, 1, {}), (1, 1, 2, {}), (1, 3, 2, {"db.system": "postgresql"}),
         (1, 3, 2, {}), (2, 2, 5, {}), (2, 1, 6, {}), (2, 3, 6, {"peer.service": "payments-api"}), (0, 1, 0, {})]


def make_requests(n_traces: int, per_request: int = 100, seed: int = 1) -> list[bytes]:
    """ExportTraceServiceRequests of ``per_request`` whole traces, one ResourceSpans per service."""
    rng = random.Random(seed)
    t = 1_700_000_000_000_000_000
    out = []
    for first in range(0, n_traces, per_request):
        req = trace_service_pb2.ExportTraceServiceRequest()
        by_svc: dict[str, trace_pb2.ScopeSpans] = {}
        for _ in range(min(per_request, n_traces - first)):
            tid, base = os.urandom(16), rng.randrange(len(SERVICES))
            ids = [os.urandom(8) for _ in SHAPE]
            t += 1_000_000
            for j, (off, kind, parent, extra) in enumerate(SHAPE):
                svc = SERVICES[(base + off) % len(SERVICES)]
                ss = by_svc.get(svc)
                if ss is None:
                    rs = req.resource_spans.add()
                    rs.resource.attributes.add(key="service.name").value.string_value = svc
                    rs.resource.attributes.add(key="k8s.namespace.name").value.string_value = "shop"
                    ss = by_svc[svc] = rs.scope_spans.add()
                    ss.scope.name = "opentelemetry.instrumentation.flask"
                s = ss.spans.add(trace_id=tid, span_id=ids[j], kind=kind, name=f"GET {ROUTES[j % len(ROUTES)]}")
                if parent is not None:
                    s.parent_span_id = ids[parent]
                s.start_time_unix_nano = t + j * 100_000
                s.end_time_unix_nano = s.start_time_unix_nano + rng.randrange(50_000, 50_000_000)
                if rng.random() < 0.02:
                    s.status.code = 2
                _attrs(s, rng, **extra)
        out.append(req.SerializeToString())
    return out


def ingest(reqs: list[bytes], n_spans: int, enabled: bool) -> tuple[float, int, float]:
    """(spans per CPU second of this process through Receiver.export, active generated series).
    CPU time, not wall time: the 2-core machine is shared, and waits (fsync) are not the
    generator's cost."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(load_config(None, {"data_dir": tmp, "generator.enabled": str(enabled).lower()}, {}))
        stack.store.open()
        stack.receiver.ready = True
        warm = len(reqs) // 10  # untimed: the series exist in a running process (steady state)
        for r in reqs[:warm]:
            stack.receiver.export("traces", "bench", r)
        if stack.generator:
            stack.generator.flush()
        t0 = time.process_time()
        for r in reqs[warm:]:
            stack.receiver.export("traces", "bench", r)
        g = stack.generator
        if g:  # inside the timing: the spans still buffered
            for name in g.tenants():
                g.tenant(name).process(g.wall_ms())
        dt = time.process_time() - t0
        flush_s = 0.0
        if g:  # a collection, written to the store: once per collection interval (15 s), not per span
            t1 = time.process_time()
            g.flush()
            flush_s = time.process_time() - t1
        series = g.active_series() if g else 0
        stack.store.close()
    return n_spans * (len(reqs) - warm) / len(reqs) / dt, series, flush_s


def generator_only(reqs: list[bytes], n_spans: int) -> tuple[float, float]:
    """(spans/s processed request by request, spans/s processed in the generator's batches), CPU time."""
    tables = [decode_spans(r).table for r in reqs]
    g = TenantGenerator(GeneratorSettings())
    t0 = time.process_time()
    for t in tables:
        g.consume(t, 1_000)
    one_by_one = n_spans / (time.process_time() - t0)
    g = TenantGenerator(GeneratorSettings())
    batch = GeneratorSettings().batch_rows
    t0 = time.process_time()
    for t in tables:
        if g.add(t) >= batch:
            g.process(1_000)
    g.process(1_000)
    return one_by_one, n_spans / (time.process_time() - t0)


def memory_per_series(n_label_sets: int) -> tuple[float, float, int]:
    """(bytes per active series, bytes per label set, active series)."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    ss = req.resource_spans.add()
    ss.resource.attributes.add(key="service.name").value.string_value = "svc"
    spans = ss.scope_spans.add()
    for i in range(n_label_sets):
        spans.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), kind=1, name=f"op-{i}",
                        start_time_unix_nano=1, end_time_unix_nano=1 + 1_000_000 * (i % 100))
    table = decode_spans(req.SerializeToString()).table
    gc.collect()
    tracemalloc.start()
    g = TenantGenerator(GeneratorSettings())
    g.consume(table, 1_000)
    g.collect(2_000)  # exemplars written and released, as after each collection
    gc.collect()
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    active = g.registry.active_series()
    return used / active, used / n_label_sets, active


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--series", type=int, default=20_000, help="distinct span-metrics label sets")
    ap.add_argument("--rounds", type=int, default=5, help="alternating off/on runs")
    args = ap.parse_args()
    n_traces = args.spans // len(SHAPE)
    reqs = make_requests(n_traces)
    n = n_traces * len(SHAPE)
    off, on, series, flush_s = [], [], 0, 0.0
    for _ in range(args.rounds):
        off.append(ingest(reqs, n, False)[0])
        rate, series, flush_s = ingest(reqs, n, True)
        on.append(rate)
    best_off, best_on = max(off), max(on)
    print(f"{n:,} spans in {len(reqs)} requests of 100 traces, one thread, local disk (fsync per request)")
    print(f"ingest without generator: {best_off:,.0f} spans per CPU second  (runs: {', '.join(f'{x:,.0f}' for x in off)})")
    print(f"ingest with generator:    {best_on:,.0f} spans per CPU second  (runs: {', '.join(f'{x:,.0f}' for x in on)})")
    med_off, med_on = statistics.median(off), statistics.median(on)
    print(f"generator cost: {100 * (1 - med_on / med_off):.1f}% of ingest throughput by the medians, "
          f"{100 * (1 - best_on / best_off):.1f}% by the best runs (target <= 25%); {series:,} active series")
    print(f"one collection (every 15 s) of those series into the metrics store: {1000 * flush_s:,.0f} ms CPU")
    one, batched = generator_only(reqs, n)
    print(f"generator alone, per CPU second: {batched:,.0f} spans/s in its batches, {one:,.0f} request by request")
    per_series, per_set, active = memory_per_series(args.series)
    print(f"memory: {per_series:,.0f} B per active series, {per_set:,.0f} B per label set "
          f"({args.series:,} label sets = {active:,} active series)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
