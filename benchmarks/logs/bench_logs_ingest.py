"""Loki push ingest: lines/s and MB/s on one core, and bytes per line on disk vs raw.

``kms up`` is pinned to core 0, the load generator to core 1. Requests are Loki protobuf
(snappy) pushes of ``--batch`` lines each, sent by a few concurrent clients; each line is an
access-log-like line with some variety (paths, status codes, durations, ids). The head holds every
line until the end (``--head-max-rows`` above the load), so the ingest figure counts no block
cut; then SIGTERM flushes the head into blocks, and the figure "with the cut" adds the server's
CPU for that (its whole CPU, from the kernel's account of the exited child, less what it had
spent before the load). The blocks' size is compared with the raw lines.

With ``--otlp`` the same lines go to ``/v1/logs`` as OTLP records shaped like the OpenTelemetry
SDK's (trace context, observed time, code attributes); MB/s counts the lines alone, then the
entries as Loki counts them for its rate limits and ``bytes_received`` (each line with its
structured metadata's names and values, ``detected_level`` left out), then the request bodies as
sent (OTLP: uncompressed protobuf; Loki push: snappy-compressed).

``--head-max-rows N`` below ``--lines`` has the head cut into blocks during the load, as a
running server does: the ingest figure then counts those cuts (and any compaction).

Usage: python benchmarks/logs/bench_logs_ingest.py [--lines 500000] [--batch 5000] [--streams 20] [--otlp]
[--head-max-rows N]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from kms.logs.batch import LogBatch, LogStream
from kms.logs.ingest import decode_logs
from kms.logs.loki_push import encode_push
from kms.logs.recordids import joined
from kms.metrics.storage.labels import parse_labels_text
from kms.testing import KmsProcess

PATHS = ["/api/cart", "/api/checkout", "/api/users/{id}", "/static/app.js", "/health", "/api/search?q={q}"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
STATUS = [200] * 20 + [201, 204, 301, 304, 400, 404, 500, 503]


def _otlp(streams: dict[int, LogStream], rnd: random.Random) -> bytes:
    """The same entries as an OTLP ExportLogsServiceRequest (one resource per stream), each record
    shaped like the OpenTelemetry SDK's logging handler's: severity, observed time, trace context
    and code attributes (so each entry's structured metadata is its own)."""
    req = ExportLogsServiceRequest()
    for s in streams.values():
        rl = req.resource_logs.add()
        for k, v in (("service.name", s.labels["app"]), ("k8s.pod.name", s.labels["pod"]),
                     ("deployment.environment", s.labels["env"])):
            rl.resource.attributes.add(key=k).value.string_value = v
        sl = rl.scope_logs.add()
        sl.scope.name = "bench"
        for t, line in zip(s.times, s.lines, strict=True):
            rec = sl.log_records.add(time_unix_nano=t, observed_time_unix_nano=t + 1000, severity_number=9,
                                     severity_text="INFO", trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), flags=1)
            rec.body.string_value = line
            rec.attributes.add(key="code.function.name").value.string_value = "handle_request"
            rec.attributes.add(key="code.line.number").value.int_value = 42
    return req.SerializeToString()


def make_requests(n_lines: int, batch: int, n_streams: int, start_ns: int, otlp: bool = False) -> tuple[list[bytes], int]:
    rnd = random.Random(1)
    reqs, raw = [], 0
    t = start_ns
    for i in range(0, n_lines, batch):
        streams = {}
        for _ in range(min(batch, n_lines - i)):
            k = rnd.randrange(n_streams)
            s = streams.get(k)
            if s is None:
                s = streams[k] = LogStream({"app": f"svc-{k % 7}", "pod": f"svc-{k % 7}-{k}", "env": "prod"})
            path = rnd.choice(PATHS).format(id=rnd.randrange(10**6), q=rnd.randrange(10**4))
            line = (f'10.0.{rnd.randrange(256)}.{rnd.randrange(256)} - - "{rnd.choice(METHODS)} {path} HTTP/1.1" '
                    f"{rnd.choice(STATUS)} {rnd.randrange(100, 50_000)} duration={rnd.random() * 0.5:.4f}s "
                    f"request_id={rnd.getrandbits(64):016x}")
            t += 1000
            s.add(t, line)
            raw += len(line) + 1  # + newline, as a flat file
        reqs.append(_otlp(streams, rnd) if otlp else encode_push(LogBatch(list(streams.values()))))
    return reqs, raw


def loki_bytes(reqs: list[bytes], raw: int, n_lines: int, otlp: bool) -> int:
    """What Loki counts of the entries (``util.EntryTotalSize``): each line's bytes and its
    structured metadata's names and values, ``detected_level`` left out; the OTLP records'
    metadata as the stack maps it, from its own decoder."""
    if not otlp:
        return raw - n_lines  # no metadata; raw counts a newline a line
    total = 0
    for body in reqs:
        t = joined(decode_logs(body).batch.table())  # the record ids as metadata pairs
        total += sum(len(x) for x in t.column("line").to_pylist())
        for text in t.column("metadata").to_pylist():
            total += sum(len(k) + len(v) for k, v in parse_labels_text(text or "{}").items() if k != "detected_level")
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--otlp", action="store_true", help="OTLP/HTTP protobuf to /v1/logs instead of Loki push")
    ap.add_argument("--head-max-rows", type=int, default=0, help="cut the head into blocks at this many rows "
                    "during the load (default: keep the whole load in the head until the shutdown)")
    a = ap.parse_args()
    os.sched_setaffinity(0, {1})
    reqs, raw = make_requests(a.lines, a.batch, a.streams, time.time_ns() - a.lines * 1000, a.otlp)
    counted = loki_bytes(reqs, raw, a.lines, a.otlp)
    path, ctype = ("/v1/logs", "application/x-protobuf") if a.otlp else ("/loki/api/v1/push", "application/x-protobuf")
    with tempfile.TemporaryDirectory() as d:
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        kms = KmsProcess(Path(d) / "kms", ["--ingestion-rate-bytes", "0", "--max-request-bytes", str(64 << 20),
                                           "--head-max-rows", str(a.head_max_rows or a.lines + 1)], cpu=0).start()
        try:
            def send(body: bytes) -> None:
                with httpx.Client(base_url=kms.url, timeout=60) as c:
                    r = c.post(path, content=body, headers={"Content-Type": ctype})
                    assert r.status_code in (200, 204), r.text

            cpu0 = sum(psutil.Process(kms.proc.pid).cpu_times()[:2])
            t0 = time.perf_counter()
            with ThreadPoolExecutor(a.clients) as ex:
                list(ex.map(send, reqs))
            secs = time.perf_counter() - t0
            cpu = sum(psutil.Process(kms.proc.pid).cpu_times()[:2]) - cpu0
            peak = kms.peak_rss_bytes()
            assert kms.stop(600) == 0
        finally:
            kms.kill()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_all = children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime - cpu0
        blocks = sum(p.stat().st_size for p in (Path(d) / "kms" / "blocks").rglob("data.parquet"))
    print(f"protocol                      {'OTLP/HTTP protobuf' if a.otlp else 'Loki push protobuf + snappy'}")
    print(f"lines                         {a.lines:,} ({raw / 1e6:.1f} MB raw, {a.streams} streams)")
    print(f"push ingest, lines/s          {a.lines / secs:,.0f}")
    print(f"push ingest, MB/s raw         {raw / secs / 1e6:.1f}")
    print(f"server CPU, s per 100k lines  {cpu / a.lines * 1e5:.2f} ({a.lines / cpu:,.0f} lines/s per busy core)")
    print(f"MB/s per busy core            {raw / cpu / 1e6:.1f} of lines, {counted / cpu / 1e6:.1f} as Loki counts "
          f"entries, {sum(map(len, reqs)) / cpu / 1e6:.1f} of request bodies as sent")
    print(f"  with the cut to blocks      {raw / cpu_all / 1e6:.1f} of lines, {counted / cpu_all / 1e6:.1f} as Loki "
          f"counts entries ({cpu_all - cpu:.2f} s of CPU for the cut and shutdown)")
    print(f"bytes per line on disk        {blocks / a.lines:.1f} (raw {raw / a.lines:.1f}; {blocks / raw:.2f}x raw)")
    print(f"peak RSS, MiB                 {peak / 2**20:.0f}")


if __name__ == "__main__":
    main()
