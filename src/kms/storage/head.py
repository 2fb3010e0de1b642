"""The head: acknowledged rows not yet in a block, and the per tenant+signal ``Partition``.

A head entry is the table of one WAL record, tagged with the record's WAL position so a cut
takes exactly the records below the WAL's safe point (see wal.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from kms.storage.block import Block
from kms.storage.types import SignalSpec

__all__ = ["HeadEntry", "Partition", "scan_head"]


# Small entries (one per append) are merged into one table once this many wait, so a scan
# filters a few large chunks instead of thousands of small ones: over 500k span rows, Acero
# took 64 ms on 1000 chunks and 2.7 ms on 16 (benchmarks/storage/bench_store.py, head lookup).
MERGE_EVERY = 64
MERGE_MAX_ROWS = 16_384  # entries this large are left alone ...
# ... and so are entries of this many bytes: already a large chunk to scan, and merging them
# copies every byte once more (OTLP logs, 5,000 records of 2.3 MB a request: 11 ms per MB of lines)
MERGE_MAX_BYTES = 1 << 20


def _small(table: pa.Table) -> bool:
    return table.num_rows < MERGE_MAX_ROWS and table.nbytes < MERGE_MAX_BYTES


@dataclass(frozen=True, slots=True)
class HeadEntry:
    pos: int  # WAL position of the (first) record these rows came from
    table: pa.Table
    min_ns: int  # min/max time_ns of the rows, unix ns
    max_ns: int
    arrived: float  # time.monotonic() when (the first of them were) applied, seconds
    last_pos: int = -1  # WAL position of the last record merged in; -1 = same as pos

    @property
    def end_pos(self) -> int:
        return self.pos if self.last_pos < 0 else self.last_pos


class Partition:
    """One tenant+signal: its head entries and its block list.

    Locking: ``lock`` guards ``entries``, ``blocks`` and the counters; it is held only to read or
    swap references, never for I/O. Tables and blocks are immutable, so a ``snapshot()`` can be
    read without the lock. Head rows become a block in one step (``commit_cut``) and compaction
    replaces blocks in one step (``swap_blocks``), so a snapshot sees every row exactly once.
    """

    def __init__(self, tenant: str, spec: SignalSpec):
        self.tenant = tenant
        self.spec = spec
        self.lock = threading.Lock()
        self.entries: list[HeadEntry] = []
        self.blocks: tuple[Block, ...] = ()  # sorted by block id
        self.head_rows = 0
        self.head_bytes = 0
        self.appended_rows = 0
        self.appended_bytes = 0
        self._small = 0  # entries merge_small would merge
        # Held by a merge and by a whole cut (candidates .. commit), so a merge never replaces
        # entries a cut has taken. Taken before ``lock``, never the other way round.
        self.merge_lock = threading.Lock()

    @property
    def key(self) -> tuple[str, str]:
        return self.tenant, self.spec.name

    def add(self, entry: HeadEntry, record_bytes: int | None) -> bool:
        """Make an acknowledged record's rows visible (after its WAL fsync).
        ``record_bytes``: the WAL record's size, counted as appended; None when replaying.
        Returns True when enough small entries wait for ``merge_small``."""
        with self.lock:
            self.entries.append(entry)
            self.head_rows += entry.table.num_rows
            self.head_bytes += entry.table.nbytes
            if record_bytes is not None:
                self.appended_rows += entry.table.num_rows
                self.appended_bytes += record_bytes
            if _small(entry.table):
                self._small += 1
            return self._small >= MERGE_EVERY

    def merge_small(self, safe_point: int) -> None:
        """Merge the small entries from records below ``safe_point`` into one table (the copy
        runs outside ``lock``). Only records below the safe point are merged, so every later
        cut (whose safe point can only be higher) takes a merged entry whole."""
        if not self.merge_lock.acquire(blocking=False):
            return  # another thread is merging, or a cut is running
        try:
            with self.lock:
                small = [
                    e for e in self.entries if _small(e.table) and e.end_pos < safe_point
                ]
            if len(small) < 2:
                return
            table = pa.concat_tables([e.table for e in small]).combine_chunks()
            merged = HeadEntry(
                pos=min(e.pos for e in small),
                table=table,
                min_ns=min(e.min_ns for e in small),
                max_ns=max(e.max_ns for e in small),
                arrived=min(e.arrived for e in small),
                last_pos=max(e.end_pos for e in small),
            )
            gone = {id(e) for e in small}
            with self.lock:
                if sum(id(e) in gone for e in self.entries) != len(gone):
                    return  # a cut took some of them meanwhile
                first = next(i for i, e in enumerate(self.entries) if id(e) in gone)
                rest = [e for e in self.entries if id(e) not in gone]
                rest.insert(min(first, len(rest)), merged)
                self.entries = rest
                self.head_bytes += table.nbytes - sum(e.table.nbytes for e in small)
                self._small = sum(_small(e.table) for e in rest)
        finally:
            self.merge_lock.release()

    def snapshot(self) -> tuple[list[HeadEntry], tuple[Block, ...]]:
        with self.lock:
            return list(self.entries), self.blocks

    def oldest_arrival(self) -> float | None:
        with self.lock:
            return min((e.arrived for e in self.entries), default=None)

    def min_pos(self) -> int | None:
        with self.lock:
            return min((e.pos for e in self.entries), default=None)

    def cut_candidates(self, safe_point: int) -> tuple[list[HeadEntry], int]:
        """The entries whose records all lie below ``safe_point``, and the WAL mark a block of
        them may carry: every record of this partition below the mark is in that block or an
        earlier one."""
        with self.lock:
            taken = [e for e in self.entries if e.end_pos < safe_point]
            mark = min([safe_point] + [e.pos for e in self.entries if e.end_pos >= safe_point])
            return taken, mark

    def commit_cut(self, taken: Iterable[HeadEntry], block: Block | None) -> None:
        """Drop ``taken`` from the head and add ``block`` (which holds their rows), atomically.
        The caller holds ``merge_lock`` since ``cut_candidates``."""
        gone = {id(e) for e in taken}
        with self.lock:
            if sum(id(e) in gone for e in self.entries) != len(gone):
                raise RuntimeError("BUG: head entries taken by a cut changed before it committed")
            keep = [e for e in self.entries if id(e) not in gone]
            dropped = [e for e in self.entries if id(e) in gone]
            self.entries = keep
            self.head_rows -= sum(e.table.num_rows for e in dropped)
            self.head_bytes -= sum(e.table.nbytes for e in dropped)
            self._small = sum(e.table.num_rows < MERGE_MAX_ROWS for e in keep)
            if block is not None:
                self.blocks = tuple(sorted((*self.blocks, block), key=lambda b: b.id))

    def swap_blocks(self, remove: set[str], add: Block | None) -> None:
        """Replace the blocks with ids in ``remove`` by ``add`` (compaction, retention), atomically."""
        with self.lock:
            blocks = [b for b in self.blocks if b.id not in remove]
            if add is not None:
                blocks.append(add)
            self.blocks = tuple(sorted(blocks, key=lambda b: b.id))

    def age_s(self, now: float | None = None) -> float:
        oldest = self.oldest_arrival()
        return 0.0 if oldest is None else (time.monotonic() if now is None else now) - oldest


def scan_head(
    entries: list[HeadEntry],
    start_ns: int | None,
    end_ns: int | None,
    expr: pc.Expression | None,
    columns: list[str],
) -> pa.Table | None:
    """Head rows in [start_ns, end_ns] (inclusive, None = open) matching ``expr``, projected to
    ``columns``; None if there are none. Entries outside the range are skipped unread."""
    tables = [
        e.table
        for e in entries
        if (start_ns is None or e.max_ns >= start_ns) and (end_ns is None or e.min_ns <= end_ns)
    ]
    if not tables:
        return None
    t = pa.concat_tables(tables)
    if expr is not None:
        t = t.filter(expr)
    if t.schema.names != columns:
        t = t.select(columns)
    return t if t.num_rows else None
