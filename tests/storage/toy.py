"""The toy signal used by the storage tests (also imported by the crash-writer subprocess)."""

from __future__ import annotations

import pyarrow as pa

from kms.storage import SignalSpec

TOY_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("n", pa.int64()),  # a unique row number: the tests' way to count rows exactly
        ("host", pa.dictionary(pa.int32(), pa.string())),
        ("value", pa.float64()),
    ]
)
TOY = SignalSpec("toy", TOY_SCHEMA, sort_by=("host", "time_ns"), row_group_rows=64)


def toy_rows(ns, times=None, hosts=None) -> pa.Table:
    """Toy rows numbered ``ns``; time_ns defaults to 1000 * n; host cycles h0..h2."""
    ns = list(ns)
    times = [1000 * n for n in ns] if times is None else list(times)
    hosts = [f"h{n % 3}" for n in ns] if hosts is None else list(hosts)
    return pa.table(
        {
            "time_ns": pa.array(times, pa.int64()),
            "n": pa.array(ns, pa.int64()),
            "host": pa.array(hosts, pa.string()).dictionary_encode(),
            "value": pa.array([float(n) / 2 for n in ns], pa.float64()),
        }
    )
