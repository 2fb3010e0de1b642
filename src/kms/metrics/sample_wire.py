"""Vectorised decoding of protobuf ``Sample {double value = 1; int64 timestamp = 2}`` messages.

Remote write sends one ``Sample`` message per sample; handing each to Python as a message object
cost more than everything else of ingest together. The decoders read them as ``repeated bytes``
instead (the same wire format), join the bytes, and decode every sample at once with numpy.
Encoders write the fields in field order and leave out zero values (proto3), so a sample is
``[0x09 <8 bytes>] [0x10 <varint>]``, each part optional. Anything else (fields out of order,
repeated or unknown fields) returns None and the caller decodes that request message by message.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode_samples", "decode_uniform", "encode_samples"]


def decode_samples(raw: bytes, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(timestamps int64, values float64)`` of the ``Sample`` messages concatenated in ``raw``
    with byte lengths ``lens``; None when some sample is not in the common layout."""
    n = len(lens)
    if not n:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    buf = np.frombuffer(raw, np.uint8)
    size = len(buf)
    if not size:
        return np.zeros(n, np.int64), np.zeros(n, np.float64)
    lens = lens.astype(np.int64, copy=False)
    offs = np.cumsum(lens) - lens
    first = buf[np.minimum(offs, size - 1)]
    has_v = (lens >= 9) & (first == 0x09)
    values = np.zeros(n, np.float64)
    if has_v.any():
        vi = offs[has_v, None] + 1 + np.arange(8)
        values[has_v] = buf[vi].view(np.float64).ravel() if vi.size else []
    t_off = offs + np.where(has_v, 9, 0)
    t_len = lens - (t_off - offs)  # bytes left for the timestamp field: 0 or tag + varint
    has_t = t_len > 0
    vlen = t_len - 1
    if bool((has_t & ((buf[np.minimum(t_off, size - 1)] != 0x10) | (vlen < 1) | (vlen > 10))).any()):
        return None
    acc = np.zeros(n, np.uint64)
    for k in range(10):
        live = has_t & (vlen > k)
        if not live.any():
            break
        byte = buf[np.minimum(t_off + 1 + k, size - 1)].astype(np.uint64)
        last = vlen == k + 1
        # every varint byte but the last has its continuation bit set, the last does not
        if bool((live & ((byte >= 0x80) == last)).any()):
            return None
        acc |= np.where(live, (byte & np.uint64(0x7F)) << np.uint64(7 * k), np.uint64(0))
    return acc.view(np.int64), values


def decode_uniform(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(timestamps, values)`` of ``Sample`` messages that all have both fields and one varint
    length, given as a ``(n, 10 + varint bytes)`` uint8 matrix; None when a row is not that."""
    n, width = rows.shape
    vlen = width - 10
    if not 1 <= vlen <= 10:
        return None
    if bool((rows[:, 0] != 0x09).any() or (rows[:, 9] != 0x10).any()):
        return None
    var = rows[:, 10:].astype(np.uint64)
    cont = var >= 0x80  # every varint byte but the last has its continuation bit set
    if bool(cont[:, -1].any()) or (vlen > 1 and not bool(cont[:, :-1].all())):
        return None
    shifts = np.uint64(7) * np.arange(vlen, dtype=np.uint64)
    ts = np.bitwise_or.reduce((var & np.uint64(0x7F)) << shifts, axis=1)
    values = np.ascontiguousarray(rows[:, 1:9]).view(np.float64).ravel()
    return ts.view(np.int64), values


def _varint_len(x: np.ndarray) -> np.ndarray:
    """Bytes of each non-negative value's varint."""
    n = np.ones(len(x), np.int64)
    for k in range(1, 10):
        n += x >= (1 << (7 * k))
    return n


def encode_samples(values: np.ndarray, ts_ms: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Each sample as a length-prefixed ``Sample`` field of a ``TimeSeries`` (``0x12 len
    0x09 <double> 0x10 <varint>``), all concatenated, and the byte length of each; the inverse of
    :func:`decode_samples`'s layout. Both fields are always written (a zero value or timestamp too:
    receivers read them the same), so a record's length depends only on its timestamp's varint."""
    n = len(values)
    ts = np.asarray(ts_ms, np.int64)
    if n and ts.min() < 0:  # negative int64 varints take 10 bytes; rare enough for the generic path
        raise ValueError("negative timestamps")
    vl = _varint_len(ts.astype(np.uint64))
    rec_len = 2 + 9 + 1 + vl  # tag, length, value field, timestamp tag, varint
    out = np.zeros(int(rec_len.sum()), np.uint8)
    offs = np.cumsum(rec_len) - rec_len
    out[offs] = 0x12
    out[offs + 1] = (rec_len - 2).astype(np.uint8)  # < 128: one byte
    out[offs + 2] = 0x09
    out[(offs + 3)[:, None] + np.arange(8)] = np.asarray(values, np.float64).view(np.uint8).reshape(n, 8)
    out[offs + 11] = 0x10
    u = ts.astype(np.uint64)
    for k in range(int(vl.max()) if n else 0):
        live = vl > k
        byte = (u[live] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = vl[live] > k + 1
        out[offs[live] + 12 + k] = (byte | np.where(more, 0x80, 0).astype(np.uint64)).astype(np.uint8)
    return out.tobytes(), rec_len
