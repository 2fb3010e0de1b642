"""The ``histograms`` signal: native-histogram samples, one row per sample.

Native histograms are few next to float samples, so they live in a signal of their own (the
float path stays as it is) with the histogram in one binary column. The encoding, version 1,
little-endian: ``B`` version, ``b`` schema, ``B`` counter-reset hint, four ``d`` (zero threshold,
zero count, count, sum), three ``I`` (custom bounds, positive buckets, negative buckets), then the
custom bounds as ``d``, and per bucket side the indexes as ``i`` followed by the counts as ``d``.
Counts are absolute floats (integer histograms are converted on ingest, as PromQL does).
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

from kms.metrics.promql.nativehist import HINTS, FloatHistogram
from kms.metrics.samples import Labels
from kms.metrics.storage.labels import cached_labels_text
from kms.storage import SignalSpec

__all__ = ["HISTOGRAM_SCHEMA", "HISTOGRAMS", "encode", "decode", "histograms_table"]

_HEAD = struct.Struct("<BbBddddIII")
_VERSION = 1

HISTOGRAM_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("metric", pa.string()),
        ("series", pa.dictionary(pa.int32(), pa.string())),
        ("histogram", pa.binary()),
    ]
)

HISTOGRAMS = SignalSpec(
    "histograms",
    HISTOGRAM_SCHEMA,
    sort_by=("metric", "series", "time_ns"),
    row_group_rows=65_536,
    column_encoding={"time_ns": "DELTA_BINARY_PACKED"},
    dictionary_columns=("metric", "series"),
)


def encode(h: FloatHistogram) -> bytes:
    pos = sorted(h.pos.items())
    neg = sorted(h.neg.items())
    parts = [
        _HEAD.pack(
            _VERSION,
            h.schema,
            HINTS.index(h.hint),
            h.zero_threshold,
            h.zero_count,
            h.count,
            h.sum,
            len(h.custom_values),
            len(pos),
            len(neg),
        ),
        struct.pack(f"<{len(h.custom_values)}d", *h.custom_values),
    ]
    for side in (pos, neg):
        parts.append(struct.pack(f"<{len(side)}i", *(i for i, _ in side)))
        parts.append(struct.pack(f"<{len(side)}d", *(c for _, c in side)))
    return b"".join(parts)


def decode(data: bytes) -> FloatHistogram:
    version, schema, hint, zt, zc, count, total, n_cv, n_pos, n_neg = _HEAD.unpack_from(data)
    if version != _VERSION:
        raise ValueError(f"unknown histogram encoding version {version}")
    off = _HEAD.size
    cv = struct.unpack_from(f"<{n_cv}d", data, off)  # struct beats numpy for arrays this small
    off += 8 * n_cv
    sides = []
    for n in (n_pos, n_neg):
        idx = struct.unpack_from(f"<{n}i", data, off)
        off += 4 * n
        counts = struct.unpack_from(f"<{n}d", data, off)
        off += 8 * n
        sides.append(dict(zip(idx, counts, strict=True)))
    return FloatHistogram(schema, zt, zc, count, total, sides[0], sides[1], cv, HINTS[hint])


def histograms_table(series: list[Labels], items: list[tuple[int, int, FloatHistogram]]) -> pa.Table:
    """Rows for ``items`` of (index into ``series``, time in ms, histogram)."""
    idx = np.fromiter((i for i, _, _ in items), dtype=np.int32, count=len(items))
    used, local = np.unique(idx, return_inverse=True)
    texts = pa.array([cached_labels_text(series[i]) for i in used.tolist()], pa.string())
    names = pa.array([dict(series[i]).get("__name__", "") for i in used.tolist()], pa.string())
    indices = pa.array(local.astype(np.int32), pa.int32())
    return pa.Table.from_arrays(
        [
            pa.array(np.fromiter((t for _, t, _ in items), dtype=np.int64, count=len(items)) * 1_000_000),
            names.take(indices),
            pa.DictionaryArray.from_arrays(indices, texts),
            pa.array([encode(h) for _, _, h in items], pa.binary()),
        ],
        schema=HISTOGRAM_SCHEMA,
    )
