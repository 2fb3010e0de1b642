"""Record ids: the trace id, span id and observed time an OTLP log record carries, kept as
bytes (the ``logs`` table's ``ids`` column) instead of inside its structured metadata text.

Each is unique to its record, so as text (``span_id="…",trace_id="…",observed_timestamp="…"``,
~100 characters) they made every record's metadata text distinct: written to the WAL, held in
the head and compressed again by every block cut. As 32 bytes an entry (``IDS_BYTES``: trace
id 16, span id 8, observed time 8 little-endian; zeros where the record has none, as OTLP
itself means no id) they cost a third of that, and the rest of the text is shared by the
records of a scope. ``join_texts`` writes the full text (names sorted, as ``labels_text``
would) only when a read returns it. An entry without ids has an empty value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from kms.logs.bytecopy import copy_bytes
from kms.logs.storage.chunklayout import string_parts

__all__ = ["IDS_BYTES", "no_ids", "ids_array", "id_matrix", "join_texts", "joined", "id_chars", "warm", "nonzero", "get_u64",
           "put_u64", "put_int"]

IDS_BYTES = 32
TRACE, SPAN, OBSERVED = 0, 16, 24  # byte offsets in an entry's ids
_KEYS = (b"observed_timestamp", b"span_id", b"trace_id")  # in the order names sort
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8).copy()


def no_ids(n: int) -> pa.Array:
    """The ``ids`` of ``n`` entries without any."""
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(np.zeros(n + 1, np.int32)), pa.py_buffer(b"")])


def ids_array(m: np.ndarray) -> pa.Array:
    """The ``ids`` column of an (entries, IDS_BYTES) matrix: empty where a row is all zeros."""
    has = m.any(axis=1)
    offsets = np.zeros(len(m) + 1, np.int32)
    np.cumsum(has * IDS_BYTES, out=offsets[1:])
    data = m if has.all() else np.ascontiguousarray(m[has])
    return pa.Array.from_buffers(pa.binary(), len(m), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def id_matrix(ids: pa.Array) -> np.ndarray:
    """An ``ids`` column as an (entries, IDS_BYTES) uint8 matrix, zeros for entries without."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    n = len(ids)
    out = np.zeros((n, IDS_BYTES), np.uint8)
    if ids.null_count:
        ids = ids.fill_null(b"")
    off, data = string_parts(ids)
    if len(data):
        has = np.diff(off) == IDS_BYTES
        if len(data) != IDS_BYTES * int(has.sum()):
            raise ValueError(f"record ids of a length other than {IDS_BYTES} or 0")
        out[has] = data.reshape(-1, IDS_BYTES)
    return out


def join_texts(rest: pa.Array, ids: np.ndarray) -> pa.Array:
    """The full metadata texts of entries whose texts without the record ids are ``rest``
    (``labels_text`` form) and whose ids are ``ids`` (``id_matrix``)."""
    rest = rest.combine_chunks() if isinstance(rest, pa.ChunkedArray) else rest
    if pa.types.is_dictionary(rest.type):
        rest = rest.cast(pa.string())
    if rest.null_count:
        rest = rest.fill_null("{}")
    n = len(rest)
    if not n or not ids.any():
        return rest
    off, data = string_parts(rest)
    keys = np.frombuffer(b"".join(_KEYS), np.uint8).copy()
    key_off = np.cumsum([0, *map(len, _KEYS)]).astype(np.int64)
    out, offsets = _join(data, off, np.ascontiguousarray(ids), keys, key_off, _HEX)
    if offsets[-1] >= 1 << 31:
        return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)]) \
            .cast(pa.string())
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(out)])


def joined(table: pa.Table) -> pa.Table:
    """``table`` (``logs`` rows as stored) as reads answer it: its ``stream`` and ``metadata``
    texts plain strings, the metadata with its record ids, without the ``ids`` column."""
    t = table
    for name in ("stream", "metadata"):
        j = t.schema.get_field_index(name)
        if j >= 0 and pa.types.is_dictionary(t.schema.field(j).type):
            t = t.set_column(j, name, t.column(j).cast(pa.string()))
    i = t.schema.get_field_index("ids")
    if i < 0:
        return t
    ids = t.column(i)
    t = t.remove_column(i)
    j = t.schema.get_field_index("metadata")
    if j < 0 or not t.num_rows:
        return t
    return t.set_column(j, "metadata", join_texts(t.column("metadata"), id_matrix(ids)))


def id_chars(ids: np.ndarray) -> np.ndarray:
    """Per entry, the characters of the names and values of its record-id pairs, as Loki counts
    structured metadata (``trace_id`` 8 + 32, ``span_id`` 7 + 16, ``observed_timestamp`` 18 + digits)."""
    return _id_chars(np.ascontiguousarray(ids))


# Small kernels shared by the writers and readers of record ids (``record_wire``, ``chunks``,
# ``chunkread``); inlined, so they cost no call.


@njit(cache=True, nogil=True, inline="always")
def nonzero(buf, at, n):  # pragma: no cover
    """Whether ``buf[at:at + n]`` holds a byte other than 0 (an id of zeros is none)."""
    for q in range(at, at + n):
        if buf[q]:
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def get_u64(buf, at):  # pragma: no cover
    """The little-endian u64 at ``buf[at]``."""
    v = np.uint64(0)
    for q in range(8):
        v |= np.uint64(buf[at + q]) << np.uint64(8 * q)
    return v


@njit(cache=True, nogil=True, inline="always")
def put_u64(out, at, v):  # pragma: no cover
    """Write ``v`` (uint64) little-endian at ``out[at]``."""
    for q in range(8):
        out[at + q] = np.uint8((v >> np.uint64(8 * q)) & np.uint64(255))


@njit(cache=True, nogil=True, inline="always")
def put_int(out, o, v):  # pragma: no cover
    """Write ``v`` in decimal: (position after it, its characters)."""
    start = o
    if v < 0:
        out[o] = 0x2D
        o += 1
    m = np.uint64(v) if v >= 0 else np.uint64(0) - np.uint64(v)  # (|min int64| fits uint64)
    digits = 1
    x = m
    while x >= np.uint64(10):
        x //= np.uint64(10)
        digits += 1
    for k in range(digits - 1, -1, -1):
        out[o + k] = 0x30 + np.uint8(m % np.uint64(10))
        m //= np.uint64(10)
    o += digits
    return o, o - start


@njit(cache=True, nogil=True)
def _id_chars(ids):  # pragma: no cover
    out = np.zeros(len(ids), np.int64)
    digits = np.empty(24, np.uint8)
    for i in range(len(ids)):
        row = ids[i]
        c = 0
        if nonzero(row, TRACE, 16):
            c += 40
        if nonzero(row, SPAN, 8):
            c += 23
        if nonzero(row, OBSERVED, 8):
            c += 18 + put_int(digits, 0, np.int64(get_u64(row, OBSERVED)))[1]
        out[i] = c
    return out


@njit(cache=True, nogil=True)
def _put_pair(out, o, ids, i, which, keys, key_off, hex_chars):  # pragma: no cover
    """Write pair ``which`` (0 observed, 1 span, 2 trace) of entry ``i``: ``name="value"``."""
    o0 = key_off[which]
    n = key_off[which + 1] - o0
    copy_bytes(out, o, keys, o0, n)
    o += n
    out[o] = 0x3D  # =
    out[o + 1] = 0x22  # "
    o += 2
    if which == 0:
        o = put_int(out, o, np.int64(get_u64(ids[i], OBSERVED)))[0]
    else:
        at, width = (SPAN, 8) if which == 1 else (TRACE, 16)
        for q in range(width):
            b = ids[i, at + q]
            out[o + 2 * q] = hex_chars[b >> 4]
            out[o + 2 * q + 1] = hex_chars[b & 15]
        o += 2 * width
    out[o] = 0x22
    return o + 1


@njit(cache=True, nogil=True)
def _before(data, at, end, keys, k0, k1):  # pragma: no cover
    """Whether key ``keys[k0:k1]`` sorts before the pair name starting at ``data[at]`` (ending at ``=``)."""
    q = 0
    while True:
        c = data[at + q] if at + q < end else 0x3D
        if k0 + q == k1:
            return c != 0x3D  # a prefix of the name sorts first (equal names do not occur)
        if c == 0x3D:
            return False
        if keys[k0 + q] != c:
            return keys[k0 + q] < c
        q += 1


@njit(cache=True, nogil=True)
def _join(data, off, ids, keys, key_off, hex_chars):  # pragma: no cover
    n = len(off) - 1
    bound = len(data) + n * (3 * 4 + 19 + 19 + 8 + 32 + 7 + 16 + 20)
    out = np.empty(bound, np.uint8)
    offsets = np.zeros(n + 1, np.int64)
    o = 0
    for i in range(n):
        lo, hi = off[i], off[i + 1]
        has0 = nonzero(ids[i], OBSERVED, 8)
        has1 = nonzero(ids[i], SPAN, 8)
        has2 = nonzero(ids[i], TRACE, 16)
        if not (has0 or has1 or has2) or hi - lo < 2:
            copy_bytes(out, o, data, lo, hi - lo)
            o += hi - lo
            offsets[i + 1] = o
            continue
        pending = np.array([has0, has1, has2])
        out[o] = 0x7B  # {
        o += 1
        wrote = False
        p = lo + 1
        end = hi - 1  # the closing brace
        while p < end:  # one pair of the rest: name="value", then a comma or the end
            q = p
            while q < end and data[q] != 0x3D:
                q += 1
            q += 2  # after ="
            while q < end and data[q] != 0x22:
                q += 2 if data[q] == 0x5C else 1
            q = min(q + 1, end)  # after the closing quote (a text not of labels_text: to its end)
            for w in range(3):
                if pending[w] and _before(data, p, end, keys, key_off[w], key_off[w + 1]):
                    if wrote:
                        out[o] = 0x2C
                        o += 1
                    o = _put_pair(out, o, ids, i, w, keys, key_off, hex_chars)
                    pending[w] = False
                    wrote = True
            if wrote:
                out[o] = 0x2C
                o += 1
            copy_bytes(out, o, data, p, q - p)
            o += q - p
            wrote = True
            p = q + 1  # past the comma
        for w in range(3):
            if pending[w]:
                if wrote:
                    out[o] = 0x2C
                    o += 1
                o = _put_pair(out, o, ids, i, w, keys, key_off, hex_chars)
                wrote = True
        out[o] = 0x7D  # }
        o += 1
        offsets[i + 1] = o
    return out[:o].copy(), offsets


def warm() -> None:
    """Compile (or load) the kernels."""
    m = np.zeros((1, IDS_BYTES), np.uint8)
    m[0, 0] = m[0, 16] = m[0, 24] = 1
    join_texts(pa.array(['{a="b"}']), m)
    id_chars(m)
