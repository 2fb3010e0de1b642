"""Fixtures: real stores on tmp_path, a toy signal, row builders, and the moto S3 server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from kms.storage import LocalObjectStore, Store, StoreConfig
from kms.traces.schema import SPAN_SCHEMA

from .toy import TOY, TOY_SCHEMA, toy_rows  # noqa: F401


def span_rows(
    n: int, *, seed: int = 0, t0: int = 1_700_000_000_000_000_000, services=("frontend", "backend")
) -> pa.Table:
    """``n`` spans: random 16-byte trace ids (8 spans per trace), dictionary-encoded service/resource/scope."""
    rng = np.random.default_rng(seed)
    traces = [rng.bytes(16) for _ in range(max(1, n // 8))]
    svc = [services[i % len(services)] for i in range(n)]
    return pa.table(
        {
            "time_ns": pa.array(t0 + np.arange(n, dtype=np.int64) * 1_000_000),
            "trace_id": pa.array([traces[i % len(traces)] for i in range(n)], pa.binary(16)),
            "span_id": pa.array([rng.bytes(8) for _ in range(n)], pa.binary(8)),
            "parent_span_id": pa.array([b""] * n, pa.binary()),
            "name": pa.array([f"op{i % 5}" for i in range(n)], pa.string()),
            "kind": pa.array([2] * n, pa.int8()),
            "duration_ns": pa.array(rng.integers(1_000, 1_000_000, n), pa.int64()),
            "status_code": pa.array([0] * n, pa.int8()),
            "status_message": pa.array([""] * n, pa.string()),
            "service_name": pa.array(svc, pa.string()).dictionary_encode(),
            "resource": pa.array([s.encode() * 3 for s in svc], pa.binary()).dictionary_encode(),
            "scope": pa.array([b"scope"] * n, pa.binary()).dictionary_encode(),
            "attrs": pa.array([rng.bytes(20) for _ in range(n)], pa.binary()),
        },
        schema=SPAN_SCHEMA,
    )


def numbers(tables) -> list[int]:
    """Every ``n`` in the scanned toy tables, sorted (duplicates kept)."""
    out: list[int] = []
    for t in tables:
        out.extend(t.column("n").to_pylist())
    return sorted(out)


@pytest.fixture
def make_store(tmp_path):
    """``make_store(**config) -> open Store`` on tmp_path (local object store); closed at teardown."""
    stores: list[Store] = []

    def make(data_dir: Path | None = None, objstore=None, signals=None, **cfg) -> Store:
        data_dir = data_dir or tmp_path / "data"
        cfg.setdefault("background_interval_s", 3600)  # tests drive maintenance themselves
        store = Store(
            StoreConfig(data_dir=data_dir, **cfg),
            objstore or LocalObjectStore(data_dir / "blocks"),
            signals or [TOY],
        )
        store.open()
        stores.append(store)
        return store

    yield make
    for s in stores:
        try:
            s.close(flush=False)
        except Exception:
            pass


def simulate_crash(store: Store) -> None:
    """Drop ``store`` as a crash would: no cut, no close; just let go of its file descriptors
    (the kernel would) so the same process can open the data_dir again."""
    import os

    store._state = "closed"
    store._wake.set()
    if store._thread is not None:
        store._thread.join()
    wal = store._wal
    if wal._active is not None and wal._active.fd is not None:
        os.close(wal._active.fd)
        wal._active.fd = None
    wal._active = None
    os.close(store._lock_fd)
    store._lock_fd = None
