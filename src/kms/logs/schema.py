"""The ``logs`` signal: one row per log entry (Loki push or OTLP), Loki's data model.

- ``time_ns``: the entry's timestamp, unix nanoseconds.
- ``stream``: the canonical label text (``kms.metrics.storage.labels.labels_text``, names sorted)
  of the entry's index labels, e.g. ``{service_name="api"}``, dictionary-encoded (``TEXT``).
- ``line``: the log line.
- ``metadata``: the label text of the entry's structured metadata (``{}`` when none), without
  its record ids.
- ``ids``: the entry's record ids (``kms.logs.recordids``: an OTLP record's trace id, span id
  and observed time, 32 bytes; empty when none), part of its structured metadata when read.

Blocks are sorted by stream, then time, so the rows of one stream are contiguous: a block of
format 2 (``storage/chunks.py``) holds chunks of one stream each, and a stream selector reads
only the chunks of matching streams (format 1, Parquet rows: the row groups whose ``stream``
range holds one).
"""

from __future__ import annotations

import pyarrow as pa

from kms.logs.storage.chunks import LOG_CHUNKS
from kms.storage.types import SignalSpec

__all__ = ["LOG_SCHEMA", "LOGS", "TEXT"]

#: the stream and metadata texts, each distinct text once a table: an OTLP request's records of
#: one scope share their metadata text, every entry of a stream its stream text
TEXT = pa.dictionary(pa.int32(), pa.string())
LOG_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("stream", TEXT),
        ("line", pa.string()),
        ("metadata", TEXT),
        ("ids", pa.binary()),
    ]
)

# Blocks are written as zstd chunks of lines with trigram signatures (``storage/chunks.py``,
# format 2); the Parquet options below are those of format-1 blocks, which stay readable.
LOGS = SignalSpec(
    name="logs",
    schema=LOG_SCHEMA,
    sort_by=("stream", "time_ns"),
    row_group_rows=65_536,
    column_encoding={"time_ns": "DELTA_BINARY_PACKED"},
    dictionary_columns=("stream", "metadata"),
    block_format=LOG_CHUNKS,
)
