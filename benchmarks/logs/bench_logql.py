"""LogQL engine throughput over an in-memory source (no storage): lines/s per query shape.

Builds ``--lines`` logfmt access-log lines over 10 streams (one line every 10 ms per stream)
in a ``MemoryLogSource``, then times, each run on all the lines:
- a line-filter metric query (``count_over_time`` with ``|=`` and ``|~``: the vectorised path),
- a log query whose line filter matches nothing (scans everything, returns nothing),
- ``sum by (level) (count_over_time(... | logfmt [1m]))`` (the vectorised logfmt of ``hints``),
- the same with a numeric label filter after ``logfmt`` (per-line parsing in Python).

Usage: python benchmarks/logs/bench_logql.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from kms.logs.logql import LogQLEngine, parse
from kms.logs.memory import MemoryLogSource

S = 10**9
T0 = 1_700_000_000 * S
LEVELS = ["info"] * 8 + ["warn", "error"]
PATHS = ["/api/cart", "/api/checkout", "/api/users/42", "/static/app.js", "/health"]


def build(n_lines: int, n_streams: int = 10) -> tuple[MemoryLogSource, int, int]:
    rnd = random.Random(1)
    src = MemoryLogSource()
    per = n_lines // n_streams
    raw = 0
    for s in range(n_streams):
        entries = []
        for i in range(per):
            status = 500 if rnd.random() < 0.01 else 200
            line = (f"ts={i} level={rnd.choice(LEVELS)} method=GET path={rnd.choice(PATHS)} status={status} "
                    f"duration={rnd.randint(1, 999)}ms bytes={rnd.randint(100, 99999)} trace={rnd.getrandbits(64):016x}")
            entries.append((T0 + i * 10**7, line))
            raw += len(line) + 1
        src.add_stream({"job": "bench", "instance": f"i{s}"}, entries)
    src.streams([], T0, T0 + per * 10**7 + 1)  # converts the streams to Arrow once, outside the timings
    return src, per * n_streams, raw


def run(engine: LogQLEngine, name: str, query: str, start: int, end: int, step: int, n: int, raw: int) -> None:
    """Best of two runs (the first one also pays one-time imports and regex compilation)."""
    dt = math.inf
    for _ in range(2):
        t = time.perf_counter()
        _, stats = engine.query_range(query, start, end, step, limit=100)
        dt = min(dt, time.perf_counter() - t)
        assert stats.lines_processed == n, (stats.lines_processed, n)
    print(f"{name:<44} {dt:7.2f} s  {n / dt / 1e6:6.2f} M lines/s  {raw / dt / 1e6:7.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    t = time.perf_counter()
    src, n, raw = build(args.lines)
    span = (n // 10) * 10**7
    print(f"built {n} lines ({raw / 1e6:.0f} MB raw) in {time.perf_counter() - t:.1f} s")
    engine = LogQLEngine(src)
    parse('{job="bench"}')  # builds the LALR tables once, outside the timings
    start, end = T0 + 60 * S - 1, T0 + span + 60 * S  # windows (t-1m, t] cover every line
    run(engine, "count_over_time(|= \"status=500\" |~ [1m])",
        'sum(count_over_time({job="bench"} |= "status=500" |~ "path=/api/.*" [1m]))', start, end, 60 * S, n, raw)
    run(engine, "log query |= (no match, full scan)", '{job="bench"} |= "no such text"',
        T0, T0 + span + S, S, n, raw)
    run(engine, "sum by (level) (count_over_time(| logfmt [1m]))",
        'sum by (level) (count_over_time({job="bench"} | logfmt [1m]))', start, end, 60 * S, n, raw)
    run(engine, "... | logfmt | status >= 500 [1m] (per line)",
        'sum by (level) (count_over_time({job="bench"} | logfmt | status >= 500 [1m]))', start, end, 60 * S, n, raw)


if __name__ == "__main__":
    main()
