"""``SampleCache``: decoded ``samples`` blocks held in memory for PromQL selects.

Reading a Parquet row group to pick a few series out of it costs ~2 ms, and a dashboard query
makes several selects over several blocks: that, not evaluation, was most of a query's time.
So each block is decoded once into numpy arrays and kept (blocks never change; a compacted
block is a new id), least recently used first out past ``budget_bytes``:

- the block's rows are sorted by series then time, so each series is one run of rows;
- ``gids`` holds the run's series id in the tenant's ``SeriesIndex``, ``starts`` its first row;
- ``key = run * span + (t - t0)`` (ms) is one int64 that increases over the whole block, so the
  rows of any set of runs within any time range are found with two ``searchsorted`` calls
  (no per-series Python); ``values`` are the float64 values. 16 bytes a sample.

The head (recent, not yet cut) is kept per tenant as a ``HeadSamples``: the same sorted form
over a few segments of its rows, extended as entries arrive and rebuilt after a cut.

Rows whose ``key`` would not fit in int64 (a span of centuries) are kept as ``RowSamples`` and
selected with a mask. Locking: the LRU and index creation take the cache lock; decoding runs outside it
(two queries may decode the same block; one copy is kept).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kms.metrics.storage.index import SeriesIndex
from kms.metrics.storage.tables import NS_PER_MS, sample_values
from kms.storage.block import Block

__all__ = ["SampleCache", "BlockSamples", "RowSamples", "HeadSamples", "build_samples", "decode_block", "gather_runs"]


@dataclass(frozen=True, slots=True)
class BlockSamples:
    t0: int  # ms
    span: int  # ms; key = run * span + (t - t0)
    gids: np.ndarray  # int64, per run
    starts: np.ndarray  # int64, per run, plus one past the last row
    key: np.ndarray  # int64, per row
    values: np.ndarray  # float64, per row
    by_gid: np.ndarray  # run numbers ordered by gid, to find a few series without a full scan
    sorted_gids: np.ndarray  # gids[by_gid]

    @property
    def nbytes(self) -> int:
        return self.gids.nbytes + self.starts.nbytes + self.key.nbytes + self.values.nbytes + 2 * self.by_gid.nbytes

    def select(
        self, keep: np.ndarray, start_ms: int, end_ms: int, ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """``(ids, t_ms, values)`` of the rows of series with ``keep[id]`` in [start_ms, end_ms].
        ``ids`` (sorted, optional) are the ids ``keep`` marks: when they are few, their runs are
        found by binary search instead of a look at every run of the block."""
        lo_t, hi_t = max(start_ms - self.t0, 0), min(end_ms - self.t0, self.span - 1)
        if lo_t > hi_t or not len(keep):
            return _EMPTY
        if ids is not None and 8 * len(ids) < len(self.gids):
            pos = np.minimum(np.searchsorted(self.sorted_gids, ids), len(self.sorted_gids) - 1)
            runs = np.sort(self.by_gid[pos[self.sorted_gids[pos] == ids]])
        else:
            runs = np.flatnonzero(keep[self.gids])
        if not len(runs):
            return _EMPTY
        base = runs * self.span
        lo = np.searchsorted(self.key, base + lo_t, "left")
        hi = np.searchsorted(self.key, base + hi_t, "right")
        idx, lens = gather_runs(lo, hi)
        if not len(idx):
            return _EMPTY
        return (
            np.repeat(self.gids[runs], lens),
            self.key[idx] - np.repeat(base, lens) + self.t0,
            self.values[idx],
        )


_EMPTY = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


@dataclass(frozen=True, slots=True)
class RowSamples:
    """Rows selected by a mask over all of them (for the rare rows whose ``key`` would overflow)."""

    gids: np.ndarray
    t: np.ndarray
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.gids.nbytes + self.t.nbytes + self.values.nbytes

    def select(self, keep: np.ndarray, start_ms: int, end_ms: int) -> tuple[np.ndarray, ...]:
        hit = keep[self.gids] & (self.t >= start_ms) & (self.t <= end_ms)
        return self.gids[hit], self.t[hit], self.values[hit]


Samples = BlockSamples | RowSamples


def gather_runs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row indices ``lo[0]..hi[0]-1, lo[1]..hi[1]-1, ...`` concatenated, and the run lengths."""
    lens = hi - lo
    total = int(lens.sum())
    if not total:
        return np.empty(0, np.int64), lens
    ends = np.cumsum(lens)
    return np.arange(total, dtype=np.int64) + np.repeat(lo - (ends - lens), lens), lens


def build_samples(gid: np.ndarray, t: np.ndarray, values: np.ndarray, presorted: bool = False) -> Samples:
    """Rows as ``BlockSamples``, sorted by series then time (stably: equal keys keep their order,
    so the later of two samples at one time still wins); ``presorted`` skips the sort when the
    rows already are (blocks are written so; checked)."""
    n = len(gid)
    if not n:
        return BlockSamples(0, 1, gid, np.zeros(1, np.int64), t, values, gid, gid)
    for attempt in (presorted, False):
        if not attempt:
            order = np.lexsort((t, gid))
            gid, t, values = gid[order], t[order], values[order]
        change = np.flatnonzero(gid[1:] != gid[:-1]) + 1
        starts = np.concatenate(([0], change, [n])).astype(np.int64)
        t0, span = int(t.min()), int(t.max()) - int(t.min()) + 1
        runs = len(starts) - 1
        if runs * span >= 2**62:
            return RowSamples(gid, t, values)
        key = np.repeat(np.arange(runs, dtype=np.int64) * span - t0, np.diff(starts)) + t
        if n == 1 or not bool((np.diff(key) < 0).any()):
            gids = gid[starts[:-1]]
            by_gid = np.argsort(gids)
            values = np.ascontiguousarray(values)
            return BlockSamples(t0, span, gids, starts, key, values, by_gid, gids[by_gid])
    raise AssertionError("unreachable: sorted rows give an increasing key")


def decode_rows(table: pa.Table, index: SeriesIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, t_ms, values)`` of every row of a ``samples`` table, in row order."""
    parts = []
    for chunk in table.column("series").chunks:
        if len(chunk):
            lut = index.ids_of(chunk.dictionary.to_pylist())
            parts.append(lut[chunk.indices.to_numpy(zero_copy_only=False)])
    gid = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return gid, table.column("time_ns").to_numpy() // NS_PER_MS, sample_values(table)


def decode_block(table: pa.Table, index: SeriesIndex) -> Samples:
    """A ``samples`` block table (written sorted by series, time) for selects."""
    return build_samples(*decode_rows(table, index), presorted=True)


@dataclass(frozen=True, slots=True)
class HeadSamples:
    """The decoded head: its rows in arrival order and sorted segments over consecutive slices
    of them, sizes shrinking geometrically (the newest smallest), so appending a few entries
    sorts only those and a segment is re-sorted O(log n) times in its life."""

    positions: tuple[int, ...]  # WAL positions of the head entries decoded, in order
    rows: tuple[np.ndarray, np.ndarray, np.ndarray]  # (ids, t_ms, values)
    bounds: tuple[int, ...]  # segment i holds rows[bounds[i]:bounds[i + 1]]
    segments: tuple[Samples, ...]

    def select(self, keep: np.ndarray, start_ms: int, end_ms: int) -> list[tuple[np.ndarray, ...]]:
        return [s.select(keep, start_ms, end_ms) for s in self.segments]

    def extend(self, positions: tuple[int, ...], new: list[tuple[np.ndarray, ...]]) -> HeadSamples:
        """This view with rows of more entries appended."""
        if not sum(len(c[0]) for c in new):
            return HeadSamples(positions, self.rows, self.bounds, self.segments)
        n0 = len(self.rows[0])
        rows = tuple(np.concatenate(c) for c in zip(self.rows, *new, strict=True))
        bounds, segments = list(self.bounds), list(self.segments)
        bounds.append(len(rows[0]))
        segments.append(build_samples(*(c[n0:] for c in rows)))
        # merge the newest segment into the one before while it is at least half that size
        while len(segments) > 1 and 2 * (bounds[-1] - bounds[-2]) >= bounds[-2] - bounds[-3]:
            segments[-2:] = [build_samples(*(c[bounds[-3] : bounds[-1]] for c in rows))]
            del bounds[-2]
        return HeadSamples(positions, rows, tuple(bounds), tuple(segments))


_NO_HEAD = HeadSamples((), _EMPTY, (0,), ())


class SampleCache:
    """Per-tenant ``SeriesIndex`` plus decoded blocks (LRU, ``budget_bytes`` in all)."""

    def __init__(self, budget_bytes: int = 1 << 30, head_idle_s: float = 300.0):
        self.budget_bytes = budget_bytes
        # ``warm`` keeps a tenant's head view decoded only this long after a query read it: a
        # head nobody queries would be decoded for nothing, its series parsed and each merge
        # of head entries rebuilding it (bench_scrape: 0.3 µs a sample, ~6% of `kms up`'s CPU)
        self.head_idle_s = head_idle_s
        self._lock = threading.Lock()
        self._indexes: dict[str, SeriesIndex] = {}
        self._blocks: OrderedDict[str, Samples] = OrderedDict()
        self._bytes = 0
        self._heads: dict[str, HeadSamples] = {}
        self._head_read: dict[str, float] = {}  # tenant -> monotonic s a query last read its head

    def head(self, tenant: str, entries: list, query: bool = True) -> HeadSamples:
        """The decoded view of ``tenant``'s head ``entries`` (``HeadEntry``: ``pos``, ``table``):
        entries appended since the last call are added to it; after a cut it is rebuilt.
        ``query``: asked by a query (not by ``warm``), which keeps the view warmed."""
        positions = tuple(e.pos for e in entries)
        with self._lock:
            if query:
                self._head_read[tenant] = time.monotonic()
            view = self._heads.get(tenant, _NO_HEAD)
        if view.positions == positions:
            return view
        k = len(view.positions)
        if positions[:k] != view.positions:
            view, k = _NO_HEAD, 0
        index = self.index(tenant)
        view = view.extend(positions, [decode_rows(e.table, index) for e in entries[k:]])
        with self._lock:
            self._heads[tenant] = view
        return view

    def index(self, tenant: str) -> SeriesIndex:
        with self._lock:
            idx = self._indexes.get(tenant)
            if idx is None:
                idx = self._indexes[tenant] = SeriesIndex()
            return idx

    def block(self, tenant: str, block: Block) -> Samples:
        """The decoded block (decoded now if not held)."""
        key = f"{tenant}/{block.id}"
        with self._lock:
            if key in self._blocks:
                self._blocks.move_to_end(key)
                return self._blocks[key]
        table = block.reader().read_all()
        got = decode_block(table, self.index(tenant))
        size = got.nbytes
        with self._lock:
            if key not in self._blocks and size <= self.budget_bytes:
                self._blocks[key] = got
                self._bytes += size
                while self._bytes > self.budget_bytes:
                    _, old = self._blocks.popitem(last=False)
                    self._bytes -= old.nbytes
        return got

    def warm(self, store, signal: str = "samples") -> int:
        """Decode every tenant's blocks not held yet, newest first, while they fit the budget
        beside what is held (nothing is evicted for it), and each head once (after a start:
        the replayed rows) and then while queries read it (``head_idle_s``): run in the
        background so the first query after a start or a cut does not pay for it. Returns
        blocks decoded."""
        done = 0
        for tenant in store.tenants(signal):
            head, blocks = store.snapshot(tenant, signal)
            self.forget(tenant, {b.id for b in blocks})
            for b in sorted(blocks, key=lambda b: b.meta.max_time_ns, reverse=True):
                with self._lock:
                    held = f"{tenant}/{b.id}" in self._blocks
                    room = self.budget_bytes - self._bytes >= 16 * b.meta.rows
                if held:
                    continue
                if not room:
                    break
                self.block(tenant, b)
                done += 1
            with self._lock:
                read = self._head_read.get(tenant)
                seen = tenant in self._heads
            if not seen or (read is not None and time.monotonic() - read < self.head_idle_s):
                self.head(tenant, head, query=False)
        return done

    def forget(self, tenant: str, live: set[str]) -> None:
        """Drop ``tenant``'s decoded blocks whose id is not in ``live`` (compacted away, expired)."""
        prefix = tenant + "/"
        with self._lock:
            for key in [k for k in self._blocks if k.startswith(prefix) and k[len(prefix) :] not in live]:
                old = self._blocks.pop(key)
                self._bytes -= old.nbytes

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"blocks": len(self._blocks), "bytes": self._bytes,
                    "series": sum(len(i) for i in self._indexes.values())}  # fmt: skip
