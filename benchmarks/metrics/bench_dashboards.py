"""The Kubernetes dashboards over 24 h of data, side by side with Debian's Prometheus.

Data: the synthetic Kubernetes data set of ``kms.testing.k8s`` (661 series a cluster; 15
clusters = 9,915 series) at 15 s over ``--hours`` (24), i.e. ~57 M samples. It is encoded once
into remote-write 1.0 requests (250 series x 8 timestamps each, snappy) and the same bytes go to
``kms up`` (/api/v1/push) and to Prometheus (/api/v1/write), four senders each owning a quarter of
the series and sending it in time order (as Prometheus's own remote-write shards do, so
Prometheus accepts everything into its head). Both servers are pinned to core 0, the senders to
core 1.

Queries: every PromQL query of the 8 dotdc dashboards (Grafana variables resolved with the
"all" selection through each server's own label-values API), as Grafana's range query over the
dashboards' default last hour at 30 s steps, and again over the whole range at 2 min steps.
Each query's latency is the median of ``--repeat`` runs; the figure is the median over queries
of the kms / Prometheus ratio. Result sizes are compared too.

Usage: python benchmarks/metrics/bench_dashboards.py [--clusters 15] [--hours 24] [--repeat 3]
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

import cramjam
import httpx
import numpy as np

from kms.testing import KmsProcess, dir_bytes, free_port, proc_cpu_seconds, proc_status_bytes, wait_http
from kms.testing.dashboards import dashboard_vars, interpolate, load_queries, split_label_values
from kms.testing.k8s import k8s_series

STEP_MS = 15_000
SERIES_PER_REQUEST, TIMES_PER_REQUEST = 250, 8
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}  # fmt: skip


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _labels_bytes(labels: dict[str, str]) -> bytes:
    out = bytearray()
    for k, v in sorted(labels.items()):
        kb, vb = k.encode(), v.encode()
        body = b"\x0a" + _varint(len(kb)) + kb + b"\x12" + _varint(len(vb)) + vb
        out += b"\x0a" + _varint(len(body)) + body  # TimeSeries.labels = 1
    return bytes(out)


def encode_requests(labels_b: list[bytes], values: np.ndarray, t_ms: np.ndarray, shard: np.ndarray) -> list[bytes]:
    """Remote-write requests for the series ``shard`` in time order; samples are encoded with
    numpy (``Sample{double value = 1; int64 timestamp = 2}`` is 18 bytes with its tag)."""
    reqs = []
    for j0 in range(0, len(t_ms), TIMES_PER_REQUEST):
        ts = t_ms[j0 : j0 + TIMES_PER_REQUEST]
        k = len(ts)
        tsv = [_varint(int(t)) for t in ts]
        assert all(len(v) == 6 for v in tsv)  # ms since 2001 .. 2109
        tail = np.frombuffer(b"".join(b"\x10" + v for v in tsv), np.uint8).reshape(k, 7)
        for s0 in range(0, len(shard), SERIES_PER_REQUEST):
            ids = shard[s0 : s0 + SERIES_PER_REQUEST]
            buf = np.empty((len(ids), k, 18), np.uint8)
            buf[:, :, 0], buf[:, :, 1], buf[:, :, 2] = 0x12, 16, 0x09
            buf[:, :, 3:11] = values[ids, j0 : j0 + k].copy().view(np.uint8).reshape(len(ids), k, 8)
            buf[:, :, 11:18] = tail
            parts = []
            for i, sid in enumerate(ids.tolist()):
                body = labels_b[sid] + buf[i].tobytes()
                parts.append(b"\x0a" + _varint(len(body)) + body)  # WriteRequest.timeseries = 1
            reqs.append(bytes(cramjam.snappy.compress_raw(b"".join(parts))))
    return reqs


def send(url: str, shards: list[list[bytes]], retries: list[int]) -> float:
    with httpx.Client(timeout=300) as c:

        def run(reqs: list[bytes]) -> None:
            for body in reqs:
                while True:  # as Prometheus's remote write: 429/5xx are retried after a pause
                    r = c.post(url, content=body, headers=HEADERS)
                    if r.status_code not in (429, 503):
                        break
                    retries.append(r.status_code)
                    time.sleep(float(r.headers.get("Retry-After", "1")))
                assert r.status_code in (200, 204), (r.status_code, r.text[:300])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(shards)) as pool:
            list(pool.map(run, shards))
        return time.perf_counter() - t0


def label_values_via(client: httpx.Client, base: str, start_s: float, end_s: float):
    def lookup(selector: str, label: str) -> list[str]:
        r = client.get(f"{base}/api/v1/label/{label}/values",
                       params={"match[]": selector, "start": start_s, "end": end_s}).json()  # fmt: skip
        assert r["status"] == "success", r
        return sorted(r["data"])

    return lookup


def dashboard_queries(client: httpx.Client, base: str, start_s: float, end_s: float) -> list[str]:
    lookup = label_values_via(client, base, start_s, end_s)
    out, cache = [], {}
    for _, dash, expr in load_queries():
        if dash not in cache:
            cache[dash] = dashboard_vars(dash, "all", lookup)
        q = interpolate(expr, cache[dash])
        out.append(split_label_values(q)[0] if q.startswith("label_values(") else q)
    return list(dict.fromkeys(out))


def time_queries(client: httpx.Client, base: str, queries: list[str], start_s: float, end_s: float,
                 step_s: float, repeat: int) -> list[tuple[float, int]]:  # fmt: skip
    out = []
    for q in queries:
        times, n = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = client.post(f"{base}/api/v1/query_range",
                            data={"query": q, "start": start_s, "end": end_s, "step": step_s}).json()  # fmt: skip
            times.append(time.perf_counter() - t0)
            assert r["status"] == "success", (q, r)
            n = len(r["data"]["result"])
        out.append((statistics.median(times) * 1000, n))
    return out




def prom_metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " ") or ln.startswith(name + "{"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=15)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = shutil.which("prometheus")
    if not exe:
        sys.exit("needs Debian's prometheus package (apt-get install prometheus)")
    os.sched_setaffinity(0, {1})
    end_ms = int(time.time() * 1000) // 60_000 * 60_000
    n_t = int(args.hours * 3600_000 / STEP_MS)
    t_ms = end_ms - STEP_MS * np.arange(n_t - 1, -1, -1, dtype=np.int64)
    t0 = time.perf_counter()
    clusters = [f"cluster-{i:02d}" for i in range(args.clusters)]
    series = list(k8s_series(clusters, t_ms))
    values = np.stack([v for _, v in series])
    labels_b = [_labels_bytes(ls) for ls, _ in series]
    order = np.arange(len(series))
    shards = [encode_requests(labels_b, values, t_ms, order[i::4]) for i in range(4)]
    n_samples = values.size
    size = sum(len(r) for s in shards for r in s)
    print(f"{len(series):,} series x {n_t:,} samples = {n_samples:,} samples in "
          f"{sum(map(len, shards)):,} requests ({size / 2**20:.0f} MiB snappy), built in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)  # fmt: skip
    del values, series
    res: dict[str, dict] = {"kms": {}, "prometheus": {}}
    start_s, end_s = t_ms[0] / 1000, end_ms / 1000
    with tempfile.TemporaryDirectory(prefix="kms-bench-dash-") as tmp:
        tmp = Path(tmp)
        kms = KmsProcess(tmp / "kms", ["--ingestion-rate-bytes", "0"], cpu=0).start()
        port = free_port()
        (tmp / "prom.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
        prom = subprocess.Popen(
            [exe, f"--config.file={tmp / 'prom.yml'}", f"--storage.tsdb.path={tmp / 'prom'}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
             "--storage.tsdb.retention.time=10y"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, {0}))  # fmt: skip
        prom_url = f"http://127.0.0.1:{port}"
        try:
            wait_http(prom_url + "/-/ready", 30, prom)
            for name, url, pid in (("kms", kms.url + "/api/v1/push", kms.proc.pid),
                                   ("prometheus", prom_url + "/api/v1/write", prom.pid)):  # fmt: skip
                retries: list[int] = []
                cpu0 = proc_cpu_seconds(pid)
                dt = send(url, shards, retries)
                cpu = proc_cpu_seconds(pid) - cpu0  # other work on the machine does not count here
                res[name]["ingest"] = n_samples / dt
                res[name]["ingest_cpu"] = n_samples / cpu
                print(f"{name}: ingest {n_samples / dt:,.0f} samples/s, {n_samples / cpu:,.0f} per server CPU second "
                      f"({dt:.0f}s, {len(retries)} requests retried)", flush=True)  # fmt: skip
            del shards
            # Let Prometheus finish cutting its head into 2 h blocks (it does so after ingest).
            last, stable = -1.0, 0
            for _ in range(120):
                n = prom_metric(prom_url, "prometheus_tsdb_compactions_total")
                stable = stable + 1 if n == last else 0
                last = n
                if stable >= 5:
                    break
                time.sleep(2)
            with httpx.Client(timeout=300) as c:
                queries = dashboard_queries(c, prom_url, end_s - 3600, end_s)
                kq = dashboard_queries(c, kms.url, end_s - 3600, end_s)
                print(f"{len(queries)} distinct queries; kms resolves the variables identically: {kq == queries}",
                      flush=True)  # fmt: skip
                views = {"1h @30s": (end_s - 3600, 30.0), f"{args.hours:g}h @2m": (start_s, 120.0)}
                for view, (a, step) in views.items():
                    for name, base in (("kms", kms.url), ("prometheus", prom_url)):
                        res[name][view] = time_queries(c, base, queries, a, end_s, step, args.repeat)
                        print(f"{name} {view}: {sum(t for t, _ in res[name][view]) / 1000:.1f}s in all", flush=True)
            res["kms"]["rss"] = kms.peak_rss_bytes()
            res["prometheus"]["rss"] = proc_status_bytes(prom.pid)
            assert kms.stop() == 0
            prom.terminate()
            prom.wait(60)
            res["kms"]["bytes"] = dir_bytes(tmp / "kms" / "blocks") / n_samples
            res["prometheus"]["bytes"] = dir_bytes(tmp / "prom") / n_samples
            res["prometheus"]["block_bytes"] = sum(
                dir_bytes(p) for p in (tmp / "prom").iterdir() if p.is_dir() and (p / "meta.json").exists()
            )
        finally:
            kms.kill()
            if prom.poll() is None:
                prom.kill()
    k, p = res["kms"], res["prometheus"]
    print(f"\n## Dashboards, {len(labels_b):,} series x {args.hours:g} h at 15 s ({n_samples:,} samples), "
          "servers pinned to one core\n")  # fmt: skip
    print("| figure | kms | Prometheus 2.42 | kms / Prometheus |\n|---|---|---|---|")
    print(f"| remote-write ingest, samples/s | {k['ingest']:,.0f} | {p['ingest']:,.0f} | "
          f"{k['ingest'] / p['ingest']:.2f} |")  # fmt: skip
    print(f"| remote-write ingest, samples per server CPU second | {k['ingest_cpu']:,.0f} | {p['ingest_cpu']:,.0f} | "
          f"{k['ingest_cpu'] / p['ingest_cpu']:.2f} |")  # fmt: skip
    all_ratios = []
    for view in views:
        kt = [t for t, _ in k[view]]
        pt = [t for t, _ in p[view]]
        ratios = [a / b for a, b in zip(kt, pt, strict=True)]
        all_ratios += ratios
        same = sum(a[1] == b[1] for a, b in zip(k[view], p[view], strict=True))
        print(f"| {view}: median query ms ({len(kt)} queries; {same} with equal series counts) | "
              f"{statistics.median(kt):.1f} | {statistics.median(pt):.1f} | {statistics.median(ratios):.2f} |")  # fmt: skip
        print(f"| {view}: p90 query ms | {np.percentile(kt, 90):.1f} | {np.percentile(pt, 90):.1f} | "
              f"{np.percentile(ratios, 90):.2f} (p90 of ratios) |")  # fmt: skip
    print(f"| median of per-query latency ratios, both views | | | {statistics.median(all_ratios):.2f} |")
    print(f"| bytes per sample on disk | {k['bytes']:.2f} | {p['bytes']:.2f} (blocks only: "
          f"{p['block_bytes'] / n_samples:.2f}) | |")  # fmt: skip
    print(f"| peak RSS, MiB | {k['rss'] / 2**20:.0f} | {p['rss'] / 2**20:.0f} | {k['rss'] / p['rss']:.2f} |")
    worst = sorted(zip(all_ratios, queries + queries, strict=True), reverse=True)[:8]
    print("\nslowest relative to Prometheus:")
    for r, q in worst:
        print(f"  {r:6.1f}x  {q[:140]}")


if __name__ == "__main__":
    main()
