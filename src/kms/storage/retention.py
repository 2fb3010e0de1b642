"""Retention: what is older than ``now - retention_s`` goes (blocks whole, head rows at cut time),
and for signals bounded by row count, the oldest blocks beyond the newest ``max_rows`` rows."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from kms.storage.block import Block
from kms.storage.types import TIME_COLUMN

__all__ = ["cutoff_ns", "expired_blocks", "surplus_blocks", "drop_expired_rows"]


def cutoff_ns(retention_s: float | None, now_ns: int | None = None) -> int | None:
    """Rows with time_ns below this are expired (unix ns); None when data is kept forever."""
    if not retention_s:
        return None
    return (time.time_ns() if now_ns is None else now_ns) - int(retention_s * 1e9)


def expired_blocks(blocks: Sequence[Block], cutoff: int | None) -> list[Block]:
    """Blocks whose newest row is older than ``cutoff``."""
    if cutoff is None:
        return []
    return [b for b in blocks if b.meta.max_time_ns < cutoff]


def surplus_blocks(blocks: Sequence[Block], max_rows: int, head_rows: int = 0) -> list[Block]:
    """Blocks (oldest by newest row) not needed to keep the newest ``max_rows`` rows, counting the
    ``head_rows`` first: the bound holds to within one block (Mimir's per-tenant exemplar limit)."""
    kept, out = head_rows, []
    for b in sorted(blocks, key=lambda b: b.meta.max_time_ns, reverse=True):
        if kept >= max_rows:
            out.append(b)
        kept += b.meta.rows
    return out


def drop_expired_rows(table: pa.Table, cutoff: int | None) -> pa.Table:
    if cutoff is None or table.num_rows == 0:
        return table
    return table.filter(pc.greater_equal(table.column(TIME_COLUMN), cutoff))
