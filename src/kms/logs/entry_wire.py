"""Loki push entries decoded as columns: the times and lines of serialized ``EntryAdapter``
messages, read with numpy from the bytes instead of one protobuf object per entry.

Clients (Promtail, Alloy, the Loki client libraries) write each entry as the timestamp message
(seconds, then nanos, each left out when zero) followed by the line, and most entries carry no
structured metadata. For entries of exactly that shape the fields sit at offsets numpy can find
for all entries at once; any other shape (metadata, fields in another order, an empty line, a
negative time, lines of 2 MiB or more, invalid UTF-8) makes ``decode_uniform`` answer None, and
the caller decodes the request one entry at a time.

Per entry that saves the protobuf wrappers of the entry and its timestamp and the Python string
of its line, and the lines arrive as the Arrow array the head and block writer need: on 100-byte
lines, decoding a push (snappy included) went from ~18 to ~8 ms a MB of lines.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["decode_uniform", "varint", "optional_varint"]

_TS, _LINE = 0x0A, 0x12  # EntryAdapter field 1 (timestamp), field 2 (line), both length-delimited
_SECONDS, _NANOS = 0x08, 0x10  # Timestamp field 1 and 2, varints
_BYTES = np.arange(10)


def decode_uniform(entries: list[bytes]) -> tuple[np.ndarray, pa.Array] | None:
    """(unix ns int64, lines as a string array) of the serialized entries, or None if one of
    them is not a timestamp then a non-empty line and nothing else."""
    n = len(entries)
    if n == 0:
        return np.zeros(0, np.int64), pa.array([], pa.string())
    lens = np.fromiter(map(len, entries), np.int64, n)
    ends = np.cumsum(lens)
    starts = ends - lens
    buf = np.frombuffer(b"".join([*entries, bytes(32)]), np.uint8)  # zero padding: reads past the end see 0
    if (lens < 4).any() or (buf[starts] != _TS).any():
        return None
    size = buf[starts + 1].astype(np.int64)  # of the timestamp message: a one-byte length
    if (size >= 128).any():
        return None
    at = starts + 2
    seconds, at = optional_varint(buf, at, _SECONDS, 9)
    if seconds is None:
        return None
    nanos, at = optional_varint(buf, at, _NANOS, 5)
    if nanos is None or (at != starts + 2 + size).any() or (buf[at] != _LINE).any():
        return None
    length, width = varint(buf, at + 1, 3)
    if length is None or (length == 0).any():
        return None
    first = at + 1 + width
    if (first + length != ends).any():
        return None
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    if offsets[-1] >= 1 << 31:
        return None
    # the lines are the bytes between the entries' headers: drop the headers (~12 bytes an entry)
    head = first - starts
    keep = np.ones(int(ends[-1]), dtype=bool)
    keep[np.repeat(starts - np.cumsum(head) + head, head) + np.arange(int(head.sum()))] = False
    data = buf[:len(keep)][keep]
    lines = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
    try:
        lines = lines.cast(pa.string())  # checks UTF-8, as the protobuf string field would
    except pa.ArrowInvalid:
        return None
    return seconds * 1_000_000_000 + nanos, lines


def optional_varint(buf: np.ndarray, at: np.ndarray, tag: int, most: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Per position, the varint after ``tag`` there (0 where another byte is), and the position
    after it; None if a varint is longer than ``most`` bytes."""
    has = buf[at] == tag
    value = np.zeros(len(at), np.int64)
    after = at.copy()
    if has.any():
        v, width = varint(buf, at[has] + 1, most)
        if v is None:
            return None, at
        value[has] = v
        after[has] += 1 + width
    return value, after


def varint(buf: np.ndarray, at: np.ndarray, most: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(values, byte widths) of the unsigned varints at ``at``, None if one is longer than
    ``most`` bytes."""
    b = buf[at[:, None] + _BYTES[:most]].astype(np.int64)
    last = b < 128
    if not last.any(axis=1).all():
        return None, at
    width = last.argmax(axis=1) + 1
    keep = _BYTES[:most] < width[:, None]
    value = ((b & 127) << (7 * _BYTES[:most])) * keep
    return value.sum(axis=1), width
