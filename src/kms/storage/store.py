"""The one door to storage: ``Store`` appends (WAL, then head), scans (head + blocks) and runs
the background work (cut, compaction, retention).

Durability: ``append`` returns only after its WAL record is fsynced and its rows are in the
head; a crash at any later point loses nothing and duplicates nothing (block metas and the WAL
checkpoint record which WAL positions are already in blocks; see FORMAT.md).

Locking: ``_lock`` guards the partition map; each ``Partition.lock`` guards its head and block
list (see head.py); ``_maint_lock`` serializes cut, compaction, retention and deletion, which
run on the one background thread (or in the caller for ``flush``/``compact``/``apply_retention``/
``close``). Appends and scans never wait for background I/O.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from kms.errors import BadInput, KmsError, LimitExceeded, Unavailable
from kms.storage import layout
from kms.storage.block import Block, BlockMeta, delete_block, with_added_columns, write_block
from kms.storage.bloom import filter_keys, hash_values
from kms.storage.checkpoint import read_checkpoint, write_checkpoint
from kms.storage.compact import compact_blocks, plan_compaction, superseded
from kms.storage.head import HeadEntry, Partition, scan_head
from kms.storage.objstore import ObjectStore
from kms.storage.retention import cutoff_ns, drop_expired_rows, expired_blocks, surplus_blocks
from kms.storage.types import TIME_COLUMN, ScanRequest, SignalSpec
from kms.storage.wal import Wal
from kms.storage.walrec import FRAME_HEADER_SIZE, framed_record

__all__ = ["Store", "StoreConfig"]

log = logging.getLogger(__name__)


@dataclass
class StoreConfig:
    """Store settings; durations in seconds."""

    data_dir: Path  # the WAL always lives in <data_dir>/wal, whatever the object store
    head_max_rows: int = 500_000  # cut a tenant+signal head into a block at this many rows ...
    head_max_age_s: float = 300.0  # ... or when its oldest row arrived this long ago
    retention_s: float | None = None  # None or 0 = keep forever
    compaction_min_blocks: int = 4  # merge small blocks once this many are waiting ...
    compaction_target_rows: int = 1_000_000  # ... into blocks of about this many rows
    compaction_window_s: float = 3600.0  # ... only blocks starting in the same window of time
    background_interval_s: float = 5.0
    block_delete_delay_s: float = 60.0  # replaced/expired blocks stay readable this long for running scans
    head_limit_rows: int | None = None  # refuse appends (LimitExceeded) above this; None = 4 x head_max_rows
    max_rows: dict[str, int] = field(default_factory=dict)  # signal -> newest rows kept per tenant


class Store:
    """Durable, signal-agnostic, multi-tenant storage of Arrow tables (see module doc)."""

    def __init__(self, config: StoreConfig, objstore: ObjectStore, signals: list[SignalSpec]):
        self.config = config
        self.objstore = objstore
        self._specs: dict[str, SignalSpec] = {}
        for spec in signals:
            _check_spec(spec)
            if spec.name in self._specs:
                raise ValueError(f"signal {spec.name!r} given twice")
            self._specs[spec.name] = spec
        self._head_limit = config.head_limit_rows or 4 * config.head_max_rows
        self._parts: dict[tuple[str, str], Partition] = {}
        self._lock = threading.Lock()
        self._maint_lock = threading.RLock()
        self._floors: dict[tuple[str, str], int] = {}  # replay floors; guarded by _maint_lock
        self._graveyard: list[tuple[float, Block]] = []  # (delete after monotonic s, block); _maint_lock
        self._wal: Wal | None = None
        self._lock_fd: int | None = None
        self._state = "new"  # new | open | closing | closed
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._n = dict.fromkeys(
            (
                "cuts",
                "blocks_written",
                "compactions",
                "retention_deleted_blocks",
                "retention_dropped_rows",
                "blocks_deleted",
                "replayed_rows",
                "replay_skipped_records",
                "maintenance_errors",
                "block_scans",  # blocks read by scans (time range and Bloom filter allowing)
                "bloom_skipped_blocks",  # blocks a scan skipped because their Bloom filter said absent
            ),
            0,
        )
        self._flush_count = 0
        self._flush_sum_s = 0.0
        self._flush_max_s = 0.0
        self._flush_last_s = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Load block metas, replay the WAL into the heads, start the background thread."""
        if self._state != "new":
            raise RuntimeError("BUG: Store.open() called twice")
        wal_dir = layout.wal_dir(self.config.data_dir)
        wal_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_dir(wal_dir)
        try:
            self._load_blocks()
            wal = Wal(wal_dir)
            wal.open()
            floors = read_checkpoint(layout.checkpoint_path(self.config.data_dir), wal.id_hex)
            for part in self._parts.values():
                for b in part.blocks:
                    mark = b.meta.wal_marks.get(wal.id_hex)
                    if mark is not None and mark > floors.get(part.key, -1):
                        floors[part.key] = mark
            t0 = time.perf_counter()
            for rec in wal.replay(floors):
                spec = self._specs.get(rec.signal)
                if spec is None:
                    log.warning(
                        "WAL: skipping a record of unknown signal %r (tenant %r)", rec.signal, rec.tenant
                    )
                    self._n["replay_skipped_records"] += 1
                    continue
                table = rec.table
                if not table.schema.equals(spec.schema):
                    try:
                        table = with_added_columns(table, spec.schema).cast(spec.schema)
                    except (pa.ArrowException, ValueError) as e:
                        raise Unavailable(
                            f"WAL record at position {rec.pos} ({rec.tenant}/{rec.signal}) does not fit "
                            f"the signal's schema any more: {e}",
                            reason="wal_schema",
                        ) from e
                lo, hi = pc.min_max(table.column(TIME_COLUMN)).values()
                part = self._partition(rec.tenant, spec)
                if part.add(HeadEntry(rec.pos, table, lo.as_py(), hi.as_py(), time.monotonic()), None):
                    part.merge_small(rec.pos + 1)
                self._n["replayed_rows"] += table.num_rows
            wal.start(min_base=max(floors.values(), default=0))
            self._wal = wal
            self._floors = floors
            log.info(
                "store open: %d blocks, %d rows replayed from the WAL in %.2f s",
                sum(len(p.blocks) for p in self._parts.values()),
                self._n["replayed_rows"],
                time.perf_counter() - t0,
            )
        except BaseException:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise
        self._state = "open"
        self._thread = threading.Thread(target=self._run, name="kms-store", daemon=True)
        self._thread.start()

    def close(self, flush: bool = True) -> None:
        """Stop the background thread; with ``flush``, cut every head into blocks (and so empty
        the WAL); close the WAL. Scans still running may fail once it returns."""
        if self._state != "open":
            return
        self._state = "closing"
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if flush:
                with self._maint_lock:
                    self._cut(force=True)  # if this fails, the rows are still in the WAL
                    self._reap(everything=True)
        finally:
            self._wal.close()
            os.close(self._lock_fd)
            self._lock_fd = None
            self._state = "closed"

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- append ---------------------------------------------------------------------------

    def append(self, tenant: str, signal: str, batch: pa.RecordBatch | pa.Table) -> None:
        """Store rows durably: validate, write one WAL record, fsync (shared with concurrent
        appends), then make the rows visible. Thread-safe. Raises BadInput (nothing stored),
        LimitExceeded (head full, retry later) or Unavailable (WAL failure; rows not visible)."""
        if self._state != "open":
            raise Unavailable("store is not open", reason="store_closed")
        layout.validate_tenant(tenant)
        spec = self._spec(signal)
        table = _conform(batch, spec.schema)
        if table.num_rows == 0:
            return
        part = self._partition(tenant, spec)
        if part.head_rows >= self._head_limit:
            self._wake.set()
            raise LimitExceeded(
                f"tenant {tenant!r} {signal}: {part.head_rows} rows wait for a block cut (limit {self._head_limit})",
                reason="head_full",
                retry_after_s=self.config.background_interval_s,
            )
        lo, hi = pc.min_max(table.column(TIME_COLUMN)).values()
        rec = framed_record(tenant, signal, table)
        pos, end = self._wal.write_framed(rec)
        try:
            self._wal.sync(end)
            merge = part.add(HeadEntry(pos, table, lo.as_py(), hi.as_py(), time.monotonic()), rec.size - FRAME_HEADER_SIZE)
        finally:
            self._wal.done(pos)
        if merge:
            part.merge_small(self._wal.safe_point())
        if part.head_rows >= self.config.head_max_rows:
            self._wake.set()

    # -- scan ---------------------------------------------------------------------------

    def scan(self, req: ScanRequest) -> Iterator[pa.Table]:
        """Tables of the rows with ``start_ns <= time_ns <= end_ns`` matching ``req.filter``,
        from blocks (oldest first) then the head. Columns: ``req.columns`` plus time_ns, or the
        whole schema, with the signal schema's types (dictionary chunks may carry different
        dictionaries). The request is checked now (BadInput); rows are read as you iterate.
        ``req.hints["selective"]`` (default: a filter is given) reads filter columns first;
        ``req.hints["newest_first"]`` yields the head first, then blocks newest first."""
        layout.validate_tenant(req.tenant)
        spec = self._spec(req.signal)
        names = spec.schema.names
        if req.columns is None:
            columns = list(names)
        else:
            unknown = [c for c in req.columns if c not in names]
            if unknown:
                raise BadInput(
                    f"{req.signal} has no column(s) {unknown}; it has {names}", reason="bad_column"
                )
            columns = list(dict.fromkeys((*req.columns, TIME_COLUMN)))
        if req.filter is not None:
            try:
                spec.schema.empty_table().filter(req.filter)
            except (pa.ArrowException, TypeError) as e:
                raise BadInput(
                    f"filter {req.filter} does not apply to {req.signal}: {e}", reason="bad_filter"
                ) from e
        expr = _time_expr(req.start_ns, req.end_ns)
        if req.filter is not None:
            expr = req.filter if expr is None else expr & req.filter
        selective = bool(req.hints.get("selective", req.filter is not None))
        newest_first = bool(req.hints.get("newest_first", False))
        hashes = None
        if spec.bloom_column is not None:
            width = spec.schema.field(spec.bloom_column).type.byte_width
            keys = filter_keys(req.filter, spec.bloom_column, width)
            if keys is not None:
                hashes = hash_values(keys, width)
        part = self._parts.get((req.tenant, req.signal))
        return self._scan(part, req.start_ns, req.end_ns, expr, columns, selective, newest_first, hashes)

    def tenants(self, signal: str) -> list[str]:
        """Tenants that have data of ``signal`` (head or blocks)."""
        self._spec(signal)
        return sorted({t for t, sig in list(self._parts) if sig == signal})

    def snapshot(self, tenant: str, signal: str) -> tuple[list[HeadEntry], tuple[Block, ...]]:
        """The head entries and blocks of one tenant+signal as they stand now (consistent with
        each other), for readers that keep their own per-block state (the metrics sample cache).
        Blocks stay readable for ``block_delete_delay_s`` after they are replaced."""
        layout.validate_tenant(tenant)
        self._spec(signal)
        part = self._parts.get((tenant, signal))
        return part.snapshot() if part is not None else ([], ())

    def _scan(
        self, part, start_ns, end_ns, expr, columns, selective, newest_first=False, hashes=None
    ) -> Iterator[pa.Table]:
        """``hashes``: Bloom hashes of the values the filter requires of the bloom column (None = any)."""
        if part is None:
            return
        entries, blocks = part.snapshot()
        if newest_first:
            t = scan_head(entries, start_ns, end_ns, expr, columns)
            if t is not None:
                yield t
            blocks = sorted(blocks, key=lambda b: b.meta.max_time_ns, reverse=True)
        for b in blocks:
            if not b.meta.overlaps(start_ns, end_ns):
                continue
            if hashes is not None:
                try:
                    bloom = b.bloom()
                except KmsError:
                    bloom = None  # cannot tell: read the block
                if bloom is not None and not bloom.may_contain_any(hashes):
                    self._n["bloom_skipped_blocks"] += 1
                    continue
            self._n["block_scans"] += 1
            yield from b.reader().scan(expr, columns, selective)
        if not newest_first:
            t = scan_head(entries, start_ns, end_ns, expr, columns)
            if t is not None:
                yield t

    # -- background work ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Cut every non-empty head into a block now."""
        with self._maint_lock:
            self._cut(force=True)

    def maintain(self) -> None:
        """One round of background work: cut due heads, apply retention, compact, delete."""
        for step in (lambda: self._cut(force=False), self.apply_retention, self.compact, self._reap):
            try:
                with self._maint_lock:
                    step()
            except Exception:
                self._n["maintenance_errors"] += 1
                log.exception("store maintenance step failed (will retry)")

    def _run(self) -> None:
        for part in list(self._parts.values()):  # read the block footers before the first query does
            for b in part.blocks:
                if self._state != "open":
                    return
                try:
                    b.reader()
                except KmsError as e:
                    log.warning("cannot read %s yet: %s", b, e)
        while True:
            self._wake.wait(self.config.background_interval_s)
            self._wake.clear()
            if self._state != "open":
                return
            self.maintain()

    def _cut(self, force: bool) -> None:
        """Move head rows into blocks. Caller holds ``_maint_lock``."""
        now = time.monotonic()
        due = [
            p
            for p in list(self._parts.values())
            if p.head_rows
            and (
                force
                or p.head_rows >= self.config.head_max_rows
                or p.age_s(now) >= self.config.head_max_age_s
            )
        ]
        if not due:
            return
        t0 = time.perf_counter()
        wal = self._wal
        wal.roll()  # so the segments holding these rows can be deleted once they are cut
        safe = wal.safe_point()
        cutoff = cutoff_ns(self.config.retention_s)
        failed: KmsError | None = None
        for p in due:
            with p.merge_lock:
                try:
                    self._cut_one(p, safe, cutoff)
                except KmsError as e:
                    failed = e
                    log.warning("cut of %s/%s failed, rows stay in the head: %s", p.tenant, p.spec.name, e)
        self._checkpoint()
        self._n["cuts"] += 1
        took = time.perf_counter() - t0
        self._flush_count += 1
        self._flush_sum_s += took
        self._flush_max_s = max(self._flush_max_s, took)
        self._flush_last_s = took
        if failed is not None:
            raise failed

    def _cut_one(self, p: Partition, safe: int, cutoff: int | None) -> None:
        """Cut one partition's head below the WAL safe point. Caller holds ``p.merge_lock``."""
        taken, mark = p.cut_candidates(safe)
        if not taken:
            return
        table = drop_expired_rows(pa.concat_tables([e.table for e in taken]), cutoff)
        block = None
        if table.num_rows:
            block = write_block(self.objstore, p.spec, p.tenant, table, wal_marks={self._wal.id_hex: mark})
            self._n["blocks_written"] += 1
        self._n["retention_dropped_rows"] += sum(e.table.num_rows for e in taken) - table.num_rows
        p.commit_cut(taken, block)
        self._floors[p.key] = max(mark, self._floors.get(p.key, 0))

    def _checkpoint(self) -> None:
        """Persist the replay floors, then delete WAL segments nothing needs any more."""
        wal = self._wal
        first = wal.first_position()
        self._floors = {k: f for k, f in self._floors.items() if f > first}
        write_checkpoint(layout.checkpoint_path(self.config.data_dir), wal.id_hex, self._floors)
        low = wal.safe_point()
        for p in list(self._parts.values()):
            m = p.min_pos()
            if m is not None:
                low = min(low, m)
        wal.truncate(low)

    def compact(self) -> None:
        """Merge small blocks of each tenant+signal (see compact.py)."""
        with self._maint_lock:
            for p in list(self._parts.values()):
                groups = plan_compaction(
                    p.blocks,
                    min_blocks=self.config.compaction_min_blocks,
                    target_rows=p.spec.compaction_target_rows or self.config.compaction_target_rows,
                    window_ns=int(self.config.compaction_window_s * 1e9) or None,
                )
                for group in groups:
                    merged = compact_blocks(self.objstore, group)
                    p.swap_blocks({b.id for b in group}, merged)
                    self._bury(group)
                    self._n["compactions"] += 1
                    self._n["blocks_written"] += 1
                    self._cut(force=False)  # heads keep filling during a merge: cut them between merges

    def apply_retention(self, now_ns: int | None = None) -> None:
        """Drop blocks whose newest row is older than ``now - retention_s``, and those beyond a
        signal's ``max_rows`` newest rows."""
        cutoff = cutoff_ns(self.config.retention_s, now_ns)
        with self._maint_lock:
            for p in list(self._parts.values()):
                old = expired_blocks(p.blocks, cutoff)
                bound = self.config.max_rows.get(p.spec.name)
                if bound:
                    gone = {b.id for b in old}
                    old += [b for b in surplus_blocks(p.blocks, bound, p.head_rows) if b.id not in gone]
                if old:
                    p.swap_blocks({b.id for b in old}, None)
                    self._bury(old)
                    self._n["retention_deleted_blocks"] += len(old)

    def _bury(self, blocks: list[Block]) -> None:
        deadline = time.monotonic() + self.config.block_delete_delay_s
        self._graveyard.extend((deadline, b) for b in blocks)

    def _reap(self, everything: bool = False) -> None:
        """Delete buried blocks whose grace period is over. Caller holds ``_maint_lock``."""
        now = time.monotonic()
        keep = []
        for deadline, b in self._graveyard:
            if everything or deadline <= now:
                try:
                    delete_block(self.objstore, b.meta)
                    self._n["blocks_deleted"] += 1
                    continue
                except KmsError as e:
                    log.warning("cannot delete block %s yet: %s", b, e)
            keep.append((deadline, b))
        self._graveyard = keep

    # -- helpers ---------------------------------------------------------------------------

    def holds(self, signal: str) -> bool:
        """Whether this store was opened with ``signal``."""
        return signal in self._specs

    def _spec(self, signal: str) -> SignalSpec:
        spec = self._specs.get(signal)
        if spec is None:
            raise BadInput(
                f"unknown signal {signal!r}; this store holds {sorted(self._specs)}", reason="bad_signal"
            )
        return spec

    def _partition(self, tenant: str, spec: SignalSpec) -> Partition:
        key = (tenant, spec.name)
        part = self._parts.get(key)
        if part is None:
            with self._lock:
                part = self._parts.get(key)
                if part is None:
                    part = self._parts[key] = Partition(tenant, spec)
        return part

    def _load_blocks(self) -> None:
        """Read every block meta; delete orphans (data without meta) and superseded blocks.
        Assumes this process is the only writer of the object store."""
        files: dict[tuple[str, str, str], set[str]] = {}
        for key in self.objstore.list(""):
            parsed = layout.parse_block_key(key)
            if parsed is not None and parsed[1] in self._specs:
                files.setdefault(parsed[:3], set()).add(parsed[3])
        metas: list[BlockMeta] = []
        for (tenant, signal, block_id), names in sorted(files.items()):
            if layout.BLOCK_META not in names:
                log.warning("deleting incomplete block %s/%s/%s (no meta)", tenant, signal, block_id)
                self.objstore.delete_prefix(layout.block_prefix(tenant, signal, block_id))
                continue
            try:
                meta = BlockMeta.from_json(self.objstore.get(layout.block_meta_key(tenant, signal, block_id)))
            except ValueError as e:
                raise Unavailable(f"block {tenant}/{signal}/{block_id}: unreadable meta.json: {e}") from e
            if (meta.tenant, meta.signal, meta.block_id) != (tenant, signal, block_id):
                raise Unavailable(f"block {tenant}/{signal}/{block_id}: meta.json names another block")
            metas.append(meta)
        dead = superseded(metas)
        blocks: list[Block] = []
        for meta in metas:
            if meta.block_id in dead:
                log.info(
                    "deleting block %s/%s/%s: compacted into another", meta.tenant, meta.signal, meta.block_id
                )
                delete_block(self.objstore, meta)
                continue
            part = self._partition(meta.tenant, self._specs[meta.signal])
            block = Block(meta, self.objstore, part.spec)
            part.swap_blocks(set(), block)
            blocks.append(block)
        self._load_blooms(blocks)

    def _load_blooms(self, blocks: list[Block]) -> None:
        """Read the blocks' Bloom filters now (in parallel on a remote store), so lookups never
        wait for them. A failure is logged; that block's filter is tried again when a scan needs it."""

        def load(b: Block) -> None:
            try:
                b.bloom()
            except KmsError as e:
                log.warning("cannot read the bloom filter of %s yet: %s", b, e)

        wanted = [b for b in blocks if b.meta.bloom]
        if self.objstore.remote and len(wanted) > 1:
            with ThreadPoolExecutor(max_workers=16, thread_name_prefix="kms-bloom") as pool:
                list(pool.map(load, wanted))
        else:
            for b in wanted:
                load(b)

    # -- metrics ---------------------------------------------------------------------------

    def stats(self) -> dict:
        """Figures for /metrics. Plain numbers are store-wide; dicts are per tenant+signal, keyed
        ``"<tenant>/<signal>"``; ``partitions`` repeats those as one record per tenant+signal."""
        parts = []
        for p in list(self._parts.values()):
            with p.lock:
                blocks = p.blocks
                parts.append(
                    {
                        "tenant": p.tenant,
                        "signal": p.spec.name,
                        "head_rows": p.head_rows,
                        "head_bytes": p.head_bytes,
                        "blocks": len(blocks),
                        "block_bytes": sum(b.meta.bytes for b in blocks),
                        "block_rows": sum(b.meta.rows for b in blocks),
                        "appended_rows": p.appended_rows,
                        "appended_bytes": p.appended_bytes,
                    }
                )
        wal = self._wal
        out: dict = {
            "appended_rows": sum(p["appended_rows"] for p in parts),
            "appended_bytes": sum(p["appended_bytes"] for p in parts),
            "wal_bytes": wal.disk_bytes() if wal else 0,
            "wal_segments": wal.segment_count() if wal else 0,
            "wal_records": wal.records if wal else 0,
            "wal_fsyncs": wal.fsyncs if wal else 0,
            "wal_coalesced_syncs": wal.coalesced if wal else 0,
            "wal_dropped_tail_bytes": wal.dropped_tail_bytes if wal else 0,
            "wal_failed": bool(wal and wal.failed),
            **self._n,
            "flush_seconds_count": self._flush_count,
            "flush_seconds_sum": self._flush_sum_s,
            "flush_seconds_max": self._flush_max_s,
            "last_flush_seconds": self._flush_last_s,
        }
        for key in ("head_rows", "head_bytes", "blocks", "block_bytes", "block_rows"):
            out[key] = {f"{p['tenant']}/{p['signal']}": p[key] for p in parts}
        for key in ("appended_rows", "appended_bytes"):
            out[f"series_{key}"] = {f"{p['tenant']}/{p['signal']}": p[key] for p in parts}
        out["partitions"] = parts
        return out


def _check_spec(spec: SignalSpec) -> None:
    layout.validate_signal(spec.name)
    if spec.schema.get_field_index(TIME_COLUMN) < 0 or spec.schema.field(TIME_COLUMN).type != pa.int64():
        raise ValueError(f"signal {spec.name}: schema needs an int64 {TIME_COLUMN} column")
    missing = [c for c in spec.sort_by if spec.schema.get_field_index(c) < 0]
    if missing or spec.row_group_rows < 1:
        raise ValueError(f"signal {spec.name}: bad sort_by {missing} or row_group_rows {spec.row_group_rows}")
    if spec.bloom_column is not None:
        i = spec.schema.get_field_index(spec.bloom_column)
        if i < 0 or not pa.types.is_fixed_size_binary(spec.schema.field(i).type):
            raise ValueError(
                f"signal {spec.name}: bloom_column {spec.bloom_column!r} is not a fixed_size_binary column"
            )


def _conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """``batch`` as a Table with exactly ``schema`` (columns reordered by name); BadInput otherwise."""
    if isinstance(batch, pa.RecordBatch):
        table = pa.Table.from_batches([batch])
    elif isinstance(batch, pa.Table):
        table = batch
    else:
        raise BadInput(f"expected a pyarrow RecordBatch or Table, got {type(batch).__name__}")
    got = table.schema.names
    if got != schema.names:
        missing = [n for n in schema.names if n not in got]
        extra = [n for n in got if n not in schema.names]
        if missing or extra or len(set(got)) != len(got):
            raise BadInput(
                f"columns do not match the schema: missing {missing}, unexpected {extra}", reason="bad_schema"
            )
        table = table.select(schema.names)
    for f, col in zip(schema, table.columns, strict=True):
        if col.type != f.type:
            raise BadInput(f"column {f.name}: type {col.type}, expected {f.type}", reason="bad_schema")
    if table.column(TIME_COLUMN).null_count:
        raise BadInput(f"column {TIME_COLUMN} has nulls", reason="bad_schema")
    if not table.schema.equals(schema):  # metadata or nullability differ
        table = pa.Table.from_arrays(table.columns, schema=schema)
    return table


def _time_expr(start_ns: int | None, end_ns: int | None) -> pc.Expression | None:
    t = pc.field(TIME_COLUMN)
    parts = []
    if start_ns is not None:
        parts.append(t >= pa.scalar(int(start_ns), pa.int64()))
    if end_ns is not None:
        parts.append(t <= pa.scalar(int(end_ns), pa.int64()))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts[0] & parts[1]


def _lock_dir(wal_dir: Path) -> int:
    """Hold an exclusive lock on the WAL directory for the life of the store (released by the
    kernel if the process dies)."""
    fd = os.open(wal_dir / layout.LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Unavailable(f"{wal_dir} is in use by another process", reason="wal_locked") from None
    return fd
