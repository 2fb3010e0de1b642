"""Attribute access over the span table (``schema.py``), vectorised and decoded once.

* Resource and scope columns are dictionary-encoded: each distinct serialized message is
  decoded once and values are taken by the dictionary indices, never per row.
* Span attributes live in ``attrs`` (a serialized ``Span`` holding attributes, events,
  links, ...). For a key K the rows are first searched for the KeyValue wire prefix
  ``0x0a varint(len K) K 0x12`` (``pyarrow.compute.find_substring``); where the match sits
  at a span-attribute boundary (``0x4a varint(len KV)``) and holds a string, int, double or
  bool, the value is read straight from the bytes with numpy. Every other row that contains
  the prefix (arrays, a match inside an event, odd field order) is decoded with
  ``Span.FromString``. A miss of the prefix proves the key absent.
* Events and links are found with a vectorised walk over the top-level fields of ``attrs``
  and only those rows are decoded.

``SpanAttributes.for_table(table)`` caches all of this per table (weakly, by identity);
positions handed in as ``rows`` are int64 row indices, None meaning every row.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from kms.otlp.wire import varint

__all__ = [
    "anyvalue_to_python", "TypedColumn", "SpanAttributes", "SpanEvents", "SpanLinks",
    "attribute_keys", "attribute_values", "dictionary_codes", "take_rows", "TableCache",
]

_SPAN_ATTRIBUTES, _SPAN_EVENTS, _SPAN_LINKS = 9, 11, 13  # Span field numbers
_ATTR_CACHE_KEYS = 32  # decoded span-attribute columns kept per table
_DECODED_SPANS = 200_000  # decoded Span messages (events, links, odd values) kept per table
_WINDOW_ROWS = 65_536  # rows per contiguous piece of attrs: bounds temporary copies (bench_traceql)


def anyvalue_to_python(v: common_pb2.AnyValue) -> Any:
    """str / bool / int / float / bytes / list / dict, or None for an empty AnyValue."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [anyvalue_to_python(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: anyvalue_to_python(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _kv_dict(kvs: Sequence[common_pb2.KeyValue]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        out.setdefault(kv.key, anyvalue_to_python(kv.value))
    return out


# ---------------------------------------------------------------------------------------------
# typed columns


@dataclass
class TypedColumn:
    """One attribute over ``n`` positions, split by type; a position has at most one part.

    ``strings`` is (mask, codes into ``dictionary``, dictionary); ``ints``/``floats``/``bools``
    are (mask, values); ``other`` holds lists, dicts and bytes by position.
    """

    n: int
    strings: tuple[np.ndarray, np.ndarray, pa.Array] | None = None
    ints: tuple[np.ndarray, np.ndarray] | None = None
    floats: tuple[np.ndarray, np.ndarray] | None = None
    bools: tuple[np.ndarray, np.ndarray] | None = None
    other: dict[int, Any] = field(default_factory=dict)

    def present(self) -> np.ndarray:
        m = np.zeros(self.n, bool)
        for part in (self.strings, self.ints, self.floats, self.bools):
            if part is not None:
                m |= part[0]
        if self.other:
            m[list(self.other)] = True
        return m

    def take(self, idx: np.ndarray) -> TypedColumn:
        idx = np.asarray(idx, np.int64)
        other = {}
        for old, v in self.other.items():  # few entries (arrays, maps): one vector scan each
            for new in np.flatnonzero(idx == old):
                other[int(new)] = v
        s = self.strings
        return TypedColumn(
            len(idx),
            None if s is None else (s[0][idx], s[1][idx], s[2]),
            *(None if p is None else (p[0][idx], p[1][idx]) for p in (self.ints, self.floats, self.bools)),
            other=other,
        )

    def value(self, i: int) -> Any:
        """The Python value at position i (None when missing)."""
        if self.strings is not None and self.strings[0][i]:
            return self.strings[2][int(self.strings[1][i])].as_py()
        for part, conv in ((self.ints, int), (self.floats, float), (self.bools, bool)):
            if part is not None and part[0][i]:
                return conv(part[1][i])
        return self.other.get(i)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> TypedColumn:
        b = _Builder(len(values))
        b.add_python(np.arange(len(values)), values)
        return b.finish()


class _Builder:
    """Accumulates (positions, values) per type, then dictionary-encodes the strings."""

    def __init__(self, n: int):
        self.n = n
        self.parts: dict[str, list[tuple[np.ndarray, Any]]] = {"str": [], "int": [], "float": [], "bool": []}
        self.other: dict[int, Any] = {}

    def add(self, kind: str, pos: np.ndarray, values: Any) -> None:
        if len(pos):
            self.parts[kind].append((pos, values))

    def add_python(self, positions: Sequence[int], values: Sequence[Any]) -> None:
        by: dict[str, tuple[list[int], list[Any]]] = {k: ([], []) for k in self.parts}
        for p, v in zip(positions, values, strict=True):
            if v is None:
                continue
            kind = ("bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "float"
                    if isinstance(v, float) else "str" if isinstance(v, str) else None)
            if kind is None:
                self.other[int(p)] = v
            else:
                by[kind][0].append(int(p))
                by[kind][1].append(v)
        dtypes = {"int": np.int64, "float": np.float64, "bool": bool}
        for kind, (ps, vs) in by.items():
            if ps:
                vals = pa.array(vs, pa.string()) if kind == "str" else np.asarray(vs, dtypes[kind])
                self.add(kind, np.asarray(ps, np.int64), vals)

    def finish(self) -> TypedColumn:
        col = TypedColumn(self.n, other=self.other)
        for kind, chunks in self.parts.items():
            if not chunks:
                continue
            pos = np.concatenate([c[0] for c in chunks])
            mask = np.zeros(self.n, bool)
            mask[pos] = True
            if kind == "str":
                vals = pa.concat_arrays([c[1] for c in chunks]) if len(chunks) > 1 else chunks[0][1]
                if _mostly_distinct(vals):  # no dictionary: a dense array (codes = positions)
                    idx = np.zeros(self.n, np.int64)
                    idx[pos] = np.arange(len(pos))
                    col.strings = (mask, np.arange(self.n), vals.take(pa.array(idx)))
                    continue
                enc = pc.dictionary_encode(vals)
                codes = np.zeros(self.n, np.int32)
                codes[pos] = enc.indices.to_numpy(zero_copy_only=False)
                col.strings = (mask, codes, enc.dictionary)
            else:
                values = np.zeros(self.n, {"int": np.int64, "float": np.float64, "bool": bool}[kind])
                values[pos] = np.concatenate([c[1] for c in chunks])
                setattr(col, kind + "s", (mask, values))
        return col


def _mostly_distinct(values: pa.Array, sample: int = 2048) -> bool:
    """Whether dictionary-encoding would barely shrink the strings (judged on a sample)."""
    if len(values) < 4 * sample:
        return False
    picked = values.take(pa.array(np.linspace(0, len(values) - 1, sample).astype(np.int64)))
    return len(pc.unique(picked)) > sample // 2


# ---------------------------------------------------------------------------------------------
# wire-level helpers


def _varints(data: np.ndarray, pos: np.ndarray, max_bytes: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one varint at each position: (value uint64, size, ok)."""
    value = np.zeros(len(pos), np.uint64)
    size = np.zeros(len(pos), np.int64)
    active = np.ones(len(pos), bool)
    last = len(data) - 1
    for i in range(max_bytes):
        if not active.any():
            break
        b = data[np.minimum(pos + i, last)].astype(np.uint64)
        value |= np.where(active, (b & np.uint64(0x7F)) << np.uint64(7 * i), np.uint64(0))
        size += active
        active &= b >= 0x80
    return value, size, ~active


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets[n+1] int64, data uint8) of a binary array, honouring its slice offset."""
    off_type = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], off_type, count=len(arr) + 1, offset=arr.offset * np.dtype(off_type).itemsize)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    if len(data) == 0:
        data = np.zeros(1, np.uint8)
    return offs.astype(np.int64), data


def _slices(data_buf: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """data[starts[i]:ends[i]] as a binary array, copied by Arrow's take (no Python loop)."""
    if len(starts) == 0:
        return pa.array([], pa.binary())
    bounds = np.empty(2 * len(starts), np.int64)
    bounds[0::2], bounds[1::2] = starts, ends
    interleaved = pa.Array.from_buffers(pa.large_binary(), 2 * len(starts) - 1, [None, pa.py_buffer(bounds), data_buf])
    return pc.take(interleaved, pa.array(np.arange(0, 2 * len(starts), 2))).cast(pa.binary())


def _as_strings(binary: pa.Array) -> pa.Array:
    try:
        return binary.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([b.decode("utf-8", "replace") for b in binary.to_pylist()], pa.string())


def _top_level_fields(arr: pa.Array, wanted: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every length-delimited top-level field with a number in ``wanted``:
    (position, field number, payload start, payload end), by walking all rows at once."""
    offs, data = _buffers(arr)
    n = len(arr)
    pos, end = offs[:-1].copy(), offs[1:]
    rows = np.arange(n)
    out: list[tuple[np.ndarray, ...]] = []
    active = pos < end
    while active.any():
        r = rows[active]
        tag, tsz, _ = _varints(data, pos[r], 5)
        wire = (tag & np.uint64(7)).astype(np.int64)
        fnum = (tag >> np.uint64(3)).astype(np.int64)
        p = pos[r] + tsz
        ln, lsz, _ = _varints(data, p)
        ln = ln.astype(np.int64)
        step = np.select([wire == 0, wire == 1, wire == 2, wire == 5], [lsz, 8, lsz + ln, 4], default=-1)
        bad = (step < 0) | (p + np.maximum(step, 0) > end[r])
        is_len = (wire == 2) & ~bad & np.isin(fnum, list(wanted))
        if is_len.any():
            s = p[is_len] + lsz[is_len]
            out.append((r[is_len], fnum[is_len], s, s + ln[is_len]))
        pos[r] = np.where(bad, end[r], p + step)
        active[r] = pos[r] < end[r]
    if not out:
        e = np.zeros(0, np.int64)
        return e, e, e, e
    cat = [np.concatenate([o[i] for o in out]) for i in range(4)]
    order = np.lexsort((cat[2], cat[0]))
    return tuple(c[order] for c in cat)  # type: ignore[return-value]


def take_rows(col: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> pa.Array:
    """``col[rows]`` as one array, taking from each chunk only what it holds (Arrow's own
    ChunkedArray.take concatenates every chunk first)."""
    rows = np.asarray(rows, np.int64)
    if not isinstance(col, pa.ChunkedArray):
        return col.take(pa.array(rows))
    if col.num_chunks == 1:
        return col.chunk(0).take(pa.array(rows))
    if not len(rows):
        return pa.array([], col.type)
    starts = np.cumsum([0] + [len(c) for c in col.chunks])
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    ci = np.searchsorted(starts, srt, side="right") - 1
    cut = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1], True])
    pieces = [col.chunk(int(ci[a])).take(pa.array(srt[a:b] - starts[ci[a]])) for a, b in zip(cut[:-1], cut[1:], strict=True)]
    out = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
    if np.any(order != np.arange(len(order))):
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        out = out.take(pa.array(inverse))
    return out


def dictionary_codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list]:
    """(per-row index into distinct values, distinct values) of a dictionary column; chunks
    with different dictionaries are unified by value."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not chunks:
        return np.zeros(0, np.int32), []
    first = chunks[0].dictionary
    if all(c.dictionary.equals(first) for c in chunks[1:]):
        idx = [c.indices.fill_null(0).to_numpy(zero_copy_only=False) for c in chunks]
        return np.concatenate(idx).astype(np.int32) if idx else np.zeros(0, np.int32), first.to_pylist()
    values: dict[Any, int] = {}
    parts = []
    for c in chunks:
        remap = np.array([values.setdefault(v, len(values)) for v in c.dictionary.to_pylist()] or [0], np.int32)
        parts.append(remap[c.indices.fill_null(0).to_numpy(zero_copy_only=False)])
    return np.concatenate(parts), list(values)


# ---------------------------------------------------------------------------------------------
# events and links


@dataclass
class SpanEvents:
    """Events of some spans, one entry per event: ``owner`` is the position (into the rows
    asked for) of the span the event belongs to."""

    owner: np.ndarray
    names: list[str]
    times_ns: np.ndarray
    attributes: list[dict[str, Any]]


@dataclass
class SpanLinks:
    owner: np.ndarray
    trace_ids: list[bytes]
    span_ids: list[bytes]
    attributes: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# per-table access


class TableCache:
    """Per-table state, kept while the table object lives (bounded to ``size`` tables).

    Entries hold the table only weakly (``weakref.finalize`` drops them when it is collected),
    so caching never keeps a table alive. Lookups are by object identity.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self._entries: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, table: pa.Table, factory: Any) -> Any:
        key = id(table)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit._table_ref() is table:
                self._entries.move_to_end(key)
                return hit
            inst = factory(table)
            self._entries[key] = inst
            weakref.finalize(table, self._drop, key, weakref.ref(inst))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return inst

    def _drop(self, key: int, inst_ref: weakref.ref) -> None:
        with self._lock:
            if self._entries.get(key) is inst_ref():
                self._entries.pop(key, None)


class SpanAttributes:
    """Attribute access for one span table. Thread-safe for concurrent readers."""

    _cache = TableCache()

    def __init__(self, table: pa.Table):
        self._table_ref = weakref.ref(table)
        self.n = table.num_rows
        self._lock = threading.Lock()
        self._resource: tuple[np.ndarray, list[dict[str, Any]]] | None = None
        self._scope: tuple[np.ndarray, list[tuple[str, str, dict[str, Any]]]] | None = None
        self._span_cols: OrderedDict[str, TypedColumn] = OrderedDict()
        self._decoded: dict[int, trace_pb2.Span] = {}

    @property
    def table(self) -> pa.Table:
        table = self._table_ref()
        if table is None:
            raise RuntimeError("BUG: span table used after it was released")
        return table

    @classmethod
    def for_table(cls, table: pa.Table) -> SpanAttributes:
        """The (cached) instance for this table object."""
        return cls._cache.get(table, cls)

    # -- resource and scope (dictionary columns)
    def resource_entries(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """(row -> entry index, decoded attributes per distinct Resource)."""
        if self._resource is None:
            codes, raw = dictionary_codes(self.table.column("resource"))
            self._resource = codes, [_kv_dict(resource_pb2.Resource.FromString(b or b"").attributes) for b in raw]
        return self._resource

    def scope_entries(self) -> tuple[np.ndarray, list[tuple[str, str, dict[str, Any]]]]:
        """(row -> entry index, (name, version, attributes) per distinct InstrumentationScope)."""
        if self._scope is None:
            codes, raw = dictionary_codes(self.table.column("scope"))
            scopes = [common_pb2.InstrumentationScope.FromString(b or b"") for b in raw]
            self._scope = codes, [(s.name, s.version, _kv_dict(s.attributes)) for s in scopes]
        return self._scope

    def resource(self, key: str, rows: np.ndarray | None = None) -> TypedColumn:
        codes, entries = self.resource_entries()
        per_entry = TypedColumn.from_values([e.get(key) for e in entries])
        return per_entry.take(codes if rows is None else codes[rows])

    def scope(self, key: str, rows: np.ndarray | None = None) -> TypedColumn:
        """A scope attribute; ``instrumentation:name``/``instrumentation:version`` give the fields."""
        codes, entries = self.scope_entries()
        if key == "instrumentation:name":
            vals: list[Any] = [e[0] for e in entries]
        elif key == "instrumentation:version":
            vals = [e[1] for e in entries]
        else:
            vals = [e[2].get(key) for e in entries]
        return TypedColumn.from_values(vals).take(codes if rows is None else codes[rows])

    # -- span attributes
    def _pieces(self, rows: np.ndarray | None) -> Iterator[tuple[pa.Array, int, np.ndarray | None]]:
        """``attrs`` as contiguous arrays: (array, position of its first element among the rows
        asked for, those rows or None for all). Small chunks are merged, subsets taken."""
        col = self.table.column("attrs")
        chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
        if rows is not None:
            for i in range(0, len(rows), _WINDOW_ROWS):
                r = rows[i:i + _WINDOW_ROWS]
                yield take_rows(col, r), i, r
            return
        group: list[pa.Array] = []
        base = size = 0
        for c in chunks:
            if len(c) >= _WINDOW_ROWS // 4:
                if group:
                    yield pa.concat_arrays(group), base, None
                    base, group, size = base + size, [], 0
                yield c, base, None
                base += len(c)
                continue
            group.append(c)
            size += len(c)
            if size >= _WINDOW_ROWS:
                yield pa.concat_arrays(group), base, None
                base, group, size = base + size, [], 0
        if group:
            yield pa.concat_arrays(group), base, None

    def span(self, key: str, rows: np.ndarray | None = None) -> TypedColumn:
        """A span attribute for the rows (vectorised; whole-table results are cached)."""
        with self._lock:
            full = self._span_cols.get(key)
            if full is not None:
                self._span_cols.move_to_end(key)
        if full is not None:
            return full if rows is None else full.take(rows)
        if rows is not None and len(rows) * 4 < self.n:
            b = _Builder(len(rows))
            for arr, base, r in self._pieces(rows):
                self._extract(b, arr, base, r, key)
            return b.finish()
        b = _Builder(self.n)
        for arr, base, r in self._pieces(None):
            self._extract(b, arr, base, r, key)
        full = b.finish()
        with self._lock:
            self._span_cols[key] = full
            while len(self._span_cols) > _ATTR_CACHE_KEYS:
                self._span_cols.popitem(last=False)
        return full if rows is None else full.take(rows)

    def _extract(self, b: _Builder, arr: pa.Array, base: int, rows: np.ndarray | None, key: str) -> None:
        """Values of ``key`` in ``arr`` into ``b`` at positions base + i."""
        kb = key.encode()
        pat = b"\x0a" + varint(len(kb)) + kb + b"\x12"
        found = pc.find_substring(arr, pattern=pat).to_numpy(zero_copy_only=False)
        hit = np.flatnonzero(found >= 0)
        if not len(hit):
            return
        offs, data = _buffers(arr)
        start = offs[hit] + found[hit]
        p = start + len(pat)
        vlen, vsz, vok = _varints(data, p, 5)
        vlen = vlen.astype(np.int64)
        q = p + vsz
        end = q + vlen
        kvlen = len(pat) + vsz + vlen
        row_start = offs[hit]
        lo = data[np.maximum(start - 1, 0)]
        hdr1 = (kvlen < 128) & (start - 2 >= row_start) & (lo == kvlen) & (data[np.maximum(start - 2, 0)] == 0x4A)
        hdr2 = ((kvlen >= 128) & (kvlen < 16384) & (start - 3 >= row_start)
                & (data[np.maximum(start - 2, 0)] == ((kvlen & 0x7F) | 0x80)) & (lo == (kvlen >> 7))
                & (data[np.maximum(start - 3, 0)] == 0x4A))
        ok = vok & (hdr1 | hdr2) & (end <= offs[hit + 1]) & (vlen > 0)
        tag = data[np.minimum(q, len(data) - 1)]
        inner, isz, iok = _varints(data, q + 1)
        ok &= iok
        after = q + 1 + isz
        is_str = ok & (tag == 0x0A) & (after + inner.astype(np.int64) == end)
        is_int = ok & (tag == 0x18) & (after == end)
        is_bool = ok & (tag == 0x10) & (after == end)
        is_dbl = ok & (tag == 0x21) & (vlen == 9)
        empty = vok & (hdr1 | hdr2) & (vlen == 0)  # an empty AnyValue: a nil value
        at = hit + base
        if is_str.any():
            s = after[is_str]
            strs = _slices(arr.buffers()[2], s, s + inner[is_str].astype(np.int64))
            b.add("str", at[is_str], _as_strings(strs))
        if is_int.any():
            b.add("int", at[is_int], inner[is_int].view(np.int64))
        if is_bool.any():
            b.add("bool", at[is_bool], inner[is_bool] != 0)
        if is_dbl.any():
            d = q[is_dbl] + 1
            raw = np.stack([data[d + i] for i in range(8)], axis=1)
            b.add("float", at[is_dbl], raw.copy().view("<f8").reshape(-1))
        slow = hit[~(is_str | is_int | is_bool | is_dbl | empty)]
        if len(slow):
            values = []
            for pos in slow.tolist():
                span = self._span_at(arr, pos, base + pos if rows is None else int(rows[pos]))
                v = next((kv.value for kv in span.attributes if kv.key == key), None)
                values.append(None if v is None else anyvalue_to_python(v))
            b.add_python(slow + base, values)

    def _span_at(self, arr: pa.Array, pos: int, row: int) -> trace_pb2.Span:
        """The decoded span (attributes, events, links) of a row, cached per table."""
        span = self._decoded.get(row)
        if span is None:
            span = trace_pb2.Span.FromString(arr[pos].as_py() or b"")
            if len(self._decoded) < _DECODED_SPANS:
                self._decoded[row] = span
        return span

    # -- events and links
    def _decoded_with(self, rows: np.ndarray | None, fnum: int) -> Iterator[tuple[int, trace_pb2.Span]]:
        """(position among the rows asked for, decoded span) of spans having field ``fnum``;
        rows without the field's tag byte anywhere are skipped before the exact walk."""
        tag = bytes([(fnum << 3) | 2])
        for arr, base, r in self._pieces(rows):
            cand = np.flatnonzero(pc.find_substring(arr, pattern=tag).to_numpy(zero_copy_only=False) >= 0)
            if not len(cand):
                continue
            sub = arr.take(pa.array(cand))
            for p in np.unique(_top_level_fields(sub, {fnum})[0]).tolist():
                pos = int(cand[p])
                yield base + pos, self._span_at(sub, p, base + pos if r is None else int(r[pos]))

    def events(self, rows: np.ndarray | None = None) -> SpanEvents:
        owner, names, times, attrs = [], [], [], []
        for pos, span in self._decoded_with(rows, _SPAN_EVENTS):
            for ev in span.events:
                owner.append(pos)
                names.append(ev.name)
                times.append(ev.time_unix_nano)
                attrs.append(_kv_dict(ev.attributes))
        return SpanEvents(np.asarray(owner, np.int64), names, np.asarray(times, np.int64), attrs)

    def links(self, rows: np.ndarray | None = None) -> SpanLinks:
        owner, tids, sids, attrs = [], [], [], []
        for pos, span in self._decoded_with(rows, _SPAN_LINKS):
            for ln in span.links:
                owner.append(pos)
                tids.append(ln.trace_id)
                sids.append(ln.span_id)
                attrs.append(_kv_dict(ln.attributes))
        return SpanLinks(np.asarray(owner, np.int64), tids, sids, attrs)

    # -- listings
    def span_keys(self, rows: np.ndarray | None = None, limit: int | None = None) -> list[str]:
        """Distinct span attribute keys (sorted), read from the wire without decoding spans."""
        keys: set[str] = set()
        for arr, _, _ in self._pieces(rows):
            _, _, start, end = _top_level_fields(arr, {_SPAN_ATTRIBUTES})
            if not len(start):
                continue
            _, data = _buffers(arr)
            ok = data[np.minimum(start, len(data) - 1)] == 0x0A
            klen, ksz, kok = _varints(data, start[ok] + 1, 5)
            ks = start[ok] + 1 + ksz
            ke = ks + klen.astype(np.int64)
            good = kok & (ke <= end[ok])
            keys.update(pc.unique(_as_strings(_slices(arr.buffers()[2], ks[good], ke[good]))).to_pylist())
        out = sorted(keys)
        return out[:limit] if limit else out


# ---------------------------------------------------------------------------------------------
# tag listings (Tempo's /api/search/tags and tag values)

SCOPES = ("resource", "span", "event", "link", "instrumentation")


def attribute_keys(table: pa.Table, scopes: Sequence[str] = SCOPES, *, rows: np.ndarray | None = None,
                   limit: int = 5000) -> dict[str, list[str]]:
    """Distinct attribute keys per scope (sorted, at most ``limit`` per scope)."""
    sa = SpanAttributes.for_table(table)
    out: dict[str, list[str]] = {}
    for scope in scopes:
        keys: set[str] = set()
        if scope == "resource":
            codes, entries = sa.resource_entries()
            used = np.unique(codes if rows is None else codes[rows])
            for i in used:
                keys.update(entries[i])
        elif scope == "instrumentation":
            codes, scopes_ = sa.scope_entries()
            for i in np.unique(codes if rows is None else codes[rows]):
                keys.update(scopes_[i][2])
        elif scope == "span":
            keys.update(sa.span_keys(rows))
        elif scope == "event":
            for a in sa.events(rows).attributes:
                keys.update(a)
        elif scope == "link":
            for a in sa.links(rows).attributes:
                keys.update(a)
        else:
            raise ValueError(f"unknown attribute scope {scope!r}")
        out[scope] = sorted(keys)[:limit]
    return out


def attribute_values(table: pa.Table, scope: str, key: str, *, rows: np.ndarray | None = None,
                     limit: int = 1000) -> list[Any]:
    """Distinct values of one attribute (scope "" = span, then resource), at most ``limit``."""
    sa = SpanAttributes.for_table(table)
    if scope == "resource":
        cols = [sa.resource(key, rows)]
    elif scope == "span":
        cols = [sa.span(key, rows)]
    elif scope == "instrumentation":
        cols = [sa.scope(key, rows)]
    elif scope in ("event", "link"):
        items = sa.events(rows).attributes if scope == "event" else sa.links(rows).attributes
        return _distinct([a[key] for a in items if key in a], limit)
    else:
        cols = [sa.span(key, rows), sa.resource(key, rows)]
    seen: list[Any] = []
    for col in cols:
        if col.strings is not None:
            mask, codes, dictionary = col.strings
            seen += dictionary.take(pa.array(np.unique(codes[mask]))).to_pylist()
        for part in (col.ints, col.floats, col.bools):
            if part is not None:
                seen += np.unique(part[1][part[0]]).tolist()
        seen += list(col.other.values())
    return _distinct(seen, limit)


def _distinct(values: Sequence[Any], limit: int) -> list[Any]:
    out, seen = [], set()
    for v in values:
        k = (type(v).__name__, repr(v))
        if k not in seen:
            seen.add(k)
            out.append(v)
            if len(out) >= limit:
                break
    return out
