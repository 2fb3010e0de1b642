"""The ``samples`` and ``exemplars`` signals and the tables a ``SampleBatch`` becomes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.metrics.samples import Labels, SampleBatch
from kms.metrics.storage.decimal import from_decimal, to_decimal
from kms.metrics.storage.labels import cached_labels_text, labels_text
from kms.storage import SignalSpec

__all__ = [
    "SAMPLE_SCHEMA",
    "EXEMPLAR_SCHEMA",
    "SAMPLES",
    "EXEMPLARS",
    "NS_PER_MS",
    "samples_table",
    "sample_values",
    "exemplars_table",
]

_DICT = pa.dictionary(pa.int32(), pa.string())
NS_PER_MS = 1_000_000

# ``metric`` is a plain string in Arrow (Parquet still dictionary-encodes it on disk: ~0.01 B a
# sample): pyarrow's row-group pruning ignores the statistics of dictionary-typed columns, so a
# dictionary ``metric`` would make every ``__name__`` lookup read every row group.
# A value is either ``value_int / 10**value_scale`` (``value`` null) or ``value`` (``value_int``
# null); see ``decimal.py``. Blocks written before ``value_int`` existed have ``value`` only.
SAMPLE_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("metric", pa.string()),
        ("series", _DICT),
        ("value", pa.float64()),
        ("value_int", pa.int64()),
        ("value_scale", pa.int8()),
    ]
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
# ~0.01 B a sample instead of ~0.6), and so is ``value_int`` for counters (DELTA_BINARY_PACKED)
# while gauges repeat; float ``value``s are slowly changing floats (BYTE_STREAM_SPLIT puts the
# similar sign/exponent/high mantissa bytes together for zstd: 9.4 -> 6.0 B a sample for noisy
# float counters). ``metric``, ``series`` and ``value_scale`` (one per run) are dictionary-encoded
# (an explicit encoding excludes the dictionary). Exemplar ``labels`` (mostly unique trace ids)
# gain nothing from a dictionary either.
_ENCODINGS = {"time_ns": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT", "value_int": "DELTA_BINARY_PACKED"}

# Sorted by metric first so a ``__name__`` lookup touches few row groups (min/max statistics).
SAMPLES = SignalSpec(
    "samples",
    SAMPLE_SCHEMA,
    sort_by=("metric", "series", "time_ns"),
    row_group_rows=65_536,
    column_encoding=_ENCODINGS,
    dictionary_columns=("metric", "series", "value_scale"),
    # 1M rows (~25 min of 10k series at 15 s): a 24 h dashboard query visits ~60 blocks, not
    # ~115; a merge takes ~1.5 s (2M rows took 3.6 s, long enough for a busy head to reach its
    # limit meanwhile) and holds ~130 MB of Arrow columns for a moment.
    compaction_target_rows=1_000_000,
)
EXEMPLARS = SignalSpec(
    "exemplars",
    EXEMPLAR_SCHEMA,
    sort_by=("metric", "series", "time_ns"),
    column_encoding={"time_ns": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
    dictionary_columns=("metric", "series"),
)


def _series_columns(
    series: list[Labels], idx: np.ndarray, columns: tuple[pa.Array, pa.Array] | None = None
) -> tuple[pa.Array, pa.Array]:
    """The ``metric`` (string) and ``series`` (dictionary) columns of rows pointing at ``series[idx]``.
    ``columns``: the texts and names of ``series`` when the caller has them (a tenant's
    ``TenantSeries``), else they are derived from the label sets."""
    if columns is None:
        texts = pa.array([cached_labels_text(ls) for ls in series], pa.string())
        names = pa.array([dict(ls).get("__name__", "") for ls in series], pa.string())
    else:
        texts, names = columns
    indices = pa.array(idx, pa.int32())
    return names.take(indices), pa.DictionaryArray.from_arrays(indices, texts)


def samples_table(batch: SampleBatch, columns: tuple[pa.Array, pa.Array] | None = None) -> pa.Table:
    """The ``samples`` rows of a batch (request order; the store sorts blocks). ``columns``: the
    ``series`` texts and ``metric`` names of ``batch.series``, if known (``Admitted.columns``)."""
    idx = np.asarray(batch.series_idx, dtype=np.int32)
    metric, series = _series_columns(batch.series, idx, columns)
    values = np.asarray(batch.values, dtype=np.float64)
    is_int, ints, scale = to_decimal(values, idx, len(batch.series))
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(batch.ts_ms, dtype=np.int64) * NS_PER_MS, pa.int64()),
            metric,
            series,
            pa.array(values, pa.float64(), mask=is_int),
            pa.array(ints, pa.int64(), mask=~is_int),
            pa.array(scale, pa.int8()),
        ],
        schema=SAMPLE_SCHEMA,
    )


def sample_values(table: pa.Table) -> np.ndarray:
    """The float64 values of ``samples`` rows (blocks from before ``value_int`` included)."""
    floats = pc.fill_null(table.column("value"), 0.0).to_numpy()
    if "value_int" not in table.column_names:
        return floats
    vi = table.column("value_int")
    if not vi.null_count < len(vi):
        return floats
    is_int = pc.is_valid(vi).to_numpy(zero_copy_only=False)
    ints = pc.fill_null(vi, 0).to_numpy()
    return from_decimal(is_int, ints, table.column("value_scale").to_numpy(), floats)


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
