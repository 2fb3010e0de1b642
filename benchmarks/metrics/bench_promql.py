"""PromQL engine benchmark (a script, not a test): ``sum by (job) (rate(x[5m]))`` over 10k counter
series × 1 h at a 15 s scrape interval, held in ``MemorySeriesSource``.

    python benchmarks/metrics/bench_promql.py [--series 10000] [--repeat 3]

Prints the latency of an instant query and of a 1 h range query at 60 s steps, plus series·steps/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kms.metrics.promql import Engine, MemorySeriesSource

QUERY = "sum by (job) (rate(x[5m]))"
HOUR_MS = 3_600_000
SCRAPE_MS = 15_000


def build(n_series: int, seed: int = 0) -> MemorySeriesSource:
    rng = np.random.default_rng(seed)
    src = MemorySeriesSource()
    t = np.arange(0, HOUR_MS + 1, SCRAPE_MS, dtype=np.int64)
    for i in range(n_series):
        jitter = rng.integers(-1000, 1000, size=len(t))
        jitter[0] = 0
        v = np.cumsum(rng.random(len(t)))
        src.add_series({"__name__": "x", "job": f"job-{i % 50}", "instance": f"i-{i}"}, t + jitter, v)
    return src


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    src = build(args.series)
    engine = Engine(src)
    engine.instant("count(x)", HOUR_MS)  # warm-up: sorts and freezes every series once
    print(
        f"built {args.series} series x {HOUR_MS // SCRAPE_MS + 1} samples in {time.perf_counter() - t0:.2f}s"
    )
    inst = timed(lambda: engine.instant(QUERY, HOUR_MS), args.repeat)
    print(f"instant  {QUERY}: {inst * 1000:8.1f} ms  ({args.series / inst:,.0f} series/s)")
    steps = HOUR_MS // 60_000 + 1
    rng_s = timed(lambda: engine.range(QUERY, 0, HOUR_MS, 60_000), args.repeat)
    print(
        f"range 1h/60s ({steps} steps): {rng_s * 1000:8.1f} ms  ({args.series * steps / rng_s:,.0f} series*steps/s)"
    )


if __name__ == "__main__":
    main()
