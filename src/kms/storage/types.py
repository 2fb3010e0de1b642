"""The storage engine's request and description types: the only shapes engines pass to storage."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SignalSpec", "ScanRequest", "TIME_COLUMN"]

#: Every signal schema has this int64 column: unix time in nanoseconds. The store prunes,
#: cuts blocks and applies retention by it.
TIME_COLUMN = "time_ns"


@dataclass(frozen=True)
class SignalSpec:
    """What the store needs to know about one signal (traces, logs, otlp_metrics, ...).

    ``sort_by`` orders rows inside a block (e.g. trace_id first so a trace lookup reads one
    row group); ``row_group_rows`` bounds a Parquet row group, which is the unit of pruning.
    ``bloom_column`` (a fixed_size_binary column, e.g. trace_id) gets a per-block Bloom filter
    (``bloom.bin``), so a scan filtering on ``column == v`` / ``column.isin(...)`` skips blocks
    that cannot hold the value without reading them.
    """

    name: str
    schema: pa.Schema
    sort_by: tuple[str, ...] = (TIME_COLUMN,)
    row_group_rows: int = 16_384
    bloom_column: str | None = None


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
