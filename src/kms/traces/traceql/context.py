"""Per-table evaluation state: columns as numpy, the trace index, the span tree.

Everything is computed on first use and kept for the table object (cached weakly by
identity, like ``SpanAttributes``), so repeated queries over the same table reuse it.
Times are unix nanoseconds. Trace indices (``tix``) number the distinct trace ids 0..T-1.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.traces.attributes import SpanAttributes, TableCache, dictionary_codes, take_rows

__all__ = ["SpanContext"]

# OTLP enum value -> Tempo's (statics.Status / statics.Kind) numbering
_STATUS_MAP = np.array([2, 1, 0], np.int64)  # unset, ok, error
_KIND_MAP = np.array([0, 1, 3, 2, 4, 5], np.int64)  # unspecified, internal, server, client, producer, consumer


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if col.null_count:
        col = col.fill_null(0)
    return col.to_numpy() if isinstance(col, pa.ChunkedArray) else col.to_numpy(zero_copy_only=False)


def _fixed_u64(col: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed_size_binary(8|16) column as uint64 words (n, width // 8)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    buf = arr.buffers()[1]
    words = np.frombuffer(buf, np.uint64, count=(arr.offset + len(arr)) * width // 8)
    return words.reshape(-1, width // 8)[arr.offset:]


class SpanContext:
    """Lazily computed, cached views of one span table (thread-safe for readers)."""

    _cache = TableCache()

    def __init__(self, table: pa.Table):
        self._table_ref = weakref.ref(table)
        self.n = table.num_rows
        self.attrs = SpanAttributes.for_table(table)
        self._lock = threading.RLock()

    @property
    def table(self) -> pa.Table:
        table = self._table_ref()
        if table is None:
            raise RuntimeError("BUG: span table used after it was released")
        return table

    @classmethod
    def for_table(cls, table: pa.Table) -> SpanContext:
        """The (cached) context of this table object; see ``attributes.TableCache``."""
        return cls._cache.get(table, cls)

    # -- plain columns
    @functools.cached_property
    def duration(self) -> np.ndarray:
        return np.asarray(_np(self.table.column("duration_ns")), np.int64)

    @functools.cached_property
    def start(self) -> np.ndarray:
        return np.asarray(_np(self.table.column("time_ns")), np.int64)

    @functools.cached_property
    def status(self) -> np.ndarray:
        return _STATUS_MAP[np.clip(_np(self.table.column("status_code")), 0, 2)]

    @functools.cached_property
    def kind(self) -> np.ndarray:
        return _KIND_MAP[np.clip(_np(self.table.column("kind")), 0, 5)]

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
        return self._bounds(np.arange(self.n))

    def bounds_of(self, traces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``trace_bounds`` (full length, meaningful at ``traces``) without touching other traces."""
        if "trace_bounds" in self.__dict__ or len(traces) * 8 > self.n_traces:
            return self.trace_bounds
        return self._bounds(self.rows_of(traces))

    def _bounds(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nt = self.n_traces
        tix = self.tix[rows]
        start = self.start[rows]
        first = np.full(nt, np.iinfo(np.int64).max)
        last = np.full(nt, np.iinfo(np.int64).min)
        np.minimum.at(first, tix, start)
        np.maximum.at(last, tix, start + self.duration[rows])
        root = np.full(nt, -1, np.int64)
        roots = rows[self.is_root[rows]]
        if len(roots):
            uniq, idx = np.unique(self.tix[roots], return_index=True)
            root[uniq] = roots[idx]
        return first, last, root

    @functools.cached_property
    def by_trace(self) -> np.ndarray:
        """All rows ordered by trace (then row)."""
        return np.argsort(self.tix, kind="stable")

    def rows_of(self, traces: np.ndarray) -> np.ndarray:
        """All rows of the given traces, ascending."""
        mask = np.zeros(self.n_traces, bool)
        mask[traces] = True
        return np.flatnonzero(mask[self.tix])

    # -- the span tree
    def tree(self, traces: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(parent row, connected) per row, valid for the rows of ``traces`` (None: all).

        The parent is the span with the parent id in the same trace (-1 for roots and unknown
        parents); connected means reachable from a root span, as Tempo's nested sets are.
        Computed per trace on demand, so a selective structural query touches few traces.
        """
        with self._lock:
            if "_tree" not in self.__dict__:
                self._tree = (np.full(self.n, -1, np.int64), np.zeros(self.n, bool), np.zeros(self.n_traces, bool))
            parent, connected, done = self._tree
            todo = np.flatnonzero(~done) if traces is None else np.unique(traces[~done[traces]])
            if len(todo):
                rows = np.arange(self.n) if len(todo) == self.n_traces else self.rows_of(todo)
                p, c = self._build_tree(rows)
                parent[rows], connected[rows] = p, c
                done[todo] = True
            return parent, connected

    @property
    def parent_row(self) -> np.ndarray:
        return self.tree()[0]

    @property
    def connected(self) -> np.ndarray:
        return self.tree()[1]

    def _build_tree(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Parent (as a row index) and connectedness for ``rows``, which hold whole traces."""
        ids = _fixed_u64(self.table.column("span_id"), 8)[rows, 0]
        pcol = self.table.column("parent_span_id")
        parr = take_rows(pcol, rows)
        plen = pc.binary_length(parr).to_numpy(zero_copy_only=False)
        has = np.flatnonzero(plen == 8)
        pid = np.zeros(len(rows), np.uint64)
        if len(has):
            offs = np.frombuffer(parr.buffers()[1], np.int32, count=len(parr) + 1, offset=parr.offset * 4).astype(np.int64)
            data = np.frombuffer(parr.buffers()[2], np.uint8)
            raw = np.stack([data[offs[has] + i] for i in range(8)], axis=1).copy()
            pid[has] = raw.view(np.uint64).reshape(-1)
        mix = np.uint64(0x9E3779B97F4A7C15)  # keys mix the trace in, so one hash lookup finds (trace, id)
        tix = self.tix[rows]
        salt = tix.astype(np.uint64) * mix
        local = np.full(len(rows), -1, np.int64)
        if len(has):
            found = pc.index_in(pa.array(pid[has] ^ salt[has]), value_set=pa.array(ids ^ salt))
            cand = np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
            ok = cand >= 0
            cand = np.where(ok, cand, 0)
            ok &= (ids[cand] == pid[has]) & (tix[cand] == tix[has])
            local[has[ok]] = cand[ok]
        top = np.where(local >= 0, local, np.arange(len(rows)))
        for _ in range(64):  # pointer jumping: log2(depth) rounds
            nxt = top[top]
            if np.array_equal(nxt, top):
                break
            top = nxt
        connected = plen[top] == 0
        return np.where(local >= 0, rows[np.maximum(local, 0)], -1), connected

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
