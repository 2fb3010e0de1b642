"""The storage engine's request and description types: the only shapes engines pass to storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SignalSpec", "ScanRequest", "BlockFormat", "TIME_COLUMN", "PARQUET_ENCODINGS"]

#: Every signal schema has this int64 column: unix time in nanoseconds. The store prunes,
#: cuts blocks and applies retention by it.
TIME_COLUMN = "time_ns"

#: Parquet encodings ``SignalSpec.column_encoding`` may ask for (what pyarrow's writer accepts).
#: PLAIN: raw values. DELTA_BINARY_PACKED: int32/int64 as bit-packed deltas (sorted times).
#: BYTE_STREAM_SPLIT: floats (and fixed-width ints) byte-transposed, so zstd sees the slowly
#: changing high bytes together. DELTA_LENGTH_BYTE_ARRAY / DELTA_BYTE_ARRAY: strings/binary.
PARQUET_ENCODINGS = frozenset(
    {"PLAIN", "DELTA_BINARY_PACKED", "BYTE_STREAM_SPLIT", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY"}
)


class BlockFormat(Protocol):
    """A signal's own block data layout instead of the default Parquet rows (``block.py``).

    ``version`` is the ``format_version`` its blocks record in meta.json (unique across formats);
    ``encode`` turns a sorted block table into the bytes of ``data.parquet`` (rows in any order
    if the format says ``sorts_itself = True``: it then sorts by ``sort_by`` itself); ``reader`` returns
    an object with the ``ParquetBlockReaderV1`` methods ``scan``, ``read_all`` and ``row_groups``.
    Optionally ``merge(blocks) -> pa.Buffer | None``: the data of one block holding all rows of
    ``blocks`` without decoding them (compaction), or None to decode and encode them instead.
    Blocks of the default format (version 1) stay readable whatever the signal writes now."""

    version: int

    def encode(self, table: pa.Table, spec: SignalSpec) -> pa.Buffer: ...

    def reader(self, objstore: Any, meta: Any, spec: SignalSpec) -> Any: ...


@dataclass(frozen=True)
class SignalSpec:
    """What the store needs to know about one signal (traces, logs, otlp_metrics, ...).

    ``sort_by`` orders rows inside a block (e.g. trace_id first so a trace lookup reads one
    row group); ``row_group_rows`` bounds a Parquet row group, which is the unit of pruning.
    ``bloom_column`` (a fixed_size_binary column, e.g. trace_id) gets a per-block Bloom filter
    (``bloom.bin``), so a scan filtering on ``column == v`` / ``column.isin(...)`` skips blocks
    that cannot hold the value without reading them.

    ``column_encoding`` (column -> Parquet encoding, e.g. ``{"time_ns": "DELTA_BINARY_PACKED",
    "value": "BYTE_STREAM_SPLIT"}``) and ``dictionary_columns`` (the columns Parquet may
    dictionary-encode; None = every column, pyarrow's default) are a writer choice only: any
    Parquet reader decodes them, so blocks written with or without them read the same. A column
    with an explicit encoding must not be dictionary-encoded (left out of ``dictionary_columns``,
    and not an Arrow dictionary type). Dictionary-typed Arrow columns are always
    dictionary-encoded, whatever ``dictionary_columns`` says.

    ``compaction_target_rows`` overrides the store's merged-block size for signals with small
    rows (samples: fewer, bigger blocks mean fewer per-block steps in every query).

    ``block_format`` (optional) writes new blocks in the signal's own layout (``BlockFormat``).
    """

    name: str
    schema: pa.Schema
    sort_by: tuple[str, ...] = (TIME_COLUMN,)
    row_group_rows: int = 16_384
    bloom_column: str | None = None
    column_encoding: Mapping[str, str] = field(default_factory=dict, hash=False)
    dictionary_columns: tuple[str, ...] | None = None
    compaction_target_rows: int | None = None  # merged block size; None = StoreConfig's
    block_format: BlockFormat | None = field(default=None, compare=False, hash=False)  # None = Parquet rows

    def __post_init__(self) -> None:
        enc = {str(k): str(v).upper() for k, v in dict(self.column_encoding).items()}
        object.__setattr__(self, "column_encoding", MappingProxyType(enc))
        if self.dictionary_columns is not None:
            object.__setattr__(self, "dictionary_columns", tuple(self.dictionary_columns))
        names = set(self.schema.names)
        unknown = [c for c in (*enc, *(self.dictionary_columns or ())) if c not in names]
        if unknown:
            raise ValueError(f"signal {self.name}: column_encoding/dictionary_columns name unknown columns {unknown}")
        bad = {c: e for c, e in enc.items() if e not in PARQUET_ENCODINGS}
        if bad:
            raise ValueError(f"signal {self.name}: unsupported Parquet encodings {bad}; use {sorted(PARQUET_ENCODINGS)}")
        for c in enc:
            if pa.types.is_dictionary(self.schema.field(c).type) or (
                self.dictionary_columns is None or c in self.dictionary_columns
            ):
                raise ValueError(
                    f"signal {self.name}: column {c!r} has an explicit encoding, so it must not be "
                    "dictionary-encoded (leave it out of dictionary_columns; not a dictionary type)"
                )

    def parquet_options(self) -> dict:
        """The ``pq.write_table`` keywords for the encodings: empty when none are set (pyarrow's defaults)."""
        opts: dict = {}
        if self.dictionary_columns is not None:
            opts["use_dictionary"] = list(self.dictionary_columns)
        if self.column_encoding:
            opts["column_encoding"] = dict(self.column_encoding)
        return opts


@dataclass(frozen=True)
class ScanRequest:
    """One read of one signal for one tenant.

    ``start_ns``/``end_ns`` bound ``time_ns`` inclusively; None means unbounded.
    ``filter`` must be honoured by the store (rows not matching it are never returned);
    statistics-based pruning by ``filter`` is a hint the store may use.
    ``columns`` limits the columns read (None = all); the store always keeps ``time_ns``.
    """

    tenant: str
    signal: str
    start_ns: int | None = None
    end_ns: int | None = None
    filter: pc.Expression | None = None
    columns: tuple[str, ...] | None = None
    hints: dict = field(default_factory=dict)
