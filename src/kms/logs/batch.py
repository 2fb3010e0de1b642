"""``LogBatch``: the decoded form of one push request (Loki JSON/protobuf or OTLP), streams of
entries, before validation; and the ``logs`` table it becomes once accepted."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.logs.recordids import id_chars, id_matrix, no_ids
from kms.logs.schema import LOG_SCHEMA
from kms.metrics.storage.labels import labels_text

__all__ = ["LogStream", "LogBatch", "NO_METADATA", "LEVEL_NAMES", "NO_LEVEL", "line_bytes", "text_bytes"]

#: The metadata of an entry without structured metadata (shared, read-only).
NO_METADATA: MappingProxyType = MappingProxyType({})
#: Loki's ``detected_level`` values; ``LogStream.levels`` holds indexes into them, or NO_LEVEL.
LEVEL_NAMES = ("unknown", "trace", "debug", "info", "warn", "error", "critical", "fatal")
NO_LEVEL = -1  # the entry's metadata has its own detected_level
_LEVEL_TEXTS = [labels_text([("detected_level", name)]) for name in LEVEL_NAMES] + [labels_text([])]


class LogStream:
    """One stream of a request: index labels and its entries (parallel lists; times unix ns).

    Lines are a list of strings, or an Arrow string array when a decoder built one
    (``of_columns``): ``lines`` then makes the list when first asked, ``line_array`` the array.
    ``levels``, when set (by ``enrich``), is the ``detected_level`` of each entry (int8 indexes
    of ``LEVEL_NAMES``, or NO_LEVEL), added to its structured metadata when the table is built
    (so ingest never copies a metadata dict). ``ids``, when set, are the entries' record ids
    (``recordids``: OTLP trace and span ids, observed times), kept out of their texts."""

    __slots__ = ("labels", "times", "metadata", "levels", "texts", "meta_counts", "meta_sizes", "ids", "_list",
                 "_array")

    def __init__(self, labels: dict[str, str], times: list[int] | None = None, lines: list[str] | None = None,
                 metadata: list | None = None):
        if "" in labels.values():  # an empty label is no label (Loki drops them on write)
            labels = {k: v for k, v in labels.items() if v != ""}
        self.labels = labels
        self.times: list[int] = times if times is not None else []
        self.metadata: list = metadata if metadata is not None else []  # a dict (or NO_METADATA) per entry
        self.levels: np.ndarray | None = None
        # structured metadata already as texts (with detected_level), their pair counts and sizes
        self.texts: pa.Array | None = None
        self.meta_counts: np.ndarray | None = None
        self.meta_sizes: np.ndarray | None = None
        self.ids: pa.Array | None = None
        self._list: list[str] | None = lines if lines is not None else []
        self._array: pa.Array | None = None

    @classmethod
    def of_columns(cls, labels: dict[str, str], times: list[int], lines: pa.Array, texts: pa.Array | None = None,
                   meta_counts: np.ndarray | None = None, meta_sizes: np.ndarray | None = None,
                   ids: pa.Array | None = None) -> LogStream:
        """A stream whose lines are a string array, its entries without structured metadata or
        with theirs as final texts (``texts`` and record ``ids``, with the number of pairs and
        characters of each, as ``Validator`` checks them)."""
        s = cls(labels, times, None, [NO_METADATA] * len(times))
        s._list, s._array = None, lines
        s.texts, s.meta_counts, s.meta_sizes, s.ids = texts, meta_counts, meta_sizes, ids
        return s

    def __repr__(self) -> str:
        return f"LogStream({self.labels!r}, {len(self.times)} entries)"

    @property
    def lines(self) -> list[str]:
        if self._list is None:
            self._list = self._array.to_pylist()
        return self._list

    def add(self, time_ns: int, line: str, metadata: dict[str, str] | None = None) -> None:
        self.times.append(time_ns)
        self.lines.append(line)
        self.metadata.append(metadata or NO_METADATA)

    @property
    def text(self) -> str:
        return labels_text(sorted(self.labels.items()))

    def line_array(self) -> pa.Array:
        """The lines as an Arrow string array, built once (and again after ``add``)."""
        if self._array is None or len(self._array) != len(self.times):
            self._array = pa.array(self.lines, pa.string())
        return self._array

    def line_bytes(self) -> np.ndarray:
        """The UTF-8 size of each line."""
        return pc.binary_length(self.line_array()).to_numpy(zero_copy_only=False)


@dataclass
class LogBatch:
    streams: list[LogStream] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return sum(len(s.times) for s in self.streams)

    def table(self) -> pa.Table:
        """The ``logs`` rows (request order; the store sorts blocks). Metadata texts are built
        once per distinct (metadata, level) and taken by index."""
        times: list[int] = []
        lines: list[pa.Array] = []
        texts = list(_LEVEL_TEXTS)  # level k alone is text k; no metadata and no level is the last
        index: dict[tuple, int] = {}
        meta: list[np.ndarray | pa.Array] = []  # per stream: indexes into texts, or its own texts
        ids: list[pa.Array] = []
        for s in self.streams:
            n = len(s.times)
            times += s.times
            lines.append(s.line_array())
            ids.append(s.ids if s.ids is not None else no_ids(n))
            if s.texts is not None:
                meta.append(s.texts)
                continue
            levels = s.levels if s.levels is not None else np.full(n, NO_LEVEL, np.int8)
            if not any(s.metadata):  # the usual case: the text depends on the level alone
                meta.append(np.where(levels == NO_LEVEL, len(LEVEL_NAMES), levels).astype(np.int32))
                continue
            out: list[int] = []
            for md, lvl in zip(s.metadata, levels.tolist(), strict=True):
                if not md:
                    out.append(lvl if lvl != NO_LEVEL else len(LEVEL_NAMES))
                    continue
                key = (tuple(md.items()), lvl)
                k = index.get(key)
                if k is None:
                    pairs = dict(md)
                    if lvl != NO_LEVEL:
                        pairs["detected_level"] = LEVEL_NAMES[lvl]
                    k = index[key] = len(texts)
                    texts.append(labels_text(sorted(pairs.items())))
                out.append(k)
            meta.append(np.array(out, np.int32))
        # each column in one piece: the stream texts and the known metadata texts taken by code
        # (a text per stream, not per row, until this take)
        counts = np.fromiter((len(s.times) for s in self.streams), np.int64, len(self.streams))
        stream_texts = pa.array([s.text for s in self.streams], pa.string())
        streams = pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(len(counts), dtype=np.int32), counts)),
                                                 stream_texts)
        known = pa.array(texts, pa.string())
        if all(not isinstance(m, pa.Array) for m in meta):
            metadata = pa.DictionaryArray.from_arrays(
                pa.array(np.concatenate(meta) if meta else np.zeros(0), pa.int32()), known)
        else:
            metadata = _dict_concat([m if isinstance(m, pa.Array) else
                                     pa.DictionaryArray.from_arrays(pa.array(m, pa.int32()), known) for m in meta])
        return pa.Table.from_arrays(
            [pa.array(times, pa.int64()), streams, _concat(lines), metadata, _concat(ids, pa.binary())],
            schema=LOG_SCHEMA)


def _dict_concat(arrays: list[pa.DictionaryArray]) -> pa.DictionaryArray:
    """Dictionary arrays as one: their codes concatenated when they share one dictionary (the
    streams of an OTLP request), else with their dictionaries unified."""
    d = arrays[0].dictionary
    if all(a.dictionary.equals(d) for a in arrays[1:]):
        return pa.DictionaryArray.from_arrays(_concat([a.indices for a in arrays], pa.int32()), d)
    return pa.chunked_array(arrays).combine_chunks()


def _concat(arrays: list[pa.Array], kind: pa.DataType | None = None) -> pa.Array:
    """The string (or binary) arrays as one: without a copy when they are consecutive slices of
    one array (the streams of an OTLP request, decoded in stream order), else concatenated."""
    if not arrays:
        return pa.array([], kind or pa.string())
    first = arrays[0]
    bufs = first.buffers()

    def same(a: pa.Array) -> bool:
        return all(x is not None and y is not None and x.address == y.address and x.size == y.size
                   for x, y in zip(a.buffers()[1:], bufs[1:], strict=True))

    if len(arrays) > 1 and len(bufs) == 3 and all(
            a.null_count == 0 and same(a) and a.offset == b.offset + len(b)
            for b, a in zip(arrays, arrays[1:], strict=False)) and first.null_count == 0:
        return pa.Array.from_buffers(first.type, sum(map(len, arrays)), [None, *bufs[1:]], offset=first.offset)
    return pa.concat_arrays(arrays)


def line_bytes(table: pa.Table) -> int:
    """Bytes of lines and structured metadata of a ``logs`` table, what Loki's rate limit counts."""
    if not table.num_rows:
        return 0
    md = int(text_bytes(table.column("metadata")).sum()) - 2 * table.num_rows
    ids = table.column("ids")
    if pc.sum(pc.binary_length(ids)).as_py():
        md += int(id_chars(id_matrix(ids)).sum())
    return int(pc.sum(pc.binary_length(table.column("line"))).as_py() or 0) + int(md or 0)


def text_bytes(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The UTF-8 size of each text of a string or dictionary column."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    out = [pc.binary_length(c.dictionary).to_numpy(zero_copy_only=False)[c.indices.to_numpy(zero_copy_only=False)]
           if pa.types.is_dictionary(c.type) else pc.binary_length(c).to_numpy(zero_copy_only=False) for c in chunks]
    return np.concatenate(out) if out else np.zeros(0, np.int64)
