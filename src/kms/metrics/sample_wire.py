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

__all__ = ["decode_samples"]


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
