"""Metrics side by side with Debian's Prometheus on the same machine and the same data.

Both servers are pinned to core 0, the load generator to core 1. The same remote-write
requests go to ``kms up`` (/api/v1/push) and to Prometheus (--web.enable-remote-write-receiver,
/api/v1/write); then the same PromQL queries run against both; bytes per sample on disk are
taken after both have flushed (kms: SIGTERM flush; Prometheus: its head is compacted into a
block only after ~2h of data, so its figure is the WAL + blocks directory as it stands).

Usage: python benchmarks/metrics/bench_remote_write.py [--series 1000] [--hours 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from kms.metrics.remote_write import WriteRequest, encode_remote_write
from kms.testing import KmsProcess, dir_bytes, free_port, proc_status_bytes, wait_http

QUERIES = [
    "sum by (job) (rate(bench_requests_total[5m]))",
    'sum(rate(bench_requests_total{job="job-3"}[5m])) by (instance)',
    "topk(5, max_over_time(bench_requests_total[1h]))",
    "count by (job) (bench_requests_total)",
    "histogram_quantile(0.9, sum by (le) (rate(bench_latency_bucket[5m])))",
]
LE = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"]


def make_requests(n_series: int, hours: float, end_ms: int, per_request: int = 2000) -> tuple[list[bytes], int]:
    """Counters (whole numbers, like request counts) and histogram buckets, 15 s apart."""
    rng = np.random.default_rng(1)
    steps = int(hours * 3600 / 15)
    ts = end_ms - (steps - 1 - np.arange(steps)) * 15_000
    series = []
    for i in range(n_series):
        if i % 10 < 7:
            labels = [("__name__", "bench_requests_total"), ("instance", f"host-{i % 50}:9100"), ("job", f"job-{i % 20}"),
                      ("path", f"/p{i}")]
        else:
            labels = [("__name__", "bench_latency_bucket"), ("instance", f"host-{i % 50}:9100"), ("job", f"job-{i % 20}"),
                      ("le", LE[i % len(LE)]), ("path", f"/p{i}")]
        values = np.cumsum(rng.poisson(3 + i % 7, steps)).astype(np.float64)
        series.append((sorted(labels), values))
    reqs = []
    # Each request carries the whole range of a few series, so concurrent senders never make a
    # series go back in time (Prometheus refuses out-of-order samples).
    per = max(1, per_request // steps)
    for s0 in range(0, n_series, per):
        req = WriteRequest()
        for labels, values in series[s0:s0 + per]:
            tsr = req.timeseries.add()
            for n, v in labels:
                tsr.labels.add(name=n, value=v)
            for k in range(steps):
                tsr.samples.add(value=values[k], timestamp=int(ts[k]))
        reqs.append(encode_remote_write(req))
    return reqs, n_series * steps


def send(url: str, reqs: list[bytes], concurrency: int = 4) -> float:
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}
    with httpx.Client(timeout=120) as c:
        def post(body: bytes) -> None:
            r = c.post(url, content=body, headers=headers)
            assert r.status_code in (200, 204), (r.status_code, r.text[:300])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, reqs))
        return time.perf_counter() - t0


def query_latency(base: str, q: str, t: float, reps: int = 5) -> tuple[float, int]:
    times, n = [], 0
    with httpx.Client(timeout=120) as c:
        for _ in range(reps):
            t0 = time.perf_counter()
            r = c.get(f"{base}/api/v1/query", params={"query": q, "time": t}).json()
            times.append(time.perf_counter() - t0)
            assert r["status"] == "success", (q, r)
            n = len(r["data"]["result"])
    return statistics.median(times) * 1000, n




def start_prometheus(tmp: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """Debian's Prometheus on core 0 with the remote-write receiver, data under ``tmp/prom``."""
    exe = shutil.which("prometheus")
    if not exe:
        sys.exit("needs Debian's prometheus package (apt-get install prometheus)")
    port = free_port()
    (tmp / "prom.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    prom = subprocess.Popen(
        [exe, f"--config.file={tmp / 'prom.yml'}", f"--storage.tsdb.path={tmp / 'prom'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
         "--storage.tsdb.retention.time=10y", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/-/ready", 30, prom)
    return prom, url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=1.0)  # Prometheus refuses samples older than its head window (~1.5 h)
    args = ap.parse_args()
    end_ms = int(time.time() * 1000) // 15_000 * 15_000
    reqs, n_samples = make_requests(args.series, args.hours, end_ms)
    print(f"{n_samples:,} samples in {len(reqs)} requests ({sum(map(len, reqs)) / 2**20:.1f} MiB snappy)", flush=True)
    os.sched_setaffinity(0, {1})
    res: dict[str, dict] = {"kms": {}, "prometheus": {}}
    with tempfile.TemporaryDirectory(prefix="kms-bench-metrics-") as tmp:
        tmp = Path(tmp)
        kms = KmsProcess(tmp / "kms", ["--ingestion-rate-bytes", "0"], cpu=0).start()
        prom, prom_url = start_prometheus(tmp)
        try:
            for name, url in (("kms", kms.url + "/api/v1/push"), ("prometheus", prom_url + "/api/v1/write")):
                dt = send(url, reqs)
                res[name]["ingest"] = n_samples / dt
                print(f"{name}: ingest {n_samples / dt:,.0f} samples/s", flush=True)
            t = end_ms / 1000
            for name, base in (("kms", kms.url), ("prometheus", prom_url)):
                res[name]["queries"] = {q: query_latency(base, q, t) for q in QUERIES}
            res["kms"]["rss"] = kms.peak_rss_bytes()
            res["prometheus"]["rss"] = proc_status_bytes(prom.pid)
            assert kms.stop() == 0
            prom.terminate()
            prom.wait(30)
            res["kms"]["bytes"] = dir_bytes(tmp / "kms" / "blocks") / n_samples
            res["prometheus"]["bytes"] = dir_bytes(tmp / "prom") / n_samples
        finally:
            kms.kill()
            if prom.poll() is None:
                prom.kill()
    k, p = res["kms"], res["prometheus"]
    print(f"\n## Metrics, {args.series:,} series x {args.hours:g} h at 15 s ({n_samples:,} samples), "
          "servers pinned to one core\n")
    print("| figure | kms | Prometheus 2.42 | kms / Prometheus |\n|---|---|---|---|")
    print(f"| remote-write ingest, samples/s | {k['ingest']:,.0f} | {p['ingest']:,.0f} | {k['ingest'] / p['ingest']:.2f} |")
    ratios = []
    for q in QUERIES:
        (kt, kn), (pt, pn) = k["queries"][q], p["queries"][q]
        ratios.append(kt / pt)
        print(f"| `{q}` ms ({kn} / {pn} series) | {kt:.1f} | {pt:.1f} | {kt / pt:.2f} |")
    print(f"| median query latency ratio | | | {statistics.median(ratios):.2f} |")
    print(f"| bytes per sample on disk | {k['bytes']:.2f} | {p['bytes']:.2f} (WAL, head not yet compacted) | |")
    print(f"| peak RSS, MiB | {k['rss'] / 2**20:.0f} | {p['rss'] / 2**20:.0f} | {k['rss'] / p['rss']:.2f} |")


if __name__ == "__main__":
    main()
