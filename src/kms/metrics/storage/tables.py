"""The ``samples`` and ``exemplars`` signals and the tables a ``SampleBatch`` becomes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from kms.metrics.samples import Labels, SampleBatch
from kms.metrics.storage.labels import cached_labels_text, labels_text
from kms.storage import SignalSpec

__all__ = [
    "SAMPLE_SCHEMA",
    "EXEMPLAR_SCHEMA",
    "SAMPLES",
    "EXEMPLARS",
    "NS_PER_MS",
    "samples_table",
    "exemplars_table",
]

_DICT = pa.dictionary(pa.int32(), pa.string())
NS_PER_MS = 1_000_000

# ``metric`` is a plain string in Arrow (Parquet still dictionary-encodes it on disk: ~0.01 B a
# sample): pyarrow's row-group pruning ignores the statistics of dictionary-typed columns, so a
# dictionary ``metric`` would make every ``__name__`` lookup read every row group.
SAMPLE_SCHEMA = pa.schema(
    [("time_ns", pa.int64()), ("metric", pa.string()), ("series", _DICT), ("value", pa.float64())]
)
EXEMPLAR_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("metric", pa.string()),
        ("series", _DICT),
        ("labels", pa.string()),
        ("value", pa.float64()),
    ]
)

# Per-column Parquet encodings (a writer choice; FORMAT.md "Blocks"). Rows are sorted by series
# then time, so ``time_ns`` is a run of near-constant deltas per series (DELTA_BINARY_PACKED:
# ~0.01 B a sample instead of ~0.6) and ``value`` is slowly changing floats (BYTE_STREAM_SPLIT
# puts the similar sign/exponent/high mantissa bytes together for zstd: 9.4 -> 6.0 B a sample
# for noisy float counters, ~0.9 for whole-number ones). Only ``metric`` and ``series`` are
# dictionary-encoded (an explicit encoding excludes the dictionary). Exemplar ``labels`` (mostly
# unique trace ids) gain nothing from a dictionary either.
_ENCODINGS = {"time_ns": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"}

# Sorted by metric first so a ``__name__`` lookup touches few row groups (min/max statistics).
SAMPLES = SignalSpec(
    "samples",
    SAMPLE_SCHEMA,
    sort_by=("metric", "series", "time_ns"),
    row_group_rows=65_536,
    column_encoding=_ENCODINGS,
    dictionary_columns=("metric", "series"),
)
EXEMPLARS = SignalSpec(
    "exemplars",
    EXEMPLAR_SCHEMA,
    sort_by=("metric", "series", "time_ns"),
    column_encoding=_ENCODINGS,
    dictionary_columns=("metric", "series"),
)


def _series_columns(series: list[Labels], idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """The ``metric`` (string) and ``series`` (dictionary) columns of rows pointing at ``series[idx]``."""
    texts = pa.array([cached_labels_text(ls) for ls in series], pa.string())
    names = pa.array([dict(ls).get("__name__", "") for ls in series], pa.string())
    indices = pa.array(idx, pa.int32())
    return names.take(indices), pa.DictionaryArray.from_arrays(indices, texts)


def samples_table(batch: SampleBatch) -> pa.Table:
    """The ``samples`` rows of a batch (request order; the store sorts blocks)."""
    idx = np.asarray(batch.series_idx, dtype=np.int32)
    metric, series = _series_columns(batch.series, idx)
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(batch.ts_ms, dtype=np.int64) * NS_PER_MS, pa.int64()),
            metric,
            series,
            pa.array(np.asarray(batch.values, dtype=np.float64), pa.float64()),
        ],
        schema=SAMPLE_SCHEMA,
    )


def exemplars_table(batch: SampleBatch) -> pa.Table | None:
    """The ``exemplars`` rows of a batch, or None when it has none."""
    if not batch.exemplars:
        return None
    exs = batch.exemplars
    idx = np.fromiter((e.series for e in exs), dtype=np.int32, count=len(exs))
    used, local = np.unique(idx, return_inverse=True)  # only the series exemplars point at
    metric, series = _series_columns([batch.series[i] for i in used], local.astype(np.int32))
    return pa.Table.from_arrays(
        [
            pa.array(np.fromiter((e.ts_ms for e in exs), dtype=np.int64, count=len(exs)) * NS_PER_MS),
            metric,
            series,
            pa.array([labels_text(e.labels) for e in exs], pa.string()),
            pa.array(np.fromiter((e.value for e in exs), dtype=np.float64, count=len(exs))),
        ],
        schema=EXEMPLAR_SCHEMA,
    )
