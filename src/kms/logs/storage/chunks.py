"""Log blocks of format version 2: lines in zstd chunks with trigram signatures (``LOG_CHUNKS``).

A block's rows (sorted by stream, then time) are cut into chunks of one stream and about
``CHUNK_BYTES`` of lines. Each chunk's lines are one zstd frame: each followed by ``\\n`` when
none holds a newline (nearly free after compression), else ``rows`` little-endian u32 lengths
followed by the bytes. A chunk of ``\\n``-terminated lines with numbers or hex ids is split
(``linevars.py``): the frame of its template, then (``vlen`` bytes) the frame of its digits, if
any, and the bytes of its hex ids. A stream's first chunk is compressed alone; its later chunks use the first
``DICT_BYTES`` of its (first frame's) bytes as zstd dictionary, so small chunks (which a rare
needle skips more of) compress about as well as large ones. Everything else lives in a small
Parquet "directory", one row per chunk: its stream, time bounds, frames' length, lines' size,
dictionary chunk, variables' frame length, trigram signature (``grams.py``), its entries' time
deltas (in the block's time unit, as narrow as the chunk's fit), structured metadata (the chunk's
distinct texts, and a code per entry unless it has one text) and its entries' record ids
(``_id_blobs``: OTLP trace and span ids and observed times as bytes, joined into the metadata
texts only when read). Frames follow the magic in chunk order. ``data.parquet`` is::

    "KMSLOGS2" | frames | directory (Parquet) | directory offset u64 | directory length u64 | "KMSLOGS2"

Compaction of format-2 blocks (``merge``) copies frames and signatures into the merged block and
rebuilds only the directory: every line is compressed and indexed once.

Why: in Parquet pages, a line filter spent its time in zstd and string decoding of every page.
Here a filter with a literal (``|= "x"``, ``|~ "a|b"``, ``(?i)``) first drops the chunks whose
signature lacks the literal's trigrams, then decompresses the rest and searches them, joined
about a MiB at a time, with glibc's ``memmem`` in a compiled pass (``linefind.py``; in split
chunks, only the templates, when no literal could touch a variable part); only lines with a hit
become Arrow strings. Readers of blocks of
format 1 (Parquet rows, ``block.ParquetBlockReaderV1``) are unchanged, so old blocks stay readable and
compaction rewrites them in this layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard
from numba import njit

from kms.logs.bytecopy import Strings
from kms.logs.recordids import IDS_BYTES, get_u64, no_ids, put_u64
from kms.storage.block import BlockMeta
from kms.storage.objstore import ObjectStore
from kms.storage.sort import dense_ranks
from kms.storage.types import SignalSpec

from .chunklayout import DICT_BYTES, DIR_SCHEMA, MAGIC, TRAILER, string_parts
from .chunkread import Directory, Literal, LogChunkReader, ReadCounter, exact_groups, local_starts
from .grams import BITS, chunk_signatures
from .linefind import newlines
from .linevars import split_chunks

__all__ = ["LOG_CHUNKS", "LogChunkFormat", "LogChunkReader", "Literal", "ReadCounter", "CHUNK_BYTES", "exact_groups"]

#: Uncompressed line bytes a chunk aims at: small enough that a rare needle skips most chunks
#: (10M bench lines, a needle in 1 line of 2,000: 40 MB decompressed, 141 MB with 32 KiB chunks);
#: with the stream's dictionary they compress nearly as well as bigger frames (24.3 vs 24.2 bytes
#: a line at 32 KiB without one). Smaller frames cost a few microseconds each to decompress.
CHUNK_BYTES = 8 << 10
MAX_CHUNK_ROWS = 4096
#: zstd's fast strategy (level 1's) with a 32 KiB window and matches of 6 bytes or more: on 8 KiB
#: chunks of bench lines with dictionaries 24.2 bytes a line vs 24.5 at level 1, and 10% faster;
#: the lazy strategies reach 22-23 at a third to a quarter of the speed.
ZSTD_PARAMS = zstandard.ZstdCompressionParameters(window_log=15, hash_log=14, chain_log=14, search_log=1, min_match=6,
                                                  strategy=zstandard.STRATEGY_FAST)
#: a split chunk's digits (few repeats) compressed alone, matches of 4 bytes or more
VAR_ZSTD_PARAMS = zstandard.ZstdCompressionParameters(window_log=15, hash_log=14, chain_log=14, search_log=1,
                                                      min_match=4, strategy=zstandard.STRATEGY_FAST)
_ENCODE_CHUNKS = 1024  # chunks encoded together: ~8 MB of lines
_SAMPLE_ROWS = 4096  # metadata texts looked at to decide whether to dictionary-encode them
_DIR_ROW_GROUP = 1024  # chunks: a filtered read decodes times and metadata of these row groups only


def _assemble(out: list, streams: pa.Array, rb: np.ndarray, frame_len: np.ndarray,
              frame_size: np.ndarray, sep: np.ndarray, sigs: np.ndarray, tv: np.ndarray, values: _Texts,
              local: np.ndarray, dicts: np.ndarray, vlen: np.ndarray, id_blobs: pa.Array) -> pa.Buffer:
    """The block file: ``out`` (magic and frames, in chunk order), then the directory of its chunks (row bounds
    ``rb``; ``values``: each chunk's metadata texts; ``local``: each entry's index in them, not
    stored for chunks of one text; ``dicts``: each frame's dictionary chunk or -1; ``vlen``: the
    length of each chunk's variables' frame, 0 if not split; ``id_blobs``: each chunk's record
    ids, ``_id_blobs``). The directory is written a row
    group at a time, the metadata texts of its chunks taken then: a block of OTLP records holds
    ~230 characters of them an entry, whose copy in block order was the cut's largest buffer."""
    n_chunks = len(rb) - 1
    starts = rb[:-1]
    deltas = np.diff(tv, prepend=tv[:1])
    deltas[starts] = 0
    # clocks tick in ms or us more often than in ns: store deltas in the block's unit, as narrow as they fit
    unit = int(np.gcd.reduce(np.abs(deltas))) or 1 if len(deltas) else 1
    deltas //= unit
    width = 1 if len(local) == 0 or local.max() < 256 else 2 if local.max() < 65536 else 4
    rows = np.diff(rb)
    coded = values.counts() > 1  # else every code is 0
    columns = [
        streams,
        pa.array(np.minimum.reduceat(tv, starts) if n_chunks else tv[:0]),
        pa.array(np.maximum.reduceat(tv, starts) if n_chunks else tv[:0]),
        pa.array(np.diff(rb).astype(np.int32)),
        pa.array(frame_len), pa.array(frame_size),
        pa.array(sep),
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(BITS // 8), n_chunks, [None, pa.py_buffer(sigs.tobytes())])
        .cast(pa.binary()),
        pa.array(np.full(n_chunks, unit, np.int64)),
        _delta_blobs(deltas, rb),
        None,  # the metadata texts, a row group at a time
        _fixed_blobs(local[np.repeat(coded, rows)].astype(f"<u{width}"),
                     np.concatenate([[0], np.cumsum(np.where(coded, rows, 0))]), width),
        pa.array(dicts.astype(np.int32)),
        pa.array(vlen.astype(np.int32)),
        id_blobs,
    ]
    dsink = pa.BufferOutputStream()
    # a text per entry (OTLP records): nothing for a dictionary to share
    with pq.ParquetWriter(dsink, DIR_SCHEMA, compression="zstd", compression_level=1, write_statistics=False,
                          use_dictionary=["stream"] if values.distinct(len(tv)) else ["stream", "meta_values.list.element"]
                          ) as w:
        for c0 in range(0, max(n_chunks, 1), _DIR_ROW_GROUP):
            c1 = min(c0 + _DIR_ROW_GROUP, n_chunks)
            group = [c.slice(c0, c1 - c0) if c is not None else values.of(c0, c1) for c in columns]
            w.write_table(pa.Table.from_arrays(group, schema=DIR_SCHEMA), row_group_size=_DIR_ROW_GROUP)
    dbuf = dsink.getvalue()
    pos = len(MAGIC) + int(frame_len.sum())
    out += [dbuf.to_pybytes(), TRAILER.pack(pos, dbuf.size, MAGIC)]
    return pa.py_buffer(b"".join(out))


def _delta_blobs(deltas: np.ndarray, rb: np.ndarray) -> pa.Array:
    """Each chunk's time deltas (never negative: a chunk's entries are in time order) as
    unsigned integers of the chunk's own width, 1, 2, 4 or 8 bytes (its blob's length over its
    rows): one long gap widens its chunk only, not the block (0.92 -> 0.74 bytes a line on the
    bench lines, whose gaps are random)."""
    n = len(rb) - 1
    if n == 0:
        return pa.array([], pa.binary())
    rows = np.diff(rb)
    top = np.maximum.reduceat(deltas, rb[:-1])
    width = np.select([top < 1 << 8, top < 1 << 16, top < 1 << 32], [1, 2, 4], 8)
    sizes = rows * width
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = np.empty(int(offsets[-1]), np.uint8)
    for w in np.unique(width).tolist():
        sel = np.flatnonzero(width == w)
        entries = np.repeat(rb[sel] - local_starts(rows[sel]), rows[sel]) + np.arange(int(rows[sel].sum()))
        at = np.repeat(offsets[sel] - local_starts(sizes[sel]), sizes[sel]) + np.arange(int(sizes[sel].sum()))
        out[at] = deltas[entries].astype(f"<u{w}").view(np.uint8)
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                        pa.py_buffer(out)])


def _id_blobs(ids: pa.ChunkedArray, order: np.ndarray, rb: np.ndarray, tv: np.ndarray) -> pa.Array:
    """Each chunk's record ids (chunk row bounds ``rb`` in block ``order``, times ``tv`` in block
    order): empty if none of its entries has any, else its trace ids, then its span ids, then
    its observed times as differences from the entries' times (mostly one value: compressed
    to nearly nothing by the directory's zstd)."""
    n_chunks = len(rb) - 1
    if not n_chunks or not pc.sum(pc.binary_length(ids)).as_py():
        return no_ids(n_chunks)
    at, data = string_parts(pc.fill_null(ids, b"").combine_chunks())
    has = np.add.reduceat((np.diff(at) > 0)[order].astype(np.int64), rb[:-1]) > 0
    offsets = np.concatenate([[0], np.cumsum(np.where(has, np.diff(rb) * IDS_BYTES, 0))])
    out = np.empty(int(offsets[-1]), np.uint8)
    _scatter_ids(at, data, order, tv, rb, has, offsets, out)
    return pa.BinaryArray.from_buffers(pa.binary(), n_chunks, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                               pa.py_buffer(out)])


@njit(cache=True, nogil=True)
def _scatter_ids(at, data, order, tv, rb, has, offsets, out):  # pragma: no cover
    """Writes the record ids (row ``r``'s at ``data[at[r]:at[r + 1]]``, IDS_BYTES or none;
    rows in block ``order``, times ``tv`` in block order) of each chunk that ``has`` them at its
    ``offsets`` in ``out``, in the ``_id_blobs`` layout (zeros for an entry without)."""
    row = np.zeros(IDS_BYTES, np.uint8)
    for c in range(len(rb) - 1):
        if not has[c]:
            continue
        a, b, o = rb[c], rb[c + 1], offsets[c]
        k = b - a
        for j in range(k):
            r = order[a + j]
            if at[r + 1] - at[r] == IDS_BYTES:
                m, p = data, at[r]
            else:
                m, p = row, 0
            for q in range(16):
                out[o + 16 * j + q] = m[p + q]
            for q in range(8):
                out[o + 16 * k + 8 * j + q] = m[p + 16 + q]
            put_u64(out, o + 24 * k + 8 * j, get_u64(m, p + 24) - np.uint64(tv[a + j]))  # mod 2**64


def _fixed_blobs(values: np.ndarray, rb: np.ndarray, width: int) -> pa.Array:
    """A binary value per chunk: the bytes of ``values`` of its rows (``width`` bytes each)."""
    offsets = (rb * width).astype(np.int32)
    return pa.BinaryArray.from_buffers(pa.binary(), len(rb) - 1, [None, pa.py_buffer(offsets),
                                                                  pa.py_buffer(values.tobytes())])


class _Texts:
    """The metadata texts of a block's chunks, handed out a few chunks at a time (``of``): either
    a list array of each chunk's distinct texts, or, when every entry has a text of its own (OTLP
    records), the entries' texts taken from the source rows (``col``, in block ``order``, chunk
    row bounds ``rb``) only when asked for."""

    def __init__(self, lists: pa.ListArray | None = None, col: Strings | None = None,
                 order: np.ndarray | None = None, rb: np.ndarray | None = None):
        self.lists, self.col, self.order, self.rb = lists, col, order, rb

    def distinct(self, entries: int) -> bool:
        """Whether each of the block's ``entries`` has a text of its own."""
        return self.lists is None or len(self.lists.values) == entries

    def counts(self) -> np.ndarray:
        """Texts of each chunk."""
        if self.lists is None:
            return np.diff(self.rb)
        return pc.list_value_length(self.lists).to_numpy(zero_copy_only=False)

    def of(self, c0: int, c1: int) -> pa.ListArray:
        """The list array of chunks ``c0`` to ``c1 - 1``."""
        if self.lists is not None:
            return self.lists.slice(c0, c1 - c0)
        lo, hi = int(self.rb[c0]), int(self.rb[c1])
        return pa.ListArray.from_arrays(pa.array((self.rb[c0:c1 + 1] - lo).astype(np.int32)),
                                        self.col.take(self.order[lo:hi]))


def _metadata(table: pa.Table, order: np.ndarray, rb: np.ndarray) -> tuple[_Texts, np.ndarray]:
    """(each chunk's distinct metadata texts, each entry's index among its chunk's), of chunk
    row bounds ``rb`` in block ``order``. The texts come dictionary-encoded (``schema.TEXT``);
    plain strings (a table of another source) are dictionary-encoded, unless a sample of them is
    mostly distinct (ids in them), where hashing every text would find nothing to share and
    cost ~1 us a row: then each entry's text is its chunk's own."""
    col = pc.fill_null(table.column("metadata"), "{}")
    sample = col.slice(0, _SAMPLE_ROWS)
    if not pa.types.is_dictionary(col.type) and len(sample) >= 256 and 2 * len(pc.unique(sample)) > len(sample):
        return _Texts(col=Strings(col), order=order, rb=rb), np.arange(int(rb[-1]), dtype=np.int64) - np.repeat(rb[:-1],
                                                                                                        np.diff(rb))
    values, offsets, local = _local_codes(pc.dictionary_encode(col).combine_chunks().take(pa.array(order)), rb)
    return _Texts(pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)), local


def _local_codes(d: pa.DictionaryArray, rb: np.ndarray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(distinct texts of each chunk concatenated, their offsets per chunk, each row's index
    among its chunk's texts), of dictionary-encoded texts ``d``."""
    g = d.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_chunks, n_values = len(rb) - 1, len(d.dictionary)
    chunk = np.repeat(np.arange(n_chunks, dtype=np.int64), np.diff(rb))
    if n_chunks * n_values <= 1 << 24:  # few texts (levels, a few attributes): a presence matrix
        present = np.bincount(chunk * n_values + g, minlength=n_chunks * n_values).reshape(n_chunks, n_values) > 0
        rank = np.cumsum(present, axis=1) - 1
        local = rank[chunk, g]
        chunk_of, value = np.nonzero(present)
    else:  # many (ids in metadata): sort
        uniq, inverse = np.unique(chunk * n_values + g, return_inverse=True)
        chunk_of, value = uniq // n_values, uniq % n_values
        local = inverse.reshape(-1) - np.searchsorted(chunk_of, chunk)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(chunk_of, minlength=n_chunks))])
    return d.dictionary.take(pa.array(value)), offsets, local


def _chunk_bounds(codes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Row bounds of the chunks: one stream each, a new chunk where a stream's lines pass the
    next multiple of CHUNK_BYTES or of MAX_CHUNK_ROWS since its first line (no loop per chunk)."""
    n = len(codes)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = codes[1:] != codes[:-1]
    first = np.flatnonzero(new_run)[np.cumsum(new_run) - 1]  # each row's stream run's first row
    by_bytes = (offsets[:-1] - offsets[first]) // CHUNK_BYTES
    by_rows = (np.arange(n) - first) // MAX_CHUNK_ROWS
    cut = new_run.copy()
    cut[1:] |= (by_bytes[1:] != by_bytes[:-1]) | (by_rows[1:] != by_rows[:-1])
    return np.append(np.flatnonzero(cut), n).astype(np.int64)


def _dictionary_chunks(chunk_streams: np.ndarray) -> np.ndarray:
    """Per chunk, the chunk whose bytes are its zstd dictionary: the first chunk of its stream
    (itself compressed alone, -1). Small chunks prune well but compress worse alone; with the
    stream's first chunk as dictionary they compress about as well as chunks four times larger."""
    n = len(chunk_streams)
    first = np.ones(n, dtype=bool)
    first[1:] = chunk_streams[1:] != chunk_streams[:-1]
    idx = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.zeros(0, np.int64)
    return np.where(first, -1, idx).astype(np.int32)


class _Frames:
    """A block's frames, compressed a run of chunks at a time (``add``), with each chunk's frame
    length, bytes it decompresses to, variables' length and whether it is stored with lengths."""

    def __init__(self, n_chunks: int, dicts: np.ndarray):
        self.dicts = dicts
        self.out: list = [MAGIC]
        self.length = np.empty(n_chunks, np.int64)
        self.size = np.empty(n_chunks, np.int64)
        self.vlen = np.zeros(n_chunks, np.int64)
        self.has_nl = np.zeros(n_chunks, dtype=bool)
        self.plain = self.cctx = zstandard.ZstdCompressor(compression_params=ZSTD_PARAMS)
        self.vctx = zstandard.ZstdCompressor(compression_params=VAR_ZSTD_PARAMS)

    def add(self, c0: int, term: np.ndarray, term_off: np.ndarray, rows: np.ndarray, has_nl: np.ndarray,
            parts: tuple) -> None:
        """Chunks ``c0``.. of ``term`` (their lines each followed by a newline, at ``term_off``;
        chunk ``c0 + j`` of entries ``rows[j]`` to ``rows[j + 1] - 1``), split as ``parts``
        (``split_chunks``)."""
        text_at = term_off[rows]
        tmpl, t_at, digits, d_at, hexes, h_at, split = parts
        dicts, out = self.dicts, self.out
        for j in range(len(text_at) - 1):
            i = c0 + j
            if has_nl[j]:  # the lines' lengths, then the lines without the newlines after them
                at = term_off[rows[j]:rows[j + 1] + 1]
                lens = (np.diff(at) - 1).astype("<u4")
                raw = b"".join([lens.tobytes(), np.delete(term[at[0]:at[-1]], at[1:] - 1 - at[0]).tobytes()])
            else:  # the template (the text itself when not split)
                raw = memoryview(tmpl[t_at[j]:t_at[j + 1]])
            if dicts[i] < 0:
                frame = self.plain.compress(raw)
                if i + 1 < len(dicts) and dicts[i + 1] == i:  # the stream's next chunks use these bytes
                    self.cctx = zstandard.ZstdCompressor(compression_params=ZSTD_PARAMS, dict_data=zstandard.ZstdCompressionDict(
                        bytes(raw[:DICT_BYTES]), dict_type=zstandard.DICT_TYPE_RAWCONTENT))
            else:
                frame = self.cctx.compress(raw)
            out.append(frame)
            self.length[i], self.size[i], self.has_nl[i] = len(frame), len(raw), has_nl[j]
            if split[j]:  # then the digits' frame (if any) and the hex ids' bytes
                dframe = self.vctx.compress(memoryview(digits[d_at[j]:d_at[j + 1]])) if d_at[j + 1] > d_at[j] else b""
                out += [dframe, hexes[h_at[j]:h_at[j + 1]].tobytes()]
                self.vlen[i] = len(dframe) + h_at[j + 1] - h_at[j]
                self.length[i] += self.vlen[i]
                self.size[i] = text_at[j + 1] - text_at[j]


class LogChunkFormat:
    """The ``BlockFormat`` of the ``logs`` signal (``kms.storage.types``)."""

    version = 2

    #: ``encode`` takes the rows in any order (``block.write_block``): it orders only the lines and
    #: integer codes, where a generic sort would also copy the stream and metadata texts, which
    #: are dictionary-encoded here anyway.
    sorts_itself = True

    def encode(self, table: pa.Table, spec: SignalSpec) -> pa.Buffer:
        stream = pc.dictionary_encode(table.column("stream")).combine_chunks()  # chunks share the dictionary
        codes = stream.indices.to_numpy(zero_copy_only=False)
        tv = table.column("time_ns").to_numpy()
        # sort_table's order: by stream text, then time, stably
        order = np.lexsort((tv, dense_ranks(stream.dictionary)[codes]))
        times = pa.array(tv[order])
        codes = codes[order]
        source = Strings(pc.fill_null(table.column("line"), ""))
        offsets = np.concatenate([[0], np.cumsum(source.length[order])])  # of the lines in block order
        rb = _chunk_bounds(codes, offsets)
        n_chunks = len(rb) - 1
        dicts = _dictionary_chunks(codes[rb[:-1]])
        frames = _Frames(n_chunks, dicts)
        sigs = np.zeros((n_chunks, BITS // 8), np.uint8)
        # a few MB of lines at a time: every buffer stays in the heap for reuse (fresh pages cost
        # ~10 us each to fault in here, and a whole block's buffers were a few hundred MB)
        for c0 in range(0, n_chunks, _ENCODE_CHUNKS):
            c1 = min(c0 + _ENCODE_CHUNKS, n_chunks)
            r0 = rb[c0]
            # every line followed by "\n", in one buffer: a chunk's frame input is one slice of it
            term_off, term = source.lines(order[r0:rb[c1]])
            text_at = term_off[rb[c0:c1 + 1] - r0]
            has_nl = np.zeros(c1 - c0, dtype=bool)
            if newlines(term, 0, len(term)) > rb[c1] - r0:  # rare: look chunk by chunk
                has_nl[:] = [newlines(term, int(text_at[j]), int(text_at[j + 1])) > rb[c0 + j + 1] - rb[c0 + j]
                             for j in range(c1 - c0)]
            frames.add(c0, term, term_off, rb[c0:c1 + 1] - r0, has_nl, split_chunks(term, text_at, ~has_nl))
            sigs[c0:c1] = chunk_signatures(term, text_at)
        values, local = _metadata(table, order, rb)
        tv = times.to_numpy()
        return _assemble(frames.out, stream.dictionary.take(pa.array(codes[rb[:-1]])), rb, frames.length, frames.size,
                         ~frames.has_nl, sigs, tv, values, local, dicts, frames.vlen,
                         _id_blobs(table.column("ids"), order, rb, tv))

    def merge(self, blocks: Sequence) -> pa.Buffer | None:
        """One block of the chunks of ``blocks`` (all of this format, else None), ordered by
        stream, then first time; frames and signatures are copied, not decoded again."""
        if any(b.meta.format_version != self.version for b in blocks):
            return None
        parts = []
        for b in blocks:
            r = b.reader()
            data = r.objstore.get(r.key)
            d = Directory(r, pa.BufferReader(data))
            ids = np.arange(len(r.rows))
            times, _ = d.columns(ids, False)
            values, local = d.meta_codes(ids)
            parts.append((r, data, times, values, local, d.id_blobs()))
        stream = np.concatenate([np.asarray(r.stream_texts, dtype=object)[r.stream_codes] for r, *_ in parts])
        first = np.concatenate([r.min_ns for r, *_ in parts])
        order = np.lexsort((first, stream))
        owner = np.concatenate([np.full(len(r.rows), k) for k, (r, *_) in enumerate(parts)])
        index = np.concatenate([np.arange(len(r.rows)) for r, *_ in parts])
        rows = np.concatenate([r.rows for r, *_ in parts])[order]
        out: list = [MAGIC]
        n = len(order)
        frame_len, frame_size = np.empty(n, np.int64), np.empty(n, np.int64)
        row_starts = [local_starts(r.rows) for r, *_ in parts]
        times, local, sigs = [], [], []
        for j, (k, i) in enumerate(zip(owner[order].tolist(), index[order].tolist(), strict=True)):
            r, data, t, _, codes, _ = parts[k]
            off, ln = int(r.offset[i]), int(r.length[i])
            out.append(memoryview(data)[off:off + ln])
            frame_len[j], frame_size[j] = ln, r.size[i]
            lo = row_starts[k][i]
            times.append(t[lo:lo + r.rows[i]])
            local.append(codes[lo:lo + r.rows[i]])
            sigs.append(r.grams[i])
        values = _Texts(pa.concat_arrays([v for *_, v, _, _ in parts]).take(pa.array(order)))
        # dictionary chunks, as indexes into the merged block
        base = np.concatenate([[0], np.cumsum([len(r.rows) for r, *_ in parts])])
        old = np.concatenate([np.where(r.dict_of >= 0, r.dict_of + base[k], -1) for k, (r, *_) in enumerate(parts)])
        new_at = np.empty(n, np.int64)
        new_at[order] = np.arange(n)
        dicts = np.where(old[order] >= 0, new_at[np.maximum(old[order], 0)], -1)
        return _assemble(out, pa.array(stream[order], pa.string()), np.concatenate([[0], np.cumsum(rows)]),
                         frame_len, frame_size, np.concatenate([r.sep for r, *_ in parts])[order],
                         np.stack(sigs), np.concatenate(times), values, np.concatenate(local), dicts,
                         np.concatenate([r.vlen for r, *_ in parts])[order],
                         pa.concat_arrays([p[-1] for p in parts]).take(pa.array(order)))

    def reader(self, objstore: ObjectStore, meta: BlockMeta, spec: SignalSpec) -> LogChunkReader:
        return LogChunkReader(objstore, meta, spec)


LOG_CHUNKS = LogChunkFormat()


def warm() -> None:
    """Compile (or load from numba's cache) the block cut's own kernel before the first cut."""
    tv = np.ones(1, np.int64)
    tv.flags.writeable = False  # (times come read-only from Arrow)
    _scatter_ids(np.array([0, IDS_BYTES]), np.zeros(IDS_BYTES, np.uint8), np.zeros(1, np.int64), tv,
                 np.array([0, 1]), np.ones(1, bool), np.array([0, IDS_BYTES]), np.zeros(IDS_BYTES, np.uint8))


