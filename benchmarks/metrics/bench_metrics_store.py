"""Metrics storage benchmark (a script, not a test): Parquet bytes per sample and select() latency.

    python benchmarks/metrics/bench_metrics_store.py [--series 1000] [--samples 2880] [--metrics 100]
        [--int-counters] [--row-group-rows N]

Writes ``--series`` counters (``--metrics`` metric names, the series spread evenly over them) of
``--samples`` samples 15 s apart (increments of about 10 with small noise) through ``Store`` in
remote-write-sized batches, cuts and compacts the blocks, and prints bytes per sample as written,
after compaction (with ``SAMPLES``' per-column encodings), and for the same sorted table encoded
with pyarrow's defaults and variants. Then times ``select`` of one metric over the whole range.
``--row-group-rows`` overrides ``SAMPLES.row_group_rows`` for the store (to weigh bigger row
groups against select latency).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kms.metrics.promql.model import Matcher
from kms.metrics.samples import SampleBatch
from kms.metrics.store import EXEMPLARS, SAMPLES, StoreSeriesSource, samples_table
from kms.storage import LocalObjectStore, Store, StoreConfig
from kms.storage.block import sort_table

T0 = 1_700_000_000_000
STEP_MS = 15_000


def make_batches(
    n_series: int, n_samples: int, n_metrics: int, per_batch: int, int_counters: bool, seed: int = 0
):
    rng = np.random.default_rng(seed)
    series = [
        (
            ("__name__", f"http_requests_total_{i % n_metrics}"),
            ("instance", f"10.0.{i // 256}.{i % 256}:9090"),
            ("job", "shop/api"),
        )
        for i in range(n_series)
    ]
    incr = rng.normal(10.0, 1.0, size=(n_series, n_samples)).clip(0)
    if int_counters:
        incr = np.round(incr)
    values = np.cumsum(incr, axis=1)
    ts = T0 + STEP_MS * np.arange(n_samples, dtype=np.int64)
    for lo in range(0, n_samples, per_batch):
        hi = min(n_samples, lo + per_batch)
        k = hi - lo
        yield SampleBatch(
            series=series,
            series_idx=np.repeat(np.arange(n_series, dtype=np.int32), k),
            ts_ms=np.tile(ts[lo:hi], n_series),
            values=values[:, lo:hi].reshape(-1).copy(),
        )


def block_bytes(store: Store) -> tuple[int, int, int]:
    st = store.stats()
    return (
        st["block_bytes"].get("t/samples", 0),
        st["block_rows"].get("t/samples", 0),
        st["blocks"].get("t/samples", 0),
    )


def column_sizes(path_or_buf) -> dict[str, int]:
    md = pq.ParquetFile(path_or_buf).metadata
    out: dict[str, int] = {}
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            col = md.row_group(rg).column(c)
            out[col.path_in_schema] = out.get(col.path_in_schema, 0) + col.total_compressed_size
    return out


def encode(table: pa.Table, **kw) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=3, write_statistics=True, **kw)
    return sink.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=2880)
    ap.add_argument("--metrics", type=int, default=100)
    ap.add_argument("--batch-samples", type=int, default=120, help="samples per series per append")
    ap.add_argument("--int-counters", action="store_true", help="integer increments (request counts)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--row-group-rows", type=int, default=SAMPLES.row_group_rows)
    args = ap.parse_args()
    samples_spec = dataclasses.replace(SAMPLES, row_group_rows=args.row_group_rows)
    n = args.series * args.samples
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        cfg = StoreConfig(
            data_dir=data / "data",
            background_interval_s=3600,
            compaction_window_s=0,
            compaction_target_rows=4_000_000,
            compaction_min_blocks=10_000,  # no compaction while ingesting (an append can wake it)
        )
        store = Store(cfg, LocalObjectStore(data / "blocks"), [samples_spec, EXEMPLARS])
        store.open()
        t0 = time.perf_counter()
        for b in make_batches(args.series, args.samples, args.metrics, args.batch_samples, args.int_counters):
            store.append("t", "samples", samples_table(b))
            if store.stats()["head_rows"].get("t/samples", 0) >= cfg.head_max_rows:
                store.flush()  # what the background thread does, without waiting for it
        t_write = time.perf_counter() - t0
        store.flush()
        cut_bytes, rows, nblocks = block_bytes(store)
        assert rows == n, (rows, n)
        print(f"samples row groups: {args.row_group_rows:,} rows")
        print(
            f"{args.series} series x {args.samples} samples = {n:,} samples; append {n / t_write:,.0f} samples/s"
        )
        print(f"as cut:    {nblocks} blocks, {cut_bytes:,} B, {cut_bytes / n:.2f} B/sample")
        store.config.compaction_min_blocks = 2
        store.compact()
        comp_bytes, rows, nblocks = block_bytes(store)
        print(f"compacted: {nblocks} blocks, {comp_bytes:,} B, {comp_bytes / n:.2f} B/sample")
        store.close()

        # The same rows, sorted like a block, encoded the engine's way and with per-column encodings.
        store = Store(cfg, LocalObjectStore(data / "blocks"), [samples_spec, EXEMPLARS])
        store.open()
        table = pa.concat_tables(
            samples_table(b)
            for b in make_batches(args.series, args.samples, args.metrics, args.samples, args.int_counters)
        )
        table = sort_table(table, SAMPLES.sort_by)
        variants = {
            "pyarrow defaults (dict all, zstd3, 64k rg; the engine before encodings)": dict(
                row_group_size=SAMPLES.row_group_rows
            ),
            "time DELTA_BINARY_PACKED, value BYTE_STREAM_SPLIT": dict(
                row_group_size=SAMPLES.row_group_rows,
                use_dictionary=["metric", "series"],
                column_encoding={"time_ns": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
            ),
            "same, 1M-row row groups": dict(
                row_group_size=1 << 20,
                use_dictionary=["metric", "series"],
                column_encoding={"time_ns": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
            ),
        }
        v = table.column("value").to_numpy()
        if np.all(v == np.round(v)):  # e.g. --int-counters: what a per-series integer delta would give
            variants["value as int64, DELTA_BINARY_PACKED (integral counters only)"] = dict(
                row_group_size=1 << 20,
                use_dictionary=["metric", "series"],
                column_encoding={"time_ns": "DELTA_BINARY_PACKED", "value": "DELTA_BINARY_PACKED"},
            )
        for name, kw in variants.items():
            if "int64" in name:
                table = table.set_column(3, "value", pa.array(v.astype(np.int64)))
            buf = encode(table, **kw)
            cols = column_sizes(pa.BufferReader(buf))
            per = ", ".join(f"{k} {v / n:.2f}" for k, v in cols.items())
            print(f"  {name}: {buf.size / n:.2f} B/sample ({per})")

        src = StoreSeriesSource(store, ["t"])
        end = T0 + STEP_MS * args.samples
        for label, ms in (
            ("one metric (=)", [Matcher("__name__", "=", "http_requests_total_7")]),
            (
                "one metric + label",
                [Matcher("__name__", "=", "http_requests_total_7"), Matcher("instance", "=~", "10.0.0.1.*")],
            ),
            ("all metrics (regex name)", [Matcher("__name__", "=~", "http_requests_total_.*")]),
        ):
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = src.select(ms, T0, end)
                times.append(time.perf_counter() - t0)
            k = sum(len(s.t) for s in got)
            print(
                f"select {label}: {len(got)} series, {k:,} samples, median {statistics.median(times) * 1e3:.1f} ms "
                f"(min {min(times) * 1e3:.1f} ms)"
            )
        store.close()


if __name__ == "__main__":
    main()
