"""Scrape throughput: scraped samples per second per core, kms against Debian's Prometheus.

Part 1, in process (one thread): the exposition parser of prometheus-client against kms's, then
kms's scrape hot path without HTTP (parse + series cache + batch), then with the store (a real
``Receiver`` and ``Store`` on a temporary directory, WAL fsync included).

Part 2, end to end: a load process on core 1 serves N targets x M series over HTTP on 127.0.0.1
(bodies pre-rendered, values changing every scrape). First kms's scrape manager runs in this
process (pinned to core 0) with a sink that only counts: the scrape path alone (HTTP, parse,
series cache, batches), without storage. Then ``kms up`` and Prometheus, each pinned to core 0
and never both at once, scrape all targets every ``--interval`` for ``--seconds``. The figure is
samples scraped (the servers' own ``scrape_samples_scraped``) per CPU second the server process
used (user + system, from /proc), i.e. samples/s per core at that load.

Usage: python benchmarks/collect/bench_scrape.py [--targets 50] [--series 2000] [--interval 1s] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kms.testing import KmsProcess, free_port, proc_cpu_seconds, wait_http


def render(target: int, series: int, round_: int) -> bytes:
    lines = []
    per_family = 100
    for f in range(0, series, per_family):
        name = f"bench_requests_{f // per_family}_total"
        lines.append(f"# HELP {name} Requests handled.\n# TYPE {name} counter")
        for k in range(f, min(f + per_family, series)):
            lines.append(f'{name}{{path="/api/v1/items/{k}",method="{("GET", "POST")[k % 2]}",code="200",'
                         f'target="t{target}"}} {k * 10 + round_ * (k % 7)}')
    return ("\n".join(lines) + "\n").encode()


# -- part 1 --
def best(fn, reps: int = 5) -> float:
    t = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def in_process(series: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    from kms.collect.config import load_jobs
    from kms.collect.exposition import parse
    from kms.collect.series import SeriesCache

    bodies = [render(0, series, r) for r in range(4)]
    text = bodies[0].decode()
    out = {}
    out["prometheus-client parser"] = series / best(lambda: sum(len(f.samples) for f in text_string_to_metric_families(text)), 2)
    out["kms parse"] = series / best(lambda: parse(bodies[0]))
    (job,) = load_jobs({}, [{"job_name": "bench"}])
    cache = SeriesCache(job, (("instance", "h:1"), ("job", "bench")))
    rounds = iter(range(10**9))
    ts = [1_700_000_000_000]

    def hot():
        r = next(rounds)
        ts[0] += 1000
        cache.append(parse(bodies[r % 4]), ts[0], [("up", 1.0), ("scrape_duration_seconds", 0.01)])

    hot()  # warm the series cache, as every scrape after the first
    out["kms parse + series cache + batch (every line)"] = series / best(hot)

    def scraped_body():  # what a scrape loop runs: an unchanged layout reuses the last scrape's work
        r = next(rounds)
        ts[0] += 1000
        return cache.scrape(bodies[r % 4], "text/plain; version=0.0.4", ts[0],
                            [("up", 1.0), ("scrape_duration_seconds", 0.01)])

    scraped_body()
    out["kms scrape loop's path (layout reused)"] = series / best(scraped_body)

    from kms.config import Config
    from kms.server import Stack

    with tempfile.TemporaryDirectory(prefix="kms-bench-scrape-") as tmp:
        cfg = Config(data_dir=Path(tmp))
        cfg.limits.ingestion_rate_bytes = 0
        stack = Stack(cfg)
        stack.store.open()
        stack.receiver.ready = True

        def stored():
            stack.receiver.export_samples("anonymous", scraped_body().batch)

        stored()
        out["kms scrape loop's path + store (WAL fsync)"] = series / best(stored)
        stack.store.close()
    return out


# -- part 2: the load process --
async def serve(ports: list[int], series: int) -> None:
    bodies = {i: [render(i, series, r) for r in range(4)] for i in range(len(ports))}
    counts = dict.fromkeys(range(len(ports)), 0)

    def handler(i: int):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    if not head:
                        break
                    body = bodies[i][counts[i] % 4]
                    counts[i] += 1
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
        return handle

    for i, p in enumerate(ports):
        await asyncio.start_server(handler(i), "127.0.0.1", p)
    await asyncio.Event().wait()


def scrape_path_only(ports: list[int], interval: str, seconds: float) -> dict[str, float]:
    """kms's scrape manager in this process (core 0), storing nothing: the collect side's cost."""
    from kms.collect import ScrapeManager, load_jobs

    counted = [0]

    def sink(batch) -> None:
        counted[0] += len(batch)

    jobs = load_jobs({"scrape_interval": interval},
                     [{"job_name": "bench", "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}]}])
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    m = ScrapeManager(jobs, sink)
    m.start()
    try:
        time.sleep(3 * float(interval.rstrip("s")))
        c0, n0, t0 = time.process_time(), counted[0], time.time()
        time.sleep(seconds)
        c1, n1, t1 = time.process_time(), counted[0], time.time()
    finally:
        m.stop()
        os.sched_setaffinity(0, before)
    out = {"samples": n1 - n0, "cpu_s": c1 - c0, "wall_s": t1 - t0, "per_core": (n1 - n0) / max(c1 - c0, 1e-9)}
    print(f"scrape path only (counting sink): {out['samples']:,.0f} samples in {out['wall_s']:.1f}s using "
          f"{out['cpu_s']:.2f} CPU s -> {out['per_core']:,.0f} samples/s per core", flush=True)
    return out


def scraped(base: str, window_s: float, at: float) -> float:
    q = f"sum(sum_over_time(scrape_samples_scraped{{job='bench'}}[{int(window_s * 1000)}ms]))"
    r = httpx.get(base + "/api/v1/query", params={"query": q, "time": at}, timeout=30).json()
    res = r["data"]["result"]
    return float(res[0]["value"][1]) if res else 0.0


def measure(name: str, pid: int, base: str, seconds: float, warmup_s: float) -> dict[str, float]:
    time.sleep(warmup_s)  # first scrapes fill the caches
    c0, t0 = proc_cpu_seconds(pid), time.time()
    time.sleep(seconds)
    c1, t1 = proc_cpu_seconds(pid), time.time()
    time.sleep(2)  # let the last scrapes of the window be stored
    n = scraped(base, t1 - t0, t1)
    out = {"samples": n, "cpu_s": c1 - c0, "wall_s": t1 - t0, "per_core": n / max(c1 - c0, 1e-9)}
    print(f"{name}: {n:,.0f} samples in {t1 - t0:.1f}s using {c1 - c0:.2f} CPU s -> "
          f"{out['per_core']:,.0f} samples/s per core", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run the load process on these ports
    ap.add_argument("--skip-e2e", action="store_true", help="only the in-process figures")
    ap.add_argument("--kms-args", default="", help="extra `kms up` flags, e.g. '--head-max-rows 5000000'")
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve([int(p) for p in args.serve.split(",")], args.series))
        return
    print(f"## in process, one target of {args.series:,} series (best of 5)\n")
    print("| path | samples/s |\n|---|---|")
    for k, v in in_process(args.series).items():
        print(f"| {k} | {v:,.0f} |", flush=True)
    if args.skip_e2e:
        return
    exe = shutil.which("prometheus")
    if not exe:
        sys.exit("needs Debian's prometheus package (apt-get install prometheus)")
    ports = [free_port() for _ in range(args.targets)]
    load = subprocess.Popen([sys.executable, __file__, "--serve", ",".join(map(str, ports)), "--series", str(args.series)],
                            preexec_fn=lambda: os.sched_setaffinity(0, {1}))
    res = {}
    try:
        wait_http(f"http://127.0.0.1:{ports[-1]}/metrics", 30, load)
        res["path"] = scrape_path_only(ports, args.interval, args.seconds)
        with tempfile.TemporaryDirectory(prefix="kms-bench-scrape-") as tmp:
            tmp = Path(tmp)
            cfg = tmp / "prometheus.yml"
            targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
            cfg.write_text(f"global: {{scrape_interval: {args.interval}}}\n"
                           f"scrape_configs:\n  - job_name: bench\n    static_configs: [{{targets: [{targets}]}}]\n")
            warmup = 3 * float(args.interval.rstrip("s"))
            kms = KmsProcess(tmp / "kms", ["--scrape-config", str(cfg), "--ingestion-rate-bytes", "0",
                                           *args.kms_args.split()], cpu=0).start()
            try:
                res["kms"] = measure("kms", kms.proc.pid, kms.url, args.seconds, warmup)
                res["kms"]["rss"] = kms.rss_bytes()
            finally:
                kms.stop()
            port = free_port()
            prom = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'prom'}",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    preexec_fn=lambda: os.sched_setaffinity(0, {0}))
            try:
                wait_http(f"http://127.0.0.1:{port}/-/ready", 30, prom)
                res["prometheus"] = measure("prometheus", prom.pid, f"http://127.0.0.1:{port}", args.seconds, warmup)
                res["prometheus"]["rss"] = int(Path(f"/proc/{prom.pid}/status").read_text().split("VmRSS:")[1].split()[0]) * 1024
            finally:
                prom.terminate()
                prom.wait(30)
    finally:
        load.kill()
        load.wait()
    k, p = res["kms"], res["prometheus"]
    offered = args.targets * args.series / float(args.interval.rstrip("s"))
    print(f"\n## end to end: {args.targets} targets x {args.series:,} series every {args.interval} "
          f"({offered:,.0f} samples/s offered), server pinned to one core"
          + (f", kms {args.kms_args}" if args.kms_args else "") + "\n")
    print("| figure | kms | Prometheus 2.42 | kms / Prometheus |\n|---|---|---|---|")
    print(f"| scrape path alone (no storage), samples/s per core | {res['path']['per_core']:,.0f} | | |")
    print(f"| scraped samples/s per core | {k['per_core']:,.0f} | {p['per_core']:,.0f} | {k['per_core'] / p['per_core']:.2f} |")
    print(f"| scraped samples/s (wall) | {k['samples'] / k['wall_s']:,.0f} | {p['samples'] / p['wall_s']:,.0f} | |")
    print(f"| CPU use, cores | {k['cpu_s'] / k['wall_s']:.2f} | {p['cpu_s'] / p['wall_s']:.2f} | |")
    print(f"| RSS, MiB | {k['rss'] / 2**20:.0f} | {p['rss'] / 2**20:.0f} | {k['rss'] / p['rss']:.2f} |")


if __name__ == "__main__":
    main()
