"""Per-table evaluation state: columns as numpy, the trace index, the span tree.

Everything is computed on first use and kept for the table object (cached weakly by
identity, like ``SpanAttributes``), so repeated queries over the same table reuse it.
Times are unix nanoseconds. Trace indices (``tix``) number the distinct trace ids 0..T-1.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.traces.attributes import SpanAttributes, dictionary_codes

__all__ = ["SpanContext"]

# OTLP enum value -> Tempo's (statics.Status / statics.Kind) numbering
_STATUS_MAP = np.array([2, 1, 0], np.int64)  # unset, ok, error
_KIND_MAP = np.array([0, 1, 3, 2, 4, 5], np.int64)  # unspecified, internal, server, client, producer, consumer


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.fill_null(0).to_numpy(zero_copy_only=False)


def _fixed_u64(col: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed_size_binary(8|16) column as uint64 words (n, width // 8)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    buf = arr.buffers()[1]
    words = np.frombuffer(buf, np.uint64, count=(arr.offset + len(arr)) * width // 8)
    return words.reshape(-1, width // 8)[arr.offset:]


class SpanContext:
    """Lazily computed, cached views of one span table (thread-safe for readers)."""

    _cache: OrderedDict[int, tuple[weakref.ref, SpanContext]] = OrderedDict()
    _cache_lock = threading.Lock()

    def __init__(self, table: pa.Table):
        self.table = table
        self.n = table.num_rows
        self.attrs = SpanAttributes.for_table(table)
        self._lock = threading.RLock()

    @classmethod
    def for_table(cls, table: pa.Table) -> SpanContext:
        key = id(table)
        with cls._cache_lock:
            hit = cls._cache.get(key)
            if hit is not None and hit[0]() is table:
                cls._cache.move_to_end(key)
                return hit[1]
            inst = cls(table)
            cls._cache[key] = (weakref.ref(table), inst)
            while len(cls._cache) > 8:
                cls._cache.popitem(last=False)
            return inst

    # -- plain columns
    @functools.cached_property
    def duration(self) -> np.ndarray:
        return _np(self.table.column("duration_ns")).astype(np.int64)

    @functools.cached_property
    def start(self) -> np.ndarray:
        return _np(self.table.column("time_ns")).astype(np.int64)

    @functools.cached_property
    def status(self) -> np.ndarray:
        return _STATUS_MAP[np.clip(_np(self.table.column("status_code")).astype(np.int64), 0, 2)]

    @functools.cached_property
    def kind(self) -> np.ndarray:
        return _KIND_MAP[np.clip(_np(self.table.column("kind")).astype(np.int64), 0, 5)]

    @functools.cached_property
    def otlp_error(self) -> np.ndarray:
        return _np(self.table.column("status_code")) == 2

    def _encoded(self, name: str) -> tuple[np.ndarray, pa.Array]:
        col = self.table.column(name)
        enc = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
        return enc.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32), enc.dictionary

    @functools.cached_property
    def name(self) -> tuple[np.ndarray, pa.Array]:
        return self._encoded("name")

    @functools.cached_property
    def status_message(self) -> tuple[np.ndarray, pa.Array]:
        return self._encoded("status_message")

    @functools.cached_property
    def service(self) -> tuple[np.ndarray, list[str]]:
        return dictionary_codes(self.table.column("service_name"))

    # -- traces
    @functools.cached_property
    def _traces(self) -> tuple[np.ndarray, pa.Array]:
        col = self.table.column("trace_id")
        enc = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
        return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary

    @property
    def tix(self) -> np.ndarray:
        """Trace index per row."""
        return self._traces[0]

    @property
    def n_traces(self) -> int:
        return len(self._traces[1])

    def trace_id(self, t: int) -> bytes:
        return self._traces[1][t].as_py()

    @functools.cached_property
    def is_root(self) -> np.ndarray:
        return _np(pc.binary_length(self.table.column("parent_span_id"))) == 0

    @functools.cached_property
    def trace_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per trace: (first start, last end, root row or -1); root = first root span by row."""
        nt = self.n_traces
        first = np.full(nt, np.iinfo(np.int64).max)
        last = np.full(nt, np.iinfo(np.int64).min)
        np.minimum.at(first, self.tix, self.start)
        np.maximum.at(last, self.tix, self.start + self.duration)
        root = np.full(nt, -1, np.int64)
        roots = np.flatnonzero(self.is_root)
        if len(roots):
            uniq, idx = np.unique(self.tix[roots], return_index=True)
            root[uniq] = roots[idx]
        return first, last, root

    def rows_of(self, traces: np.ndarray) -> np.ndarray:
        """All rows of the given traces, ascending."""
        mask = np.zeros(self.n_traces, bool)
        mask[traces] = True
        return np.flatnonzero(mask[self.tix])

    # -- the span tree
    @functools.cached_property
    def parent_row(self) -> np.ndarray:
        """Row of each span's parent in the same trace, -1 for roots and unknown parents."""
        span = _fixed_u64(self.table.column("span_id"), 8)[:, 0]
        pcol = self.table.column("parent_span_id")
        parr = pcol.combine_chunks() if isinstance(pcol, pa.ChunkedArray) else pcol
        has = (_np(pc.binary_length(parr)) == 8)
        offs = np.frombuffer(parr.buffers()[1], np.int32, count=len(parr) + 1, offset=parr.offset * 4).astype(np.int64)
        data = np.frombuffer(parr.buffers()[2], np.uint8) if parr.buffers()[2] is not None else np.zeros(8, np.uint8)
        rows = np.flatnonzero(has)
        parent = np.zeros(self.n, np.uint64)
        if len(rows):
            raw = np.stack([data[offs[rows] + i] for i in range(8)], axis=1).copy()
            parent[rows] = raw.view(np.uint64).reshape(-1)
        mix = np.uint64(0x9E3779B97F4A7C15)
        tix = self.tix.astype(np.uint64)
        key = span ^ (tix * mix)
        order = np.argsort(key, kind="stable")
        skey = key[order]
        want = parent ^ (tix * mix)
        pos = np.minimum(np.searchsorted(skey, want), max(self.n - 1, 0))
        cand = order[pos] if self.n else pos
        ok = has & (skey[pos] == want) & (span[cand] == parent) & (self.tix[cand] == self.tix)
        return np.where(ok, cand, -1)

    @functools.cached_property
    def connected(self) -> np.ndarray:
        """Whether a span is reachable from a root span (Tempo's nested sets only cover those)."""
        top = np.where(self.parent_row >= 0, self.parent_row, np.arange(self.n))
        for _ in range(64):
            nxt = top[top]
            if np.array_equal(nxt, top):
                break
            top = nxt
        return self.is_root[top] if self.n else np.zeros(0, bool)

    @functools.cached_property
    def child_count(self) -> np.ndarray:
        p = self.parent_row
        return np.bincount(p[p >= 0], minlength=self.n).astype(np.int64)

    def nested_sets(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tempo's nestedSetLeft/Right/Parent for the rows (0 when not connected; parent -1 for
        roots), numbered depth first per trace with children in row order."""
        with self._lock:
            cache: dict[int, tuple[int, int, int]] = self.__dict__.setdefault("_nested", {})
            traces = np.unique(self.tix[rows])
            todo = [t for t in traces.tolist() if t not in self.__dict__.setdefault("_nested_done", set())]
            if todo:
                self._number(np.asarray(todo, np.int64), cache)
                self.__dict__["_nested_done"].update(todo)
        out = np.array([cache.get(int(r), (0, 0, 0)) for r in rows], np.int64).reshape(-1, 3)
        return out[:, 0], out[:, 1], out[:, 2]

    def _number(self, traces: np.ndarray, cache: dict[int, tuple[int, int, int]]) -> None:
        rows = self.rows_of(traces)
        parent, roots = self.parent_row, self.is_root
        children: dict[int, list[int]] = {}
        by_trace: dict[int, list[int]] = {}
        for r in rows.tolist():
            p = int(parent[r])
            if p >= 0:
                children.setdefault(p, []).append(r)
            elif roots[r]:
                by_trace.setdefault(int(self.tix[r]), []).append(r)
        for root_rows in by_trace.values():
            bound = 1
            for root in root_rows:
                stack: list[tuple[int, Any]] = [(root, None)]
                left: dict[int, int] = {}
                while stack:
                    node, it = stack.pop()
                    if it is None:
                        left[node] = bound
                        bound += 1
                        it = iter(children.get(node, ()))
                    child = next(it, None)
                    if child is None:
                        p = int(parent[node])
                        cache[node] = (left[node], bound, left[p] if p >= 0 else -1)
                        bound += 1
                    else:
                        stack.append((node, it))
                        stack.append((child, None))
