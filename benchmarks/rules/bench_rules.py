"""Rule evaluation cost (a script, not a test): rules/s with 1k recording rules over 10k series.

    python benchmarks/rules/bench_rules.py [--rules 1000] [--series 10000] [--metrics 100]
        [--evaluations 2] [--source store|memory]

``--series`` counters (spread over ``--metrics`` names, labels ``job`` x ``instance``) of 1 h at
15 s are loaded into an in-memory source or the real store (WAL + head, ``StoreSeriesSource``
with its sample cache); one group of ``--rules`` recording rules (four shapes: ``sum by (job)
(rate(m[5m]))``, ``max by (instance) (m)``, ``avg(m)``, ``count by (job) (m > x)``, cycling over
the metrics) is evaluated ``--evaluations`` times 15 s apart, its outputs written back. Prints
rules/s and output series/s in-process, on one thread.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from kms.metrics.promql import Engine, MemorySeriesSource
from kms.metrics.samples import BatchBuilder, SampleBatch
from kms.rules import EvalContext, Group, parse_groups

T0 = 1_700_000_000_000
STEP_MS = 15_000
SHAPES = ["sum by (job) (rate({m}[5m]))", "max by (instance) ({m})", "avg({m})", "count by (job) ({m} > 100)"]


def series_batches(n_series: int, n_metrics: int, n_samples: int):
    per_metric = n_series // n_metrics
    t = T0 + np.arange(n_samples, dtype=np.int64) * STEP_MS
    rng = np.random.default_rng(0)
    for m in range(n_metrics):
        b = BatchBuilder()
        for k in range(per_metric):
            labels = tuple(sorted({"__name__": f"metric_{m}", "job": f"job{k % 10}", "instance": f"i{k}"}.items()))
            idx = b.series_index(labels)
            values = np.cumsum(rng.integers(5, 15, n_samples)).astype(np.float64)
            for ti, vi in zip(t.tolist(), values.tolist(), strict=True):
                b.add(idx, ti, vi)
        yield b.build()


def rule_file(n_rules: int, n_metrics: int) -> str:
    rules = [f"  - record: rec_{i}\n    expr: '{SHAPES[i % len(SHAPES)].format(m=f'metric_{i % n_metrics}')}'"
             for i in range(n_rules)]
    return "name: bench\ninterval: 15s\nrules:\n" + "\n".join(rules) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--metrics", type=int, default=100)
    ap.add_argument("--samples", type=int, default=240)
    ap.add_argument("--evaluations", type=int, default=2)
    ap.add_argument("--source", choices=["memory", "store"], default="store")
    a = ap.parse_args()

    written = [0]
    with tempfile.TemporaryDirectory() as tmp:
        t_load = time.perf_counter()
        if a.source == "memory":
            mem = MemorySeriesSource()
            for batch in series_batches(a.series, a.metrics, a.samples):
                for labels, points in batch.by_series().items():
                    ts, vs = zip(*points, strict=True)
                    mem.add_series(dict(labels), ts, vs)

            def source(_tenant):
                return mem

            def write(_tenant: str, batch: SampleBatch) -> None:
                written[0] += len(batch)
                for labels, points in batch.by_series().items():
                    for t, v in points:
                        mem.add(dict(labels), t, v)
        else:
            from kms.metrics.store import EXEMPLARS, SAMPLES, SampleCache, StoreSeriesSource, samples_table
            from kms.storage import LocalObjectStore, Store, StoreConfig

            store = Store(StoreConfig(data_dir=Path(tmp), head_max_rows=10_000_000),
                          LocalObjectStore(Path(tmp) / "blocks"), [SAMPLES, EXEMPLARS])
            store.open()
            cache = SampleCache(1 << 30)
            for batch in series_batches(a.series, a.metrics, a.samples):
                store.append("bench", SAMPLES.name, samples_table(batch))

            def source(tenant):
                return StoreSeriesSource(store, [tenant], cache)

            def write(tenant: str, batch: SampleBatch) -> None:
                written[0] += len(batch)
                store.append(tenant, SAMPLES.name, samples_table(batch))

        print(f"loaded {a.series} series x {a.samples} samples ({a.source}) in {time.perf_counter() - t_load:.1f}s")
        ctx = EvalContext(promql=lambda tenant, q, t_ms: Engine(source(tenant)).instant(q, t_ms),
                          logql=lambda *_: None, select=lambda tenant, ms, lo, hi: source(tenant).select(ms, lo, hi),
                          write=write, send=lambda *_: None)
        (spec,) = parse_groups(rule_file(a.rules, a.metrics), "bench.yml", 15.0, single=True)
        group = Group(spec, "bench", ctx, restore=False)
        end = T0 + (a.samples - 1) * STEP_MS
        t0 = time.perf_counter()
        for k in range(a.evaluations):
            group.evaluate(end + (k + 1) * STEP_MS)
        dt = time.perf_counter() - t0
        errors = [r.last_error for r in group.rules if r.health != "ok"]
        assert not errors, errors[:3]
        if a.source == "store":
            store.close()
    n = a.rules * a.evaluations
    print(f"{a.rules} recording rules x {a.evaluations} evaluations over {a.series} series: "
          f"{n / dt:,.0f} rules/s, {written[0] / dt:,.0f} output samples/s ({dt / a.evaluations * 1000:.0f} ms a group)")


if __name__ == "__main__":
    main()
