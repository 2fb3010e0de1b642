"""Trace reads over the store: one trace by id, and the span table a search runs over."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from kms.storage.types import ScanRequest
from kms.traces.schema import SPAN_SCHEMA, TRACES

__all__ = ["find_trace", "spans_in_range"]


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return SPAN_SCHEMA.empty_table()
    t = pa.concat_tables(tables, promote_options="none") if len(tables) > 1 else tables[0]
    return t.unify_dictionaries() if len(tables) > 1 else t


def find_trace(store, tenants: list[str], trace_id: bytes, start_ns: int | None = None,
               end_ns: int | None = None) -> pa.Table:
    """Every span of one trace (over the given tenants); an empty table when there is none.
    Spans seen twice (a client retrying an export) are returned once."""
    flt = pc.field("trace_id") == pa.scalar(trace_id, pa.binary(16))
    tables = []
    for tenant in tenants:
        tables += list(store.scan(ScanRequest(tenant, TRACES.name, start_ns, end_ns, flt)))
    t = _concat(tables)
    if t.num_rows > 1:
        t = _dedup_spans(t)
    return t


def _dedup_spans(t: pa.Table) -> pa.Table:
    """One row per (span id, start time); a trace is small, so a set is fine here."""
    seen: set[tuple[bytes, int]] = set()
    keep = []
    for i, key in enumerate(zip(t["span_id"].to_pylist(), t["time_ns"].to_pylist(), strict=True)):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return t if len(keep) == t.num_rows else t.take(keep)


def spans_in_range(store, tenants: list[str], start_ns: int | None, end_ns: int | None,
                   columns: tuple[str, ...] | None = None) -> pa.Table:
    tables = []
    for tenant in tenants:
        tables += list(store.scan(ScanRequest(tenant, TRACES.name, start_ns, end_ns, None, columns)))
    return _concat(tables)
