"""Native histograms side by side with Debian's Prometheus on the same machine and data.

The same remote-write requests (integer native histograms, schema 3, ~20 populated buckets
each, 15 s apart) go to ``kms up`` (/api/v1/push) and to Prometheus
(``--enable-feature=native-histograms``, /api/v1/write); then the same PromQL queries run
against both and their answers are compared. Both servers are pinned to core 0, the sender to
core 1.

Usage: python benchmarks/metrics/bench_native_histograms.py [--series 200] [--hours 1]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from pathlib import Path

import httpx
import numpy as np
from bench_remote_write import query_latency, send, start_prometheus  # the sibling benchmark (same directory)

from kms.metrics.remote_write import WriteRequest, encode_remote_write
from kms.testing import KmsProcess, dir_bytes, proc_status_bytes

QUERIES = [
    "histogram_quantile(0.9, sum by (job) (rate(bench_native_seconds[5m])))",
    "histogram_count(sum(rate(bench_native_seconds[5m])))",
    "sum by (job) (histogram_sum(bench_native_seconds))",
    "histogram_fraction(0, 0.25, sum by (job) (rate(bench_native_seconds[5m])))",
    "histogram_quantile(0.5, bench_native_seconds)",
]


def make_requests(
    n_series: int, hours: float, end_ms: int, per_request: int = 500
) -> tuple[list[bytes], int]:
    rng = np.random.default_rng(7)
    steps = int(hours * 3600 / 15)
    ts = end_ms - (steps - 1 - np.arange(steps)) * 15_000
    n_buckets = 20
    reqs = []
    per = max(1, per_request // steps)
    for s0 in range(0, n_series, per):
        req = WriteRequest()
        for i in range(s0, min(n_series, s0 + per)):
            tsr = req.timeseries.add()
            for k, v in (("__name__", "bench_native_seconds"), ("instance", f"host-{i % 50}:9100"),
                         ("job", f"job-{i % 10}"), ("path", f"/p{i}")):  # fmt: skip
                tsr.labels.add(name=k, value=v)
            counts = np.zeros(n_buckets, dtype=np.int64)
            total = 0.0
            for k in range(steps):
                counts += rng.poisson(np.linspace(1, 6, n_buckets)[::-1] * (1 + i % 3))
                total += float(counts.sum()) * 0.01
                h = tsr.histograms.add(count_int=int(counts.sum()), sum=total, schema=3, timestamp=int(ts[k]))
                h.positive_spans.add(offset=-20, length=n_buckets)
                h.positive_deltas.extend(np.diff(counts, prepend=0).tolist())
        reqs.append(encode_remote_write(req))
    return reqs, n_series * steps


def answers(base: str, q: str, t: float) -> dict[tuple, float]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": q, "time": t}, timeout=120).json()
    out = {}
    for s in r["data"]["result"]:
        v = s["value"][1] if "value" in s else s["histogram"][1]["count"]
        out[tuple(sorted(s["metric"].items()))] = float(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    end_ms = int(__import__("time").time() * 1000) // 15_000 * 15_000
    reqs, n = make_requests(args.series, args.hours, end_ms)
    print(
        f"{n:,} native histograms in {len(reqs)} requests ({sum(map(len, reqs)) / 2**20:.1f} MiB snappy)",
        flush=True,
    )
    os.sched_setaffinity(0, {1})
    res: dict[str, dict] = {"kms": {}, "prometheus": {}}
    with tempfile.TemporaryDirectory(prefix="kms-bench-nh-") as tmp:
        tmp = Path(tmp)
        kms = KmsProcess(tmp / "kms", ["--ingestion-rate-bytes", "0"], cpu=0).start()
        prom, prom_url = start_prometheus(tmp, "--enable-feature=native-histograms")
        try:
            for name, url in (("kms", kms.url + "/api/v1/push"), ("prometheus", prom_url + "/api/v1/write")):
                dt = send(url, reqs)
                res[name]["ingest"] = n / dt
                print(f"{name}: ingest {n / dt:,.0f} histograms/s", flush=True)
            t = end_ms / 1000
            # Prometheus 2.42 interpolates linearly inside exponential buckets and extrapolates
            # histogram rates without the zero-point limit; the current Prometheus (which the
            # conformance scripts encode, and kms follows) does both differently, so answers
            # are compared by their largest relative difference, not for equality.
            worst = 0.0
            for q in QUERIES:
                a, b = answers(kms.url, q, t), answers(prom_url, q, t)
                assert a.keys() == b.keys(), (q, len(a), len(b))
                worst = max(
                    [worst] + [abs(a[k] - b[k]) / max(abs(b[k]), 1e-300) for k in a if not math.isnan(b[k])]
                )
            for name, base in (("kms", kms.url), ("prometheus", prom_url)):
                res[name]["queries"] = {q: query_latency(base, q, t) for q in QUERIES}
            res["kms"]["rss"] = kms.peak_rss_bytes()
            res["prometheus"]["rss"] = proc_status_bytes(prom.pid)
            assert kms.stop() == 0
            prom.terminate()
            prom.wait(30)
            res["kms"]["bytes"] = dir_bytes(tmp / "kms" / "blocks") / n
            res["prometheus"]["bytes"] = dir_bytes(tmp / "prom") / n
        finally:
            kms.kill()
            if prom.poll() is None:
                prom.kill()
    k, p = res["kms"], res["prometheus"]
    print(f"\n## Native histograms, {args.series:,} series x {args.hours:g} h at 15 s ({n:,} histograms)\n")
    print(f"same series from both for every query; largest relative difference of a value {worst:.2%}\n")
    print("| figure | kms | Prometheus 2.42 | kms / Prometheus |\n|---|---|---|---|")
    print(
        f"| remote-write ingest, histograms/s | {k['ingest']:,.0f} | {p['ingest']:,.0f} | {k['ingest'] / p['ingest']:.2f} |"
    )
    ratios = []
    for q in QUERIES:
        (kt, kn), (pt, pn) = k["queries"][q], p["queries"][q]
        ratios.append(kt / pt)
        print(f"| `{q}` ms ({kn} / {pn} series) | {kt:.1f} | {pt:.1f} | {kt / pt:.2f} |")
    print(f"| median query latency ratio | | | {statistics.median(ratios):.2f} |")
    print(
        f"| bytes per histogram on disk | {k['bytes']:.1f} | {p['bytes']:.1f} (WAL, head not yet compacted) | |"
    )
    print(f"| peak RSS, MiB | {k['rss'] / 2**20:.0f} | {p['rss'] / 2**20:.0f} | |")


if __name__ == "__main__":
    main()
