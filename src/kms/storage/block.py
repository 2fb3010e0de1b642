"""Blocks: one immutable Parquet file plus ``meta.json`` (and, for signals with a
``bloom_column``, ``bloom.bin``) per tenant+signal+block (FORMAT.md, "Blocks").

Writing puts ``data.parquet`` first, then ``bloom.bin``, and ``meta.json`` last, so a block exists only once its meta
does. Reading goes through ``READERS[meta.format_version]`` so blocks of older formats stay
readable after the format changes. ``Block`` objects are immutable and shared between threads;
the reader (with the cached Parquet footer) is built once, under ``Block._lock``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kms.errors import NotFound, Unavailable
from kms.storage import layout
from kms.storage.bloom import BloomFilter, hash_column
from kms.storage.objstore import ObjectStore
from kms.storage.sort import sort_table
from kms.storage.types import TIME_COLUMN, SignalSpec

__all__ = [
    "FORMAT_VERSION",
    "BlockMeta",
    "Block",
    "READERS",
    "write_block",
    "write_encoded_block",
    "delete_block",
    "load_bloom",
    "sort_table",
    "referenced_columns",
]

FORMAT_VERSION = 1
ZSTD_LEVEL = 3  # python-stack-notes.md section 4: zstd-9 saved nothing over 3 at 3x the write time
# Results are handed out in tables of about this many rows (row groups are read one at a time).
YIELD_ROWS = 65_536
_ROW = "__kms_row"
_UNLOADED = object()

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockMeta:
    """The contents of ``meta.json``. Times are unix ns, inclusive; ``bytes`` is data.parquet's size."""

    block_id: str
    tenant: str
    signal: str
    min_time_ns: int
    max_time_ns: int
    rows: int
    bytes: int
    created_ns: int
    level: int = 0  # 0 = cut from a head; compaction makes max(source levels) + 1
    sources: tuple[str, ...] = ()  # ids of the blocks this one replaces (compaction)
    wal_marks: dict[str, int] = field(default_factory=dict)  # WAL id (hex) -> replay floor it covers
    sort_by: tuple[str, ...] = ()
    row_group_rows: int = 0
    # {"column", "bytes", "keys", "bits_per_key", "fpp"} when bloom.bin exists, else None
    bloom: dict | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        d = asdict(self)
        d["sources"] = list(self.sources)
        d["sort_by"] = list(self.sort_by)
        return json.dumps(d, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> BlockMeta:
        """Parse a meta.json; ValueError if it is not one."""
        try:
            d = json.loads(data)
            known = {f for f in cls.__dataclass_fields__}
            d = {k: v for k, v in d.items() if k in known}  # newer writers may add fields
            d["sources"] = tuple(d.get("sources", ()))
            d["sort_by"] = tuple(d.get("sort_by", ()))
            d["wal_marks"] = {str(k): int(v) for k, v in d.get("wal_marks", {}).items()}
            if not isinstance(d.get("bloom"), dict):
                d["bloom"] = None
            return cls(**d)
        except (TypeError, AttributeError, KeyError) as e:
            raise ValueError(f"not a block meta: {e}") from None

    def overlaps(self, start_ns: int | None, end_ns: int | None) -> bool:
        return (start_ns is None or self.max_time_ns >= start_ns) and (
            end_ns is None or self.min_time_ns <= end_ns
        )


def encode_parquet(table: pa.Table, spec: SignalSpec) -> pa.Buffer:
    """Parquet bytes of a sorted block table, one row group per ``spec.row_group_rows`` rows.

    Each row group is written with dictionaries holding only the values it uses: Parquet stores
    an Arrow column's dictionary with every row group, and a block-wide dictionary of 10k series
    texts in each of its row groups cost 0.6 of the 1.7 bytes a sample (bench_dashboards data)."""
    sink = pa.BufferOutputStream()
    rows = max(1, spec.row_group_rows)
    options = dict(compression="zstd", compression_level=ZSTD_LEVEL, write_statistics=True, **spec.parquet_options())
    with pq.ParquetWriter(sink, table.schema, **options) as writer:
        for off in range(0, max(table.num_rows, 1), rows):
            writer.write_table(_compact_dictionaries(table.slice(off, rows)), row_group_size=rows)
    return sink.getvalue()


def _compact_dictionaries(table: pa.Table) -> pa.Table:
    """``table`` with each dictionary column re-encoded to the entries its rows use."""
    for i, fld in enumerate(table.schema):
        if not pa.types.is_dictionary(fld.type):
            continue
        col = table.column(i).combine_chunks()
        if col.null_count or not len(col):
            continue
        # which entries are used, and their new numbers, by counting (O(rows), not a sort)
        idx = col.indices.to_numpy(zero_copy_only=False)
        present = np.bincount(idx, minlength=len(col.dictionary)) > 0
        used = np.flatnonzero(present)
        if len(used) == len(col.dictionary):
            continue
        inverse = (np.cumsum(present) - 1)[idx]
        indices = pa.array(inverse.astype(np.int32, copy=False)).cast(fld.type.index_type)
        table = table.set_column(i, fld, pa.DictionaryArray.from_arrays(indices, col.dictionary.take(pa.array(used))))
    return table


def write_block(
    objstore: ObjectStore,
    spec: SignalSpec,
    tenant: str,
    table: pa.Table,
    *,
    level: int = 0,
    sources: tuple[str, ...] = (),
    wal_marks: dict[str, int] | None = None,
) -> Block:
    """Sort ``table``, write it as a new block (data, then meta) and return it. Unavailable on I/O failure."""
    if table.num_rows == 0:
        raise ValueError("BUG: writing an empty block")
    fmt = spec.block_format
    if not getattr(fmt, "sorts_itself", False):
        table = sort_table(table, spec.sort_by)
    data = fmt.encode(table, spec) if fmt is not None else encode_parquet(table, spec)
    lo, hi = pc.min_max(table.column(TIME_COLUMN)).values()
    bloom = bloom_info = None
    if spec.bloom_column is not None:
        bloom = BloomFilter.build(hash_column(table.column(spec.bloom_column)))
        bloom_data = bloom.to_bytes()
        bloom_info = {
            "column": spec.bloom_column,
            "bytes": len(bloom_data),
            "keys": bloom.keys,
            "bits_per_key": round(len(bloom.bits) * 8 / max(1, bloom.keys), 2),
            "fpp": round(bloom.estimated_fpp(), 5),
        }
    meta = BlockMeta(
        block_id=layout.new_block_id(),
        tenant=tenant,
        signal=spec.name,
        min_time_ns=lo.as_py(),
        max_time_ns=hi.as_py(),
        rows=table.num_rows,
        bytes=data.size,
        created_ns=time.time_ns(),
        level=level,
        sources=tuple(sources),
        wal_marks=dict(wal_marks or {}),
        sort_by=tuple(spec.sort_by),
        row_group_rows=spec.row_group_rows,
        bloom=bloom_info,
        format_version=fmt.version if fmt is not None else FORMAT_VERSION,
    )
    objstore.put(layout.block_data_key(tenant, spec.name, meta.block_id), data)
    if bloom is not None:
        objstore.put(layout.block_bloom_key(tenant, spec.name, meta.block_id), bloom_data)
    objstore.put(layout.block_meta_key(tenant, spec.name, meta.block_id), meta.to_json())
    return Block(meta, objstore, spec, bloom=bloom)


def write_encoded_block(
    objstore: ObjectStore,
    spec: SignalSpec,
    tenant: str,
    data: pa.Buffer,
    *,
    rows: int,
    min_time_ns: int,
    max_time_ns: int,
    level: int,
    sources: tuple[str, ...],
    wal_marks: dict[str, int],
) -> Block:
    """Write ``data`` that ``spec.block_format`` encoded itself (``BlockFormat.merge``: compaction
    without decoding) as a new block, data then meta. Only for signals without a Bloom filter."""
    fmt = spec.block_format
    if fmt is None or spec.bloom_column is not None:
        raise ValueError("BUG: encoded blocks are for signals with their own format and no bloom column")
    meta = BlockMeta(
        block_id=layout.new_block_id(),
        tenant=tenant,
        signal=spec.name,
        min_time_ns=min_time_ns,
        max_time_ns=max_time_ns,
        rows=rows,
        bytes=data.size,
        created_ns=time.time_ns(),
        level=level,
        sources=tuple(sources),
        wal_marks=dict(wal_marks),
        sort_by=tuple(spec.sort_by),
        row_group_rows=spec.row_group_rows,
        format_version=fmt.version,
    )
    objstore.put(layout.block_data_key(tenant, spec.name, meta.block_id), data)
    objstore.put(layout.block_meta_key(tenant, spec.name, meta.block_id), meta.to_json())
    return Block(meta, objstore, spec, bloom=None)


def load_bloom(objstore: ObjectStore, meta: BlockMeta, spec: SignalSpec) -> BloomFilter | None:
    """The block's Bloom filter of ``spec.bloom_column``, or None when it has none (older blocks,
    another column, a missing or damaged bloom.bin: the block is then always read). Unavailable
    when the object store fails (try again later)."""
    if spec.bloom_column is None or not meta.bloom or meta.bloom.get("column") != spec.bloom_column:
        return None
    key = layout.block_bloom_key(meta.tenant, meta.signal, meta.block_id)
    try:
        return BloomFilter.from_bytes(objstore.get(key))
    except (NotFound, ValueError) as e:
        log.warning("block %s: ignoring its bloom filter: %s", key, e)
        return None


def delete_block(objstore: ObjectStore, meta: BlockMeta) -> None:
    """Meta first, so a half-deleted block is ignored (not half-read) by the next open."""
    objstore.delete(layout.block_meta_key(meta.tenant, meta.signal, meta.block_id))
    objstore.delete_prefix(layout.block_prefix(meta.tenant, meta.signal, meta.block_id))


def referenced_columns(expr: pc.Expression, names: list[str]) -> list[str]:
    """Columns of ``names`` that ``expr`` may refer to (a superset is harmless: it is only used
    to pick columns for a first, narrow read; a miss makes that read fail and fall back)."""
    text = str(expr)
    return [n for n in names if re.search(r"(?<![\w])" + re.escape(n) + r"(?![\w])", text)]


def with_added_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the nullable columns of ``schema`` it lacks (added to a signal after it
    was written: a WAL record or block of an older version) as nulls, in ``schema``'s order."""
    missing = [f for f in schema if f.nullable and table.schema.get_field_index(f.name) < 0]
    if not missing:
        return table
    for f in missing:
        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select([n for n in schema.names if n in table.schema.names])


class ParquetBlockReaderV1:
    """Reads format-1 blocks. The Parquet footer is read once and kept; each scan prunes row
    groups by their statistics (``ParquetFileFragment.subset``), then for a selective filter
    reads just the filter's columns first and the rest only for row groups with hits."""

    def __init__(self, objstore: ObjectStore, meta: BlockMeta, spec: SignalSpec):
        self.objstore = objstore
        self.meta = meta
        self.schema = spec.schema
        self.key = layout.block_data_key(meta.tenant, meta.signal, meta.block_id)
        fmt = ds.ParquetFileFormat()
        try:
            frag = fmt.make_fragment(objstore.path(self.key), filesystem=objstore.filesystem)
            frag.ensure_complete_metadata()
        except (OSError, pa.ArrowException) as e:
            raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e
        self._fragment = frag
        self._metadata = frag.metadata
        self._names = set(frag.physical_schema.names)

    def row_groups(self, expr: pc.Expression | None) -> list[int]:
        if expr is None:
            return list(range(self._metadata.num_row_groups))
        return [rg.id for rg in self._fragment.subset(filter=expr).row_groups]

    def read_all(self) -> pa.Table:
        with self.objstore.open(self.key) as f:
            return self._conform(with_added_columns(self._file(f).read(), self.schema))

    def _file(self, f: pa.NativeFile) -> pq.ParquetFile:
        # pre_buffer coalesces the column chunks of a row group into few ranged GETs on S3.
        return pq.ParquetFile(f, metadata=self._metadata, pre_buffer=self.objstore.remote)

    def _conform(self, t: pa.Table, wanted: list[str] | None = None) -> pa.Table:
        if wanted is not None and len(wanted) != t.num_columns:
            t = with_added_columns(t, pa.schema([self.schema.field(n) for n in wanted]))
        target = pa.schema([self.schema.field(n) for n in t.schema.names])
        return t if t.schema.equals(target) else t.cast(target)

    def scan(self, expr: pc.Expression | None, columns: list[str], selective: bool) -> Iterator[pa.Table]:
        """Rows matching ``expr`` (None = all), projected to ``columns``. ``selective``: the caller
        expects few hits, so read the filter's columns first (late materialization). Columns
        added to the signal after the block was written read as nulls."""
        rgs = self.row_groups(expr)
        if not rgs:
            return
        wanted = columns
        columns = [c for c in columns if c in self._names]
        probe_cols = None
        if expr is not None and selective:
            probe_cols = referenced_columns(expr, self.schema.names)
            if TIME_COLUMN not in probe_cols:
                probe_cols.append(TIME_COLUMN)
            if set(columns) <= set(probe_cols):
                probe_cols = None  # the narrow read would be the full read
        read_cols = (
            columns
            if expr is None
            else list(dict.fromkeys(columns + referenced_columns(expr, self.schema.names)))
        )
        pending: list[pa.Table] = []
        rows = 0
        try:
            with self.objstore.open(self.key) as f:
                pf = self._file(f)
                for rg in rgs:
                    t = self._read_rg(pf, rg, expr, columns, read_cols, probe_cols)
                    if t is None or t.num_rows == 0:
                        continue
                    pending.append(t)
                    rows += t.num_rows
                    if rows >= YIELD_ROWS:
                        yield self._conform(pa.concat_tables(pending), wanted)
                        pending, rows = [], 0
        except (OSError, pa.ArrowException) as e:
            raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e
        if pending:
            yield self._conform(pa.concat_tables(pending), wanted)

    def _read_rg(self, pf, rg, expr, columns, read_cols, probe_cols) -> pa.Table | None:
        if probe_cols is not None:
            try:
                probe = pf.read_row_group(rg, columns=probe_cols)
                probe = probe.append_column(_ROW, pa.array(np.arange(probe.num_rows, dtype=np.int64)))
                hits = probe.filter(expr).column(_ROW)
            except (pa.ArrowInvalid, KeyError):
                hits = None  # the expression needs more columns than we guessed: full read
            if hits is not None:
                return pf.read_row_group(rg, columns=columns).take(hits) if len(hits) else None
        t = pf.read_row_group(rg, columns=read_cols)
        if expr is not None:
            try:
                t = t.filter(expr)
            except pa.ArrowInvalid:  # refers to a column we did not guess: read them all
                t = pf.read_row_group(rg).filter(expr)
        return t.select(columns) if t.schema.names != columns else t


READERS: dict[int, Callable[[ObjectStore, BlockMeta, SignalSpec], ParquetBlockReaderV1]] = {
    1: ParquetBlockReaderV1,
}


class Block:
    """One block in the object store: its meta and a lazily built, cached reader."""

    __slots__ = ("meta", "objstore", "spec", "_reader", "_bloom", "_lock")

    def __init__(
        self,
        meta: BlockMeta,
        objstore: ObjectStore,
        spec: SignalSpec,
        bloom: BloomFilter | None | object = _UNLOADED,
    ):
        own = spec.block_format
        if meta.format_version not in READERS and (own is None or own.version != meta.format_version):
            raise Unavailable(
                f"block {meta.tenant}/{meta.signal}/{meta.block_id} has format version {meta.format_version}; "
                f"this build reads {sorted({*READERS, *([own.version] if own else [])})}",
                reason="block_format",
            )
        self.meta = meta
        self.objstore = objstore
        self.spec = spec
        self._reader = None
        self._bloom = bloom  # _UNLOADED until load_bloom() has answered
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.meta.block_id

    def reader(self) -> ParquetBlockReaderV1:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    make = READERS.get(self.meta.format_version)
                    if make is None:  # the signal's own format (checked in __init__)
                        make = self.spec.block_format.reader  # type: ignore[union-attr]
                    self._reader = make(self.objstore, self.meta, self.spec)
        return self._reader

    def bloom(self) -> BloomFilter | None:
        """The block's Bloom filter (loaded once, then kept), or None. Unavailable on I/O failure."""
        if self._bloom is _UNLOADED:
            with self._lock:
                if self._bloom is _UNLOADED:
                    self._bloom = load_bloom(self.objstore, self.meta, self.spec)
        return self._bloom  # type: ignore[return-value]

    def __repr__(self) -> str:
        m = self.meta
        return f"Block({m.tenant}/{m.signal}/{m.block_id}, rows={m.rows}, level={m.level})"
