"""Traces end to end against a real ``kms up`` process pinned to one core.

Measures, for the local and the S3 backend (moto's server process):
  * OTLP span ingest, durable and acknowledged, over gRPC and over HTTP: spans/s on one core
  * trace by id p50/p99 (Grafana's path: /api/v2/traces/<id>, Accept: application/protobuf)
    and TraceQL search latency, with N spans stored (default 1M)
  * bytes per span on disk (blocks after shutdown flush), peak RSS of the server

Usage: python benchmarks/traces/bench_traces.py [--spans 1000000] [--backends local,s3]
No peer runs here (Debian has no Tempo package), so no ratio is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).parent))
import spangen  # noqa: E402

from kms.testing import KmsProcess, S3Server, dir_bytes  # noqa: E402

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
QUERIES = [
    '{ resource.service.name = "svc-3" && duration > 40ms }',
    "{ status = error }",
    '{ span.http.status_code = 500 && kind = server }',
    '{ span.http.target = "/api/v1/item/4242" }',
    '{ kind = server } >> { span.http.method = "DELETE" }',
    "{ } | count() > 9",
]


async def send_grpc(target: str, reqs: list[bytes], concurrency: int) -> float:
    async with grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        call = ch.unary_unary(GRPC_METHOD, request_serializer=None, response_deserializer=None)
        queue = list(reversed(reqs))

        async def worker():
            while queue:
                await call(queue.pop(), timeout=60)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def send_http(url: str, reqs: list[bytes], concurrency: int) -> float:
    async with httpx.AsyncClient(timeout=60) as client:
        queue = list(reversed(reqs))

        async def worker():
            while queue:
                r = await client.post(url + "/v1/traces", content=queue.pop(),
                                      headers={"Content-Type": "application/x-protobuf"})
                r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]



def run_backend(backend: str, n_spans: int, spans_per_trace: int, tmp: Path, s3: S3Server | None) -> dict:
    extra = ["--head-max-rows", "500000", "--block-max-age", "1h", "--ingestion-rate-bytes", "0"]
    if backend == "s3":
        extra += s3.kms_args(s3.create_bucket(f"bench-{int(time.time())}"))
    data_dir = tmp / f"data-{backend}"
    cpu = 0 if os.cpu_count() and os.cpu_count() > 1 else None
    kms = KmsProcess(data_dir, extra, cpu=cpu)
    if cpu is not None:
        os.sched_setaffinity(0, {1})
    n_traces = n_spans // spans_per_trace
    t0 = time.perf_counter()
    reqs = spangen.make_requests(n_traces, spans_per_trace, traces_per_request=50)
    spans_per_req = 50 * spans_per_trace
    print(f"[{backend}] generated {len(reqs)} requests of {spans_per_req} spans in {time.perf_counter() - t0:.1f}s",
          flush=True)
    out: dict = {}
    kms.start()
    try:
        third = len(reqs) // 3
        dt = asyncio.run(send_grpc(kms.grpc_target, reqs[:third], 8))
        out["ingest_grpc_spans_s"] = third * spans_per_req / dt
        dt = asyncio.run(send_http(kms.url, reqs[third:2 * third], 8))
        out["ingest_http_spans_s"] = third * spans_per_req / dt
        asyncio.run(send_grpc(kms.grpc_target, reqs[2 * third:], 8))
        print(f"[{backend}] ingest gRPC {out['ingest_grpc_spans_s']:,.0f} spans/s, "
              f"HTTP {out['ingest_http_spans_s']:,.0f} spans/s", flush=True)
        rss_ingest = kms.peak_rss_bytes()
        t_stop = time.perf_counter()
        assert kms.stop() == 0, kms.log()[-2000:]
        out["shutdown_flush_s"] = time.perf_counter() - t_stop
        out["peak_rss_ingest_mib"] = rss_ingest / 2**20
        if backend == "local":
            out["bytes_per_span"] = dir_bytes(data_dir / "blocks") / n_spans
        else:
            objs = s3.client().list_objects_v2(Bucket=kms.extra_args[kms.extra_args.index("--s3-bucket") + 1])
            total = 0
            pager = s3.client().get_paginator("list_objects_v2")
            for page in pager.paginate(Bucket=kms.extra_args[kms.extra_args.index("--s3-bucket") + 1]):
                total += sum(o["Size"] for o in page.get("Contents", []))
            del objs
            out["bytes_per_span"] = total / n_spans

        try:
            kms.start(timeout_s=300)
        except RuntimeError:
            print(kms.log()[-3000:])
            raise
        print(f"[{backend}] restarted: RSS {kms.rss_bytes() / 2**20:.0f} MiB, peak {kms.peak_rss_bytes() / 2**20:.0f} MiB",
              flush=True)
        ids = []
        rng = random.Random(7)
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        for raw in rng.sample(reqs, 40):
            req = trace_service_pb2.ExportTraceServiceRequest.FromString(raw)
            for rs in req.resource_spans[:5]:
                ids.append(rs.scope_spans[0].spans[0].trace_id.hex())
        lat = []
        with httpx.Client(base_url=kms.url, timeout=30) as c:
            for tid in ids:
                t = time.perf_counter()
                r = c.get(f"/api/v2/traces/{tid}", headers={"Accept": "application/protobuf"})
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.content) > 100, (r.status_code, r.text[:200])
            out["trace_by_id_p50_ms"] = statistics.median(lat) * 1000
            out["trace_by_id_p99_ms"] = pct(lat, 99) * 1000
            print(f"[{backend}] trace by id over {len(lat)} lookups: p50 {out['trace_by_id_p50_ms']:.1f} ms, "
                  f"p99 {out['trace_by_id_p99_ms']:.1f} ms", flush=True)
            out["search"] = {}
            for q in QUERIES:
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    r = c.get("/api/search", params={"q": q, "limit": 20})
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200, (q, r.status_code, r.text[:300])
                n = len(r.json()["traces"])
                out["search"][q] = (statistics.median(times) * 1000, n)
                print(f"[{backend}] search {q!r}: {statistics.median(times) * 1000:.0f} ms ({n} traces), "
                      f"peak RSS {kms.peak_rss_bytes() / 2**20:.0f} MiB", flush=True)
        time.sleep(8)  # let background compaction run, so its peak is counted too
        out["peak_rss_mib"] = kms.peak_rss_bytes() / 2**20
        kms.stop()
    finally:
        kms.kill()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--spans-per-trace", type=int, default=10)
    ap.add_argument("--backends", default="local,s3")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="kms-bench-") as tmp:
        s3 = S3Server().start() if "s3" in args.backends else None
        try:
            for b in args.backends.split(","):
                results[b] = run_backend(b, args.spans, args.spans_per_trace, Path(tmp), s3)
        finally:
            if s3:
                s3.stop()
    print(f"\n## Traces, {args.spans:,} spans ({args.spans_per_trace} per trace), server pinned to one core\n")
    print("| figure | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    rows = [("OTLP/gRPC ingest, spans/s", "ingest_grpc_spans_s", "{:,.0f}"),
            ("OTLP/HTTP ingest, spans/s", "ingest_http_spans_s", "{:,.0f}"),
            ("trace by id p50, ms", "trace_by_id_p50_ms", "{:.1f}"),
            ("trace by id p99, ms", "trace_by_id_p99_ms", "{:.1f}"),
            ("bytes per span on disk", "bytes_per_span", "{:.1f}"),
            ("peak RSS while ingesting, MiB", "peak_rss_ingest_mib", "{:.0f}"),
            ("peak RSS after restart + queries, MiB", "peak_rss_mib", "{:.0f}"),
            ("shutdown flush, s", "shutdown_flush_s", "{:.1f}")]
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(r[key]) for r in results.values()) + " |")
    for q in QUERIES:
        print(f"| search `{q}`, ms (traces) | " + " | ".join(
            f"{r['search'][q][0]:.0f} ({r['search'][q][1]})" for r in results.values()) + " |")


if __name__ == "__main__":
    main()
