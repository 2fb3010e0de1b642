"""Storage benchmark (a script, not a test): durable append throughput, trace-id lookups over
1M spans, Parquet bytes per row.

    python benchmarks/storage/bench_store.py [--rows 1000000] [--dir /tmp/kms-bench]

Appends are durable (each returns after its WAL fsync; concurrent appends share fsyncs).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.storage import LocalObjectStore, ScanRequest, Store, StoreConfig
from kms.traces.schema import SPAN_SCHEMA, TRACES

BATCH = 512
SERVICES = [f"service-{i}" for i in range(8)]
RESOURCES = [
    f"service.name=service-{i};host.name=node-{i % 3};k8s.pod.name=pod-{i}-abcde".encode() * 3
    for i in range(8)
]
NAMES = ["GET /api/items", "POST /api/orders", "SELECT items", "redis GET", "publish order", "render"]


def _fixed(raw: bytes, width: int) -> pa.Array:
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(raw) // width, [None, pa.py_buffer(raw)]
    )


def span_batch(rng: np.random.Generator, t0: int, n: int = BATCH) -> pa.Table:
    """``n`` spans-like rows: 8 spans per random trace id, realistic column shapes."""
    traces = np.frombuffer(rng.bytes(16 * (n // 8 + 1)), dtype=np.uint8).reshape(-1, 16)
    trace_ids = np.repeat(traces, 8, axis=0)[:n].tobytes()
    svc = rng.integers(0, len(SERVICES), n).astype(np.int32)
    attrs = [
        b"http.method=GET;http.status_code=200;http.url=/api/items/%d;" % v for v in rng.integers(0, 10**6, n)
    ]
    return pa.table(
        [
            pa.array(t0 + np.sort(rng.integers(0, 10**9, n))),
            _fixed(trace_ids, 16),
            _fixed(rng.bytes(8 * n), 8),
            pa.array([b""] * n, pa.binary()),
            pa.array([NAMES[i] for i in rng.integers(0, len(NAMES), n)], pa.string()),
            pa.array(rng.integers(1, 6, n).astype(np.int8)),
            pa.array(rng.integers(10_000, 50_000_000, n)),
            pa.array(np.zeros(n, np.int8)),
            pa.array([""] * n, pa.string()),
            pa.DictionaryArray.from_arrays(pa.array(svc), pa.array(SERVICES)),
            pa.DictionaryArray.from_arrays(pa.array(svc), pa.array(RESOURCES, pa.binary())),
            pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array([b"io.opentelemetry.sdk 1.45"], pa.binary())
            ),
            pa.array(attrs, pa.binary()),
        ],
        schema=SPAN_SCHEMA,
    )


def open_store(d: Path, **cfg) -> Store:
    cfg.setdefault("background_interval_s", 3600)  # the benchmark drives cuts itself
    store = Store(StoreConfig(data_dir=d, **cfg), LocalObjectStore(d / "blocks"), [TRACES])
    store.open()
    return store


def bench_append(root: Path, threads: int, batches_per_thread: int) -> None:
    d = root / f"append-{threads}"
    store = open_store(d)
    rng = np.random.default_rng(threads)
    data = [
        span_batch(rng, 1_700_000_000_000_000_000 + i * 10**9) for i in range(threads * batches_per_thread)
    ]
    wal_before = store.stats()["wal_records"]

    def run(k: int) -> None:
        for b in data[k::threads]:
            store.append("bench", "traces", b)

    t0 = time.perf_counter()
    ths = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    took = time.perf_counter() - t0
    s = store.stats()
    rows = sum(b.num_rows for b in data)
    mb = s["appended_bytes"] / 1e6
    print(
        f"append  {threads} writer(s): {rows / took:>9,.0f} rows/s  {mb / took:6.1f} MB/s (WAL record bytes)  "
        f"{(s['wal_records'] - wal_before) / took:6.0f} appends/s  fsyncs/append {s['wal_fsyncs'] / s['wal_records']:.2f}"
    )
    store.close(flush=False)
    shutil.rmtree(d)


def percentiles(xs: list[float]) -> str:
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3  # noqa: E731
    return f"p50 {p(0.50):6.2f} ms  p99 {p(0.99):6.2f} ms  max {xs[-1] * 1e3:6.2f} ms"


def lookups(store: Store, ids: list[bytes]) -> list[float]:
    lat = []
    for tid in ids:
        req = ScanRequest("bench", "traces", filter=pc.field("trace_id") == pa.scalar(tid, pa.binary(16)))
        t0 = time.perf_counter()
        n = sum(t.num_rows for t in store.scan(req))
        lat.append(time.perf_counter() - t0)
        assert n > 0
    return lat


def bloom_summary(store: Store) -> str:
    metas = [b.meta for p in store._parts.values() for b in p.blocks if b.meta.bloom]
    if not metas:
        return "no block has a filter"
    keys = sum(m.bloom["keys"] for m in metas)
    size = sum(m.bloom["bytes"] for m in metas)
    fpp = sum(m.bloom["fpp"] * m.bloom["keys"] for m in metas) / keys
    return f"{len(metas)} filters, {keys:,} ids, {size / 1024:.0f} KiB, {size * 8 / keys:.1f} bits/id, est. FP {fpp:.2%}"


def bench_scan(root: Path, total_rows: int, block_rows: int, queries: int) -> None:
    d = root / "scan"
    store = open_store(d, head_max_rows=block_rows, compaction_min_blocks=10**6)
    rng = np.random.default_rng(1)
    sample: list[bytes] = []
    t0 = time.perf_counter()
    for i in range(total_rows // BATCH):
        b = span_batch(rng, 1_700_000_000_000_000_000 + i * 10**9)
        store.append("bench", "traces", b)
        sample.append(b.column("trace_id")[int(rng.integers(0, BATCH))].as_py())
        if store.stats()["partitions"][0]["head_rows"] >= block_rows:
            store.flush()
    load = time.perf_counter() - t0
    ids = [sample[int(i)] for i in rng.integers(0, len(sample), queries)]
    store.flush()
    part = store.stats()["partitions"][0]
    print(
        f"load    {part['block_rows']:,} spans in {load:.1f} s ({part['block_rows'] / load:,.0f} rows/s incl. cuts); "
        f"{part['blocks']} blocks, Parquet {part['block_bytes'] / part['block_rows']:.1f} B/row "
        f"(WAL record {part['appended_bytes'] / part['appended_rows']:.1f} B/row)"
    )
    store.close(flush=False)

    store = open_store(d)  # the background thread starts reading the footers at open
    t0 = time.perf_counter()
    lookups(store, ids[:1])
    print(
        f"lookup  first query after open (reads {part['blocks']} footers): {(time.perf_counter() - t0) * 1e3:.1f} ms"
    )
    lookups(store, ids[: queries // 10])  # warm up
    print(
        f"lookup  by trace id, {part['blocks']} blocks of {block_rows:,}: {percentiles(lookups(store, ids))}"
    )
    absent = [rng.bytes(16) for _ in range(queries)]
    lat = []
    for tid in absent:
        t1 = time.perf_counter()
        list(
            store.scan(
                ScanRequest("bench", "traces", filter=pc.field("trace_id") == pa.scalar(tid, pa.binary(16)))
            )
        )
        lat.append(time.perf_counter() - t1)
    print(f"lookup  absent trace id:                    {percentiles(lat)}")
    s = store.stats()
    print(
        f"bloom   filters on: {s['bloom_skipped_blocks']:,} block reads skipped, {s['block_scans']:,} done; "
        f"{bloom_summary(store)}"
    )
    store.config.compaction_min_blocks = 2
    store.config.compaction_target_rows = total_rows
    t0 = time.perf_counter()
    store.compact()
    print(
        f"compact {part['blocks']} blocks -> {store.stats()['partitions'][0]['blocks']} in {time.perf_counter() - t0:.1f} s"
    )
    print(f"lookup  by trace id, after compaction:     {percentiles(lookups(store, ids))}")
    store.close()

    # A full head (4 blocks' worth, e.g. the default head_max_rows of 500k), not yet cut.
    store = open_store(root / "head", head_max_rows=10**7)
    rng = np.random.default_rng(2)
    sample = []
    for i in range(block_rows * 4 // BATCH):
        b = span_batch(rng, 1_700_000_000_000_000_000 + i * 10**9)
        store.append("bench", "traces", b)
        sample.append(b.column("trace_id")[5].as_py())
    rows = store.stats()["partitions"][0]["head_rows"]
    ids = [sample[int(i)] for i in rng.integers(0, len(sample), queries // 2)]
    print(
        f"lookup  by trace id, {rows:,} rows in the head ({rows // BATCH} appends): {percentiles(lookups(store, ids))}"
    )
    store.close(flush=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--block-rows", type=int, default=125_000)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--append-batches", type=int, default=400, help="per run, split among the writers")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kms-bench-", dir=args.dir))
    try:
        for threads in (1, 4):
            bench_append(root, threads, args.append_batches // threads)
        bench_scan(root, args.rows, args.block_rows, args.queries)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
