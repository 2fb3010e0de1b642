"""Reading format-2 log blocks (``chunks``): ``LogChunkReader``, the engine's reader interface
(``scan``, ``read_all``) and the line-filter read (``select_lines``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard
from numba import njit

from kms.errors import Unavailable
from kms.logs.recordids import IDS_BYTES, get_u64, join_texts, no_ids, put_u64
from kms.storage import layout
from kms.storage.block import YIELD_ROWS, BlockMeta, referenced_columns
from kms.storage.objstore import ObjectStore
from kms.storage.types import SignalSpec

from . import linefind
from .chunklayout import (
    DICT_BYTES,
    ID_COLS,
    INDEX_COLS,
    MAGIC,
    META_COLS,
    OPTIONAL_COLS,
    TIME_COLS,
    TRAILER,
    string_parts,
)
from .grams import BITS, may_contain, needle_buckets
from .linefind import find_lines
from .linevars import hex_bytes, join, lines_at, on_templates

__all__ = ["LogChunkReader", "Literal", "ReadCounter", "Directory", "exact_groups", "local_starts", "warm"]

#: decompressed bytes of frames searched together by ``find_lines``: a few hundred frames, in the CPU cache
_SEARCH_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Literal:
    """Text some line must contain for a filter to keep it (one of a filter's alternatives)."""

    text: str
    case_sensitive: bool = True


@dataclass(slots=True)
class ReadCounter:
    """Lines and line bytes of the selected streams in the range (what a query "processed"),
    whether or not their chunks had to be decompressed."""

    lines: int = 0
    bytes: int = 0


@dataclass(slots=True)
class _Hits:
    """Hits of ``_search`` not yet turned into a table: per searched step, their chunks (positions
    in the read's ids), entries in those chunks and (with lines) the lines."""

    k: list[np.ndarray] = field(default_factory=list)
    row: list[np.ndarray] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    n: int = 0

    def add(self, k: np.ndarray, row: np.ndarray, lines: list[bytes] | None) -> None:
        if len(k):
            self.k.append(k)
            self.row.append(row)
            self.lines += lines or []
            self.n += len(k)


class LogChunkReader:
    """Reads format-2 log blocks. The directory's per-chunk columns are kept in memory from the
    start, its times and metadata (~3 bytes an entry, as numpy arrays per directory row group)
    once a read first needs them; a read decompresses only the frames of the chunks it needs.

    The line-filter read (``_search``) decompresses the frames one by one (with their stream's
    dictionary; of split chunks, the templates only, when the literals allow) and searches them
    about a MiB at a time in one compiled pass (``linefind``); the hit lines of split chunks are
    joined with their variables in one compiled pass (not at all for a count), and the times and
    metadata of the few hits are computed without arrays of every entry of their chunks
    (``Directory._picked``). What is left is mostly zstd (~1.4 GB/s of templates here): a count
    over ``|= "upstream timeout"`` in 10M lines spends ~22 ms decompressing of ~50."""

    def __init__(self, objstore: ObjectStore, meta: BlockMeta, spec: SignalSpec):
        self.objstore = objstore
        self.meta = meta
        self.schema = spec.schema
        self.key = layout.block_data_key(meta.tenant, meta.signal, meta.block_id)
        try:
            with objstore.open(self.key) as f:
                size = f.size()
                dir_off, dir_len, magic = TRAILER.unpack(f.read_at(TRAILER.size, size - TRAILER.size))
                if magic != MAGIC:
                    raise Unavailable(f"block {self.key}: not a format-2 log block", reason="block_format")
                self._dir_at = (dir_off, dir_len)
                pf = pq.ParquetFile(pa.BufferReader(f.read_at(dir_len, dir_off)))
                names = set(pf.schema_arrow.names)
                idx = pf.read(columns=[c for c in INDEX_COLS if c in names or c not in OPTIONAL_COLS])
                sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        except (OSError, pa.ArrowException) as e:
            raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e
        d = pc.dictionary_encode(idx.column("stream").combine_chunks())
        self.stream_texts: list[str] = d.dictionary.to_pylist()
        self.stream_codes = d.indices.to_numpy(zero_copy_only=False)
        col = {n: idx.column(n).to_numpy() for n in idx.column_names if n not in ("stream", "grams")}
        self.min_ns, self.max_ns, self.rows = col["min_time_ns"], col["max_time_ns"], col["rows"].astype(np.int64)
        self.length, self.size, self.sep = col["length"], col["size"], col["sep"]
        self.offset = len(MAGIC) + local_starts(self.length)  # frames follow the magic in chunk order
        self.dict_of = col["dict"].astype(np.int64) if "dict" in col else np.full(len(self.rows), -1, np.int64)
        self.vlen = col["vlen"].astype(np.int64) if "vlen" in col else np.zeros(len(self.rows), np.int64)
        self.has_ids = "ids" in names  # blocks written before record ids have none
        self._row_groups: dict[int, pa.Table] = {}  # directory row group -> times and metadata
        self._dicts: dict[int, zstandard.ZstdCompressionDict] = {}  # dictionary chunk -> its dictionary
        self._map: memoryview | None = None  # the block file mapped, once a line filter reads it
        self.rg_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # first chunk of each
        self.row_start = np.concatenate([[0], np.cumsum(self.rows)])
        grams = idx.column("grams").combine_chunks()
        self.grams = string_parts(grams)[1].reshape(-1, BITS // 8)

    # -- the engine's reader interface --
    def row_groups(self, expr) -> list[int]:
        return [0]

    def read_all(self) -> pa.Table:
        """Every entry, in the signal's schema (record ids in the metadata texts)."""
        parts = list(self.scan(None, list(self.schema.names), False))
        return pa.concat_tables(parts).cast(self.schema) if parts else self.schema.empty_table()

    def scan(self, expr: pc.Expression | None, columns: list[str], selective: bool = False) -> Iterator[pa.Table]:
        """Rows matching ``expr`` projected to ``columns``, in block order. ``expr`` is evaluated on
        the cheap columns first; frames are read only for chunks with hits (and only if ``line``
        is wanted)."""
        refs = set(referenced_columns(expr, self.schema.names)) if expr is not None else set()
        if "line" in refs:  # a filter on lines: decode everything, then filter
            with self._open() as f:
                d = Directory(self, f)
                for ids in self._groups(np.arange(len(self.rows))):
                    t = self._cheap(d, ids, True).append_column("line", self._lines(f, ids)).filter(expr)
                    if t.num_rows:
                        yield _with_ids(t, columns)
            return
        with self._open() as f:
            d = Directory(self, f)
            every = np.arange(len(self.rows))
            if "metadata" in refs:  # rare: metadata texts for every entry
                cheap = self._cheap(d, every, True)
                times = cheap.column("time_ns").to_numpy()
            else:  # streams as dictionary codes: no text per entry until an entry is kept
                times, _ = d.columns(every, False)
                codes = pa.array(np.repeat(self.stream_codes, self.rows).astype(np.int32))
                cheap = pa.table({"time_ns": pa.array(times), "stream": pa.DictionaryArray.from_arrays(
                    codes, pa.array(self.stream_texts, pa.string()))})
            if expr is None:
                rows = np.arange(len(times), dtype=np.int64)
            else:
                cheap = cheap.append_column("__row", pa.array(np.arange(cheap.num_rows, dtype=np.int64)))
                try:
                    rows = cheap.filter(expr).column("__row").to_numpy()
                except (pa.ArrowNotImplementedError, pa.ArrowInvalid, TypeError):  # an op without dictionary kernels
                    rows = cheap.set_column(1, "stream", cheap.column("stream").cast(pa.string())).filter(expr) \
                        .column("__row").to_numpy()
            if not len(rows):
                return
            chunk_of = np.searchsorted(self.row_start, rows, "right") - 1
            texts = pa.array(self.stream_texts, pa.string())
            for ids in self._groups(np.unique(chunk_of)):
                lo, hi = np.searchsorted(chunk_of, [ids[0], ids[-1] + 1])
                local = _local_rows(rows[lo:hi], self.row_start, ids)
                out = {"time_ns": pa.array(times[rows[lo:hi]]),
                       "stream": texts.take(pa.array(self.stream_codes[chunk_of[lo:hi]]))}
                if "metadata" in columns:
                    out["metadata"] = d.columns(ids, True, local)[1]
                if "line" in columns:
                    out["line"] = self._lines(f, ids).take(pa.array(local))
                yield _with_ids(pa.table(out), columns)

    # -- the line-filter path --
    def select_lines(self, keep_stream: Callable[[str], bool], start_ns: int, end_ns: int,
                     literals: Sequence[Sequence[Literal]], counter: ReadCounter | None = None,
                     lines: bool = True) -> Iterator[pa.Table]:
        """Entries of the streams ``keep_stream`` accepts with ``start_ns <= time_ns <= end_ns``,
        of the chunks that may hold, for every group of ``literals``, one of its literals; a
        superset of the entries passing the filters the literals came from (apply them after).

        ``lines=False`` (only with ``exact_groups``' groups): exactly the entries holding one
        literal of every group, with empty lines: a count needs no line text, and the lines of
        split chunks are then never joined."""
        verdict = np.fromiter((keep_stream(s) for s in self.stream_texts), dtype=bool, count=len(self.stream_texts))
        ok = verdict[self.stream_codes] & (self.max_ns >= start_ns) & (self.min_ns <= end_ns)
        if not ok.any():
            return
        partial = ok & ((self.min_ns < start_ns) | (self.max_ns > end_ns))
        with self._open() as f:
            d = Directory(self, f)
            if counter is not None:
                self._count(d, ok, partial, start_ns, end_ns, counter)
            masks = [[may_contain(self.grams, needle_buckets(x.text, x.case_sensitive)) for x in g] for g in literals]
            for group in masks:
                ok &= np.logical_or.reduce(group)
            exact = [[x.text.encode() for x in g] for g in literals if all(x.case_sensitive for x in g)]
            pick = bool(exact) and len(exact) == len(literals)  # only lines holding the literals are built
            ids_all = np.flatnonzero(ok)
            if pick:  # finds the hits itself: one search of each frame
                yield from self._search(f, d, ids_all, exact, np.array(masks[0])[:, ids_all], partial, start_ns, end_ns, lines)
                return
            for lo in range(0, len(ids_all), 256):  # bounded memory: 256 frames at a time
                ids = ids_all[lo:lo + 256]
                frames = self._frames(f, ids)
                if exact:
                    keep = [i for i, fr in enumerate(frames) if all(any(fr.find(x) >= 0 for x in g) for g in exact)]
                    if not keep:
                        continue
                    ids = ids[keep]
                    frames = [frames[i] for i in keep]
                t = self._cheap(d, ids, True).append_column("line", self._decode(frames, ids))
                yield from self._in_range(t, partial[ids].any(), start_ns, end_ns)

    def _search(self, f, d: Directory, ids: np.ndarray, exact: list[list[bytes]], may: np.ndarray,
                partial: np.ndarray, start_ns: int, end_ns: int, lines: bool = True) -> Iterator[pa.Table]:
        """The entries of chunks ``ids`` whose line holds one literal of every group of
        ``exact`` (and maybe a few others), so only those lines become Arrow strings. Frames
        are decompressed one call each and searched about ``_SEARCH_BYTES`` at a time by one
        compiled pass (``find_lines``), a literal of the first group only in the chunks whose
        signature may hold it (``may[i]`` over ``ids``). Chunks stored with lengths (lines with
        newlines) are decoded whole."""
        zd = _Decompressors(self, f)
        dicts, sep, size, vlen = (self.dict_of[ids].tolist(), self.sep[ids].tolist(), self.size[ids].tolist(),
                                  self.vlen[ids].tolist())
        by_dict = {c: zd.get(c).decompress for c in set(dicts)}
        decompress = [by_dict[c] for c in dicts]
        # split chunks are searched in their templates alone when no literal could touch a variable part
        templates = all(on_templates(x) for g in exact for x in g)
        hits = _Hits()
        whole: list[int] = []  # positions in ids of chunks decoded whole
        frames: list[bytes] = []
        # steps of about _SEARCH_BYTES of decompressed frames
        mib = np.cumsum(self.size[ids]) // _SEARCH_BYTES
        bounds = [0, *(np.flatnonzero(np.diff(mib)) + 1).tolist(), len(ids)]
        stored = self._compressed(f, ids)
        try:
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                ks = list(range(lo, hi))
                srcs = list(islice(stored, hi - lo))
                if templates:
                    fs = [decompress[k](src[:len(src) - vlen[k]], max_output_size=size[k])
                          for k, src in zip(ks, srcs, strict=True)]
                else:
                    fs = [zd.text(i, src) for i, src in zip(ids[lo:hi].tolist(), srcs, strict=True)]
                if not all(sep[lo:hi]):
                    lone = [(k, fr) for k, fr in zip(ks, fs, strict=True) if not sep[k]]
                    ks, fs = [k for k in ks if sep[k]], [fr for k, fr in zip(ks, fs, strict=True) if sep[k]]
                    for k, fr in lone:
                        if all(any(x in fr for x in g) for g in exact):
                            whole.append(k)
                            frames.append(fr)
                if fs:
                    hits.add(*self._found(fs, ks, exact, may[:, ks], lines, templates, srcs, lo, vlen, size, zd))
                if hits.n >= YIELD_ROWS or len(whole) >= 256:  # bounded memory
                    yield from self._hits(d, ids, hits, whole, frames, partial, start_ns, end_ns, exact, lines)
                    hits, whole, frames = _Hits(), [], []
        except (zstandard.ZstdError, ValueError) as e:
            raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e
        yield from self._hits(d, ids, hits, whole, frames, partial, start_ns, end_ns, exact, lines)

    @staticmethod
    def _found(fs: list[bytes], ks: list[int], exact: list[list[bytes]], may: np.ndarray, lines: bool, templates: bool,
               srcs: list, lo: int, vlen: list[int], size: list[int], zd: _Decompressors
               ) -> tuple[np.ndarray, np.ndarray, list[bytes] | None]:
        """(chunk positions, entries, lines or None) of the lines of frames ``fs`` (of chunks
        ``ks``) holding a literal of every group of ``exact``: lines of split chunks' templates
        joined with their variables."""
        buf = fs[0] if len(fs) == 1 else b"".join(fs)
        sizes = np.fromiter(map(len, fs), np.int64, len(fs))
        frame, entry, begin, stop = find_lines(buf, sizes, exact, may)
        k = np.asarray(ks, np.int64)[frame]
        if not lines:
            return k, entry, None
        found = [buf[a:b] for a, b in zip(begin.tolist(), stop.tolist(), strict=True)]
        if templates and any(vlen[j] for j in k.tolist()):
            at = begin - (np.cumsum(sizes) - sizes)[frame]
            found = _joined(k, at, found, dict(zip(ks, fs, strict=True)), srcs, lo, vlen, size, zd)
        return k, entry, found

    def _hits(self, d: Directory, ids: np.ndarray, hits: _Hits, whole: list[int], frames: list[bytes],
              partial: np.ndarray, start_ns: int, end_ns: int, exact: list[list[bytes]], lines: bool
              ) -> Iterator[pa.Table]:
        """The table of the ``hits`` of ``_search`` (entry ``row`` of chunk ``ids[k]``, in block
        order) and of the entries of chunks ``ids[whole]`` (their ``frames``; without ``lines``,
        only those holding a literal of each group of ``exact``), in block order."""
        texts = pa.array(self.stream_texts, pa.string())
        parts: list[pa.Table] = []
        keys: list[np.ndarray] = []
        if hits.n:
            k, row = np.concatenate(hits.k), np.concatenate(hits.row)
            ks = np.unique(k)
            cid = ids[ks]
            times, meta = d.columns(cid, True, local_starts(self.rows[cid])[np.searchsorted(ks, k)] + row)
            parts.append(pa.table({"time_ns": pa.array(times), "stream": texts.take(pa.array(self.stream_codes[ids[k]])),
                                   "line": (pa.array(hits.lines, pa.binary()).cast(pa.string()) if lines
                                            else _empty_strings(len(k))), "metadata": meta}))
            keys.append(k * (1 << 32) + row)
        if whole:
            w = np.asarray(whole, np.int64)
            wid = ids[w]
            rows = self.rows[wid]
            t = self._cheap(d, wid, True).append_column("line", self._decode(frames, wid))
            key = np.repeat(w * (1 << 32), rows) + np.arange(int(rows.sum())) - np.repeat(local_starts(rows), rows)
            if not lines:  # exactly the lines holding the literals, then without their text
                text = t.column("line")
                keep = np.logical_and.reduce([np.logical_or.reduce(
                    [pc.match_substring(text, x.decode()).to_numpy(zero_copy_only=False) for x in g]) for g in exact])
                t, key = t.filter(pa.array(keep)), key[keep]
                t = t.set_column(t.schema.get_field_index("line"), "line", _empty_strings(t.num_rows))
            parts.append(t.select(["time_ns", "stream", "line", "metadata"]))
            keys.append(key)
        if not parts:
            return
        t = parts[0] if len(parts) == 1 else pa.concat_tables(parts).take(pa.array(np.argsort(np.concatenate(keys))))
        if partial.any():
            inside = partial[ids[np.unique(np.concatenate(keys) >> 32)]].any()
        else:
            inside = False
        yield from self._in_range(t, bool(inside), start_ns, end_ns)

    @staticmethod
    def _in_range(t: pa.Table, partial: bool, start_ns: int, end_ns: int) -> Iterator[pa.Table]:
        t = t.select(["time_ns", "stream", "line", "metadata"])
        if partial:
            tv = t.column("time_ns").to_numpy()
            t = t.filter(pa.array((tv >= start_ns) & (tv <= end_ns)))
        if t.num_rows:
            yield t

    def stream_set(self) -> frozenset[str]:
        return frozenset(self.stream_texts)

    # -- helpers --
    def _open(self):
        try:
            return self.objstore.open(self.key)
        except (OSError, pa.ArrowException) as e:
            raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e

    def _count(self, d: Directory, ok: np.ndarray, partial: np.ndarray, start_ns: int, end_ns: int, c: ReadCounter) -> None:
        line_bytes = self.size - np.where(self.sep, 1, 4) * self.rows
        whole = ok & ~partial
        c.lines += int(self.rows[whole].sum())
        c.bytes += int(line_bytes[whole].sum())
        ids = np.flatnonzero(partial)
        if len(ids):  # by the share of each chunk's entries in the range
            tv = self._cheap(d, ids, False).column("time_ns").to_numpy()
            inside = ((tv >= start_ns) & (tv <= end_ns)).astype(np.int64)
            counts = np.add.reduceat(inside, local_starts(self.rows[ids]))
            c.lines += int(counts.sum())
            c.bytes += int((line_bytes[ids] * counts / self.rows[ids]).sum())

    def _cheap(self, d: Directory, ids: np.ndarray, with_meta: bool) -> pa.Table:
        """time_ns, stream (and metadata) of the entries of chunks ``ids`` (ascending)."""
        times, meta = d.columns(ids, with_meta)
        codes = np.repeat(self.stream_codes[ids], self.rows[ids])
        cols = [pa.array(times), pa.array(self.stream_texts, pa.string()).take(pa.array(codes))]
        if with_meta:
            cols.append(meta)
        return pa.Table.from_arrays(cols, names=["time_ns", "stream", "metadata"][:len(cols)])

    def _groups(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        """Runs of ascending chunk ids holding at most about YIELD_ROWS entries."""
        lo = 0
        total = 0
        for k in range(len(ids)):
            total += int(self.rows[ids[k]])
            if total >= YIELD_ROWS:
                yield ids[lo:k + 1]
                lo, total = k + 1, 0
        if lo < len(ids):
            yield ids[lo:]

    def _frames(self, f, ids: np.ndarray) -> list[bytes]:
        """Decompressed frames of chunks ``ids`` (split chunks joined)."""
        zd = _Decompressors(self, f)
        try:
            return [zd.text(i, src) for i, src in zip(ids.tolist(), self._compressed(f, ids), strict=True)]
        except (zstandard.ZstdError, ValueError) as e:
            raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e

    def _compressed(self, f, ids: np.ndarray) -> Iterator[memoryview]:
        """The frames of chunks ``ids`` as stored, one at a time: slices of the block file mapped
        into memory (mapped once per reader: pages fault in once, not once per read), else from
        reads of runs of adjacent frames (of nearby ones when each read is a round trip)."""
        off, length = self.offset[ids].tolist(), self.length[ids].tolist()
        if self._map is None and not self.objstore.remote:
            self._map = self.objstore.map(self.key)
        if self._map is not None:
            mv = self._map
            for o, n in zip(off, length, strict=True):
                yield mv[o:o + n]
            return
        gap = (1 << 20) if self.objstore.remote else 0
        k = 0
        while k < len(ids):
            j = k
            while j + 1 < len(ids) and off[j + 1] - (off[j] + length[j]) <= gap and j - k < 255:
                j += 1
            start = off[k]
            try:
                buf = f.read_at(off[j] + length[j] - start, start)
            except (OSError, pa.ArrowException) as e:
                raise Unavailable(f"cannot read block {self.key}: {e}", reason="objstore") from e
            mv = memoryview(buf)
            for i in range(k, j + 1):
                yield mv[off[i] - start:off[i] - start + length[i]]
            k = j + 1

    def _lines(self, f, ids: np.ndarray) -> pa.Array:
        return self._decode(self._frames(f, ids), ids)

    def _decode(self, frames: list[bytes], ids: np.ndarray) -> pa.Array:
        """The lines of chunks ``ids`` from their frames, as one string array."""
        parts: list[pa.Array] = []
        k = 0
        while k < len(ids):
            if not self.sep[ids[k]]:
                parts.append(_unlength(frames[k], int(self.rows[ids[k]])))
                k += 1
                continue
            j = k
            while j < len(ids) and self.sep[ids[j]]:
                j += 1
            parts.append(_unjoin(b"".join(frames[k:j]), int(self.rows[ids[k:j]].sum())))
            k = j
        if not parts:
            return pa.array([], pa.string())
        return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)


class _RowGroup:
    """One directory row group's per-entry columns, decoded once into numpy (time deltas and
    metadata codes as stored, each chunk's metadata texts flattened into one array)."""

    __slots__ = ("unit", "deltas", "codes", "values", "vstart")

    def __init__(self, t: pa.Table, n: int, chunk_rows: np.ndarray):
        self.unit = int(t.column("time_unit")[0].as_py()) if t.num_rows else 1
        self.deltas = _deltas(t.column("deltas").combine_chunks(), chunk_rows, n)
        off, raw = string_parts(t.column("meta_codes").combine_chunks())
        stored = np.diff(off) > 0  # chunks of one metadata text store no codes (all 0)
        width = len(raw) // max(1, int(chunk_rows[stored].sum())) or 1
        if stored.all():
            self.codes = np.frombuffer(raw.tobytes(), f"<u{width}")
        else:
            self.codes = np.zeros(n, f"<u{width}")
            self.codes[np.repeat(stored, chunk_rows)] = np.frombuffer(raw.tobytes(), f"<u{width}")
        values = t.column("meta_values").combine_chunks()
        off = values.offsets.to_numpy().astype(np.int64)
        self.vstart = off - off[0]  # each chunk's first text in ``values``
        self.values = values.flatten()


class _Decompressors:
    """zstd decompressors of one read (not shared between threads): a plain one, and one per
    dictionary chunk. The dictionaries themselves (a chunk's first frame, decompressed when a
    read first needs it) are kept by the reader for later reads: ~4 KiB a stream."""

    def __init__(self, reader: LogChunkReader, f):
        self.reader = reader
        self.f = f
        self.plain = zstandard.ZstdDecompressor()
        self._by_dict: dict[int, zstandard.ZstdDecompressor] = {}

    def get(self, dict_chunk: int) -> zstandard.ZstdDecompressor:
        if dict_chunk < 0:
            return self.plain
        z = self._by_dict.get(dict_chunk)
        if z is None:
            r = self.reader
            d = r._dicts.get(dict_chunk)
            if d is None:
                at, n = int(r.offset[dict_chunk]), int(r.length[dict_chunk] - r.vlen[dict_chunk])
                try:
                    raw = self.plain.decompress(self.f.read_at(n, at), max_output_size=int(r.size[dict_chunk]))
                except (OSError, pa.ArrowException, zstandard.ZstdError) as e:
                    raise Unavailable(f"cannot read block {r.key}: {e}", reason="objstore") from e
                d = r._dicts[dict_chunk] = zstandard.ZstdCompressionDict(raw[:DICT_BYTES],
                                                                          dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            z = self._by_dict[dict_chunk] = zstandard.ZstdDecompressor(dict_data=d)
        return z

    def text(self, chunk: int, stored) -> bytes:
        """Chunk ``chunk``'s decompressed bytes from its ``stored`` bytes (joined, if split)."""
        r = self.reader
        vlen, size = int(r.vlen[chunk]), int(r.size[chunk])
        z = self.get(int(r.dict_of[chunk]))
        if not vlen:
            return z.decompress(stored, max_output_size=size)
        template = z.decompress(stored[:len(stored) - vlen], max_output_size=size)
        return join(template, *self.variables(template, stored[len(stored) - vlen:], size), size)

    def variables(self, template: bytes, stored, size: int) -> tuple[bytes, bytes]:
        """(digits, hex id bytes) of a split chunk from its template and the ``stored`` bytes
        after the template's frame."""
        n = len(stored) - hex_bytes(template)
        if n < 0:
            raise ValueError("the template names more hex ids than are stored")
        return (self.plain.decompress(stored[:n], max_output_size=size) if n else b""), bytes(stored[n:])


class Directory:
    """The directory of one block during one read: row groups decoded once, when first needed."""

    def __init__(self, reader: LogChunkReader, f):
        self.reader = reader
        self.f = f
        self._pf: pq.ParquetFile | None = None
        self._ids: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _file(self) -> pq.ParquetFile:
        if self._pf is None:
            off, n = self.reader._dir_at
            self._pf = pq.ParquetFile(pa.BufferReader(self.f.read_at(n, off)))
        return self._pf

    def _row_group(self, rg: int) -> _RowGroup:
        # decoded row groups are kept by the reader: ~3 bytes an entry, read once per block
        cache = self.reader._row_groups
        t = cache.get(rg)
        if t is None:
            r = self.reader
            rows = int(r.row_start[r.rg_start[rg + 1]] - r.row_start[r.rg_start[rg]])
            t = cache[rg] = _RowGroup(self._file().read_row_group(rg, columns=TIME_COLS + META_COLS), rows,
                                      r.rows[r.rg_start[rg]:r.rg_start[rg + 1]])
        return t

    def _entries(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row group of each of chunks ``ids``, each entry's index in the block, the position
        of each chunk's first entry among them)."""
        r = self.reader
        rows = r.rows[ids]
        starts = local_starts(rows)
        entries = np.arange(int(rows.sum()), dtype=np.int64) + np.repeat(r.row_start[ids] - starts, rows)
        return np.searchsorted(r.rg_start, ids, "right") - 1, entries, starts

    def meta_codes(self, ids: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """(metadata texts of each of chunks ``ids``, each entry's index in its chunk's texts)."""
        r = self.reader
        rgs, entries, _ = self._entries(ids)
        values, codes = [], []
        for rg in np.unique(rgs).tolist():
            g = self._row_group(rg)
            sel = ids[rgs == rg] - r.rg_start[rg]
            lo, hi = g.vstart[sel], g.vstart[sel + 1]
            n = hi - lo
            flat = g.values.take(pa.array(np.arange(int(n.sum()), dtype=np.int64) + np.repeat(lo - local_starts(n), n)))
            values.append(pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(n)]).astype(np.int32)),
                                                   flat))
            e0, e1 = np.searchsorted(entries, [r.row_start[r.rg_start[rg]], r.row_start[r.rg_start[rg + 1]]])
            codes.append(g.codes[entries[e0:e1] - r.row_start[r.rg_start[rg]]].astype(np.int64))
        return pa.concat_arrays(values), np.concatenate(codes)

    def columns(self, ids: np.ndarray, with_meta: bool,
                pick: np.ndarray | None = None) -> tuple[np.ndarray, pa.Array | None]:
        """(times, metadata or None) of the entries of chunks ``ids`` (ascending), or of those at
        positions ``pick`` (ascending) among them: metadata texts are built for those only."""
        r = self.reader
        if not len(ids):
            return np.empty(0, np.int64), (pa.array([], pa.string()) if with_meta else None)
        rows = r.rows[ids]
        if pick is not None and len(pick) * 16 < int(rows.sum()):  # a few: no array of every entry
            return self._picked(ids, pick, with_meta)
        rgs, entries, starts = self._entries(ids)
        first = r.row_start[r.rg_start]  # first entry of each row group
        bounds = np.searchsorted(entries, first)
        deltas = np.empty(len(entries), np.int64)
        unit = 1
        groups = []
        for rg in np.unique(rgs).tolist():
            g = self._row_group(rg)
            lo, hi = int(bounds[rg]), int(bounds[rg + 1])
            deltas[lo:hi] = g.deltas[entries[lo:hi] - first[rg]]
            unit = g.unit  # one unit and width a block
            groups.append((rg, g, lo, hi))
        cs = np.cumsum(deltas)
        # a chunk's first delta is 0: its entries' times are its first time plus the sums since
        times = np.repeat(r.min_ns[ids] - cs[starts] * unit, rows) + cs * unit  # a chunk's first entry is its oldest
        if pick is not None:
            times = times[pick]
        if not with_meta:
            return times, None
        meta: list[pa.Array] = [pa.array([], pa.string())]
        chunk_of = np.repeat(ids, rows)
        for rg, g, lo, hi in groups:
            if pick is None:
                at: np.ndarray | slice = slice(lo, hi)
            else:
                a, b = np.searchsorted(pick, [lo, hi])
                at = pick[a:b]
            index = g.vstart[chunk_of[at] - r.rg_start[rg]] + g.codes[entries[at] - first[rg]]
            meta.append(g.values.take(pa.array(index)))
        texts = meta[1] if len(meta) == 2 else pa.concat_arrays(meta)
        if pick is not None:
            chunk_of, entries = chunk_of[pick], entries[pick]
        return times, self._joined(texts, chunk_of, entries - r.row_start[chunk_of], times)

    def _picked(self, ids: np.ndarray, pick: np.ndarray, with_meta: bool) -> tuple[np.ndarray, pa.Array | None]:
        """``columns`` of a few entries: each time is its chunk's first time plus the sum of its
        chunk's deltas up to it, summed in place (``_range_sums``), with no array of every entry."""
        r = self.reader
        if not len(pick):
            return np.empty(0, np.int64), (pa.array([], pa.string()) if with_meta else None)
        j = np.searchsorted(local_starts(r.rows[ids]), pick, "right") - 1
        c = ids[j]
        s = r.row_start[c]  # first entry of each pick's chunk in the block
        e = s + pick - local_starts(r.rows[ids])[j]
        rgs = np.searchsorted(r.rg_start, c, "right") - 1
        sums = np.empty(len(pick), np.int64)
        meta: list[pa.Array] = []
        unit = 1
        bounds = np.flatnonzero(np.diff(rgs)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(pick)], strict=True):
            rg = int(rgs[lo])
            g = self._row_group(rg)
            unit = g.unit  # one unit a block
            base = r.row_start[r.rg_start[rg]]
            ee = e[lo:hi] - base
            _range_sums(g.deltas, s[lo:hi] - base, ee, sums[lo:hi])
            if with_meta:
                meta.append(g.values.take(pa.array(g.vstart[c[lo:hi] - r.rg_start[rg]] + g.codes[ee])))
        times = r.min_ns[c] + sums * unit
        if not with_meta:
            return times, None
        return times, self._joined(meta[0] if len(meta) == 1 else pa.concat_arrays(meta), c, e - s, times)

    def _joined(self, texts: pa.Array, chunks: np.ndarray, local: np.ndarray, times: np.ndarray) -> pa.Array:
        """The metadata ``texts`` of entries (row ``local`` of chunk ``chunks``, at ``times``)
        with their record ids."""
        if not self.reader.has_ids or not len(texts):
            return texts
        return join_texts(texts, self._id_rows(chunks, local, times))

    def _id_group(self, rg: int) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, bytes) of the record ids of the chunks of directory row group ``rg``
        (kept for this read only: 32 bytes an entry)."""
        got = self._ids.get(rg)
        if got is None:
            got = self._ids[rg] = string_parts(self._file().read_row_group(rg, columns=ID_COLS).column(0)
                                               .combine_chunks())
        return got

    def _id_rows(self, chunks: np.ndarray, local: np.ndarray, times: np.ndarray) -> np.ndarray:
        """The record ids (``recordids.id_matrix`` rows) of entries ``local`` of ``chunks``."""
        r = self.reader
        out = np.zeros((len(chunks), IDS_BYTES), np.uint8)
        rgs = np.searchsorted(r.rg_start, chunks, "right") - 1
        for rg in np.unique(rgs).tolist():
            sel = np.flatnonzero(rgs == rg)
            off, data = self._id_group(rg)
            ci = chunks[sel] - r.rg_start[rg]
            has = off[ci + 1] > off[ci]
            if not has.any():
                continue
            sel = sel[has]
            _gather_ids(data, off[ci[has]], r.rows[chunks[sel]], local[sel], times[sel], sel, out)
        return out

    def id_blobs(self) -> pa.Array:
        """The record ids of every chunk, as stored (``chunks._id_blobs``)."""
        r = self.reader
        if not r.has_ids:
            return no_ids(len(r.rows))
        return pa.concat_arrays([self._file().read_row_group(rg, columns=ID_COLS).column(0).combine_chunks()
                                 for rg in range(len(r.rg_start) - 1)])


@njit(cache=True, nogil=True)
def _gather_ids(data, start, rows, local, times, dest, out):  # pragma: no cover
    """Row ``dest[i]`` of ``out``: the record ids of entry ``local[i]`` (at ``times[i]``) of the
    chunk whose ids (``chunks._id_blobs``, ``rows[i]`` entries) start at ``data[start[i]]``."""
    for i in range(len(start)):
        b, k, j, row = start[i], rows[i], local[i], dest[i]
        for q in range(16):
            out[row, q] = data[b + 16 * j + q]
        for q in range(8):
            out[row, 16 + q] = data[b + 16 * k + 8 * j + q]
        put_u64(out[row], 24, get_u64(data, b + 24 * k + 8 * j) + np.uint64(times[i]))  # mod 2**64


def _with_ids(t: pa.Table, columns: list[str]) -> pa.Table:
    """``t`` (metadata texts already with their record ids) as ``columns``: ``ids`` empty."""
    if "ids" in columns:
        t = t.append_column("ids", no_ids(t.num_rows))
    return t.select(columns)


def _deltas(blobs: pa.Array, chunk_rows: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` time deltas of chunks of ``chunk_rows`` rows, from each chunk's blob of unsigned
    integers of its own width (its length over its rows; older blocks: one width a block, some
    of them written signed but never with a negative delta or one past the sign bit)."""
    off, raw = string_parts(blobs)
    sizes = np.diff(off)
    width = sizes // np.maximum(chunk_rows, 1)
    if n == 0 or (width == width[0]).all():
        return np.frombuffer(raw.tobytes(), f"<u{int(width[0]) if n else 1}")
    out = np.empty(n, np.int64)
    starts = local_starts(chunk_rows)
    for w in np.unique(width).tolist():
        sel = np.flatnonzero(width == w)
        at = np.repeat(off[sel] - local_starts(sizes[sel]), sizes[sel]) + np.arange(int(sizes[sel].sum()))
        entries = np.repeat(starts[sel] - local_starts(chunk_rows[sel]), chunk_rows[sel]) + np.arange(
            int(chunk_rows[sel].sum()))
        out[entries] = raw[at].view(f"<u{w}")
    return out


def _empty_strings(n: int) -> pa.Array:
    return pa.StringArray.from_buffers(n, pa.py_buffer(np.zeros(n + 1, np.int32)), pa.py_buffer(b""))


def exact_groups(filters_literals: Sequence[Sequence[Literal]]) -> bool:
    """Whether a line filter read of these literal groups finds exactly the lines holding one
    literal of each group (``select_lines(lines=False)``): every literal case-sensitive and
    without a newline."""
    return bool(filters_literals) and all(x.case_sensitive and "\n" not in x.text for g in filters_literals for x in g)


def _joined(k: np.ndarray, at: np.ndarray, found: list[bytes], templates: dict[int, bytes], stored: list, lo: int,
            vlen: list[int], size: list[int], zd: _Decompressors) -> list[bytes]:
    """The lines ``found`` in the templates of chunks ``k`` (each at byte ``at`` of its
    template), those of split chunks joined with their variables (``stored[j - lo]``: chunk
    ``j``'s stored bytes, its variables last)."""
    kl = k.tolist()
    split = sorted({j for j in kl if vlen[j]})
    digits, hexes = [], []
    for j in split:
        src = stored[j - lo]
        dg, hx = zd.variables(templates[j], src[len(src) - vlen[j]:], size[j])
        digits.append(dg)
        hexes.append(hx)
    pos = {j: i for i, j in enumerate(split)}
    picked = [i for i, j in enumerate(kl) if vlen[j]]
    joined = iter(lines_at([templates[j] for j in split], digits, hexes, [pos[kl[i]] for i in picked],
                           at[picked].tolist()))
    return [next(joined) if vlen[j] else text for j, text in zip(kl, found, strict=True)]


def _unjoin(buf: bytes, n: int) -> pa.Array:
    """``n`` lines, each followed by a newline (none inside a line), as a string array."""
    a = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(a == 10)
    if len(nl) != n:
        raise Unavailable(f"damaged log chunk: {len(nl)} lines, expected {n}", reason="block_format")
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = nl - np.arange(n)
    data = a[a != 10]
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data)).cast(pa.string())


def _unlength(buf: bytes, n: int) -> pa.Array:
    """``n`` lines stored as u32 lengths, then the bytes."""
    lens = np.frombuffer(buf, dtype="<u4", count=n).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf[4 * n:]))


@njit(cache=True, nogil=True)
def _range_sums(deltas, first, last, out):  # pragma: no cover (compiled)
    """``out[i] = deltas[first[i]:last[i] + 1].sum()``: one call a row group, where numpy's
    gather and ``reduceat`` took a dozen calls of a few microseconds each."""
    for i in range(len(first)):
        t = 0
        for x in deltas[first[i]:last[i] + 1]:
            t += np.int64(x)  # not mixed with uint64 (which numba would make a float)
        out[i] = t


def local_starts(rows: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)


def _local_rows(rows: np.ndarray, row_start: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions of block ``rows`` (in chunks ``ids``) among the rows of those chunks alone."""
    chunk = np.searchsorted(row_start, rows, "right") - 1
    local_start = local_starts(np.diff(row_start)[ids])
    pos = np.searchsorted(ids, chunk)
    return local_start[pos] + (rows - row_start[chunk])


def warm() -> None:
    """Compile (or load from numba's cache) the line-filter read's kernels before the first query."""
    linefind.warm()
    _gather_ids(np.zeros(IDS_BYTES, np.uint8), np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64),
                np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros((1, IDS_BYTES), np.uint8))
    may_contain(np.zeros((1, BITS // 8), np.uint8), needle_buckets("abc", True))
    for width in (np.uint8, np.uint16, np.uint32, np.uint64):
        _range_sums(np.zeros(2, width), np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64))
