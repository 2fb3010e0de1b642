"""Protobuf wire-format bits needed outside generated classes."""

from __future__ import annotations

__all__ = ["varint", "len_prefixed"]


def varint(n: int) -> bytes:
    """Unsigned LEB128, as protobuf encodes lengths and tags."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def len_prefixed(field: int, payload: bytes) -> bytes:
    """One length-delimited field (wire type 2): tag, length, payload."""
    return varint((field << 3) | 2) + varint(len(payload)) + payload
