"""Byte ranges moved with memcpy: ``copy_bytes`` (LLVM's memcpy inside numba kernels) and
``Strings`` (a string column's values in a given order, or each followed by a newline).

A byte loop over ranges of varying length does not vectorise (about 0.9 ns a byte here); memcpy
moves the same ranges of ~100 bytes at ~0.04 ns a byte. An intrinsic rather than a ctypes call,
so kernels using it stay cacheable. Arrow's ``take`` of a string column of many chunks costs
about 4 ns a byte (a block cut of OTLP records: 0.4 s of its 0.9 s); ``Strings.take`` ~0.3."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["Strings", "copy_bytes", "copy_from_address", "warm"]


@intrinsic
def copy_bytes(typingctx, dst, dst_at, src, src_at, n):  # pragma: no cover (compiled)
    """Copy ``n`` bytes from ``src[src_at:]`` to ``dst[dst_at:]`` (contiguous uint8 arrays, not
    overlapping; no bounds checks)."""
    sig = types.void(dst, dst_at, src, src_at, n)

    def codegen(context, builder, signature, args):
        d, d_at, s, s_at, count = args
        to = builder.gep(context.make_array(signature.args[0])(context, builder, d).data, [d_at])
        from_ = builder.gep(context.make_array(signature.args[2])(context, builder, s).data, [s_at])
        cgutils.raw_memcpy(builder, to, from_, count, 1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def copy_from_address(typingctx, dst, dst_at, address, n):  # pragma: no cover (compiled)
    """Copy ``n`` bytes from memory at ``address`` (uint64; memory the caller keeps alive) to
    ``dst[dst_at:]``."""
    sig = types.void(dst, dst_at, address, n)

    def codegen(context, builder, signature, args):
        d, d_at, a, count = args
        to = builder.gep(context.make_array(signature.args[0])(context, builder, d).data, [d_at])
        cgutils.raw_memcpy(builder, to, builder.inttoptr(a, to.type), count, 1)
        return context.get_dummy_value()

    return sig, codegen


class Strings:
    """A string or binary column without nulls, each value located once (its first byte's address
    and its length), then taken in any order as often as needed (a block cut takes its lines and
    metadata texts a few MB at a time). Holds the column, so its buffers stay alive."""

    def __init__(self, col: pa.Array | pa.ChunkedArray):
        if col.null_count or not any(f(col.type) for f in (pa.types.is_string, pa.types.is_binary,
                                                            pa.types.is_large_string, pa.types.is_large_binary)):
            raise ValueError("Strings takes a string or binary column without nulls")
        self.col = col
        self.address, self.length = _values(col)

    def take(self, order: np.ndarray) -> pa.Array:
        """``col.take(order)`` as one array (int32 offsets: under 2 GiB of values)."""
        out, offsets = _take(self.address, self.length, np.asarray(order, np.int64), -1)
        typ = pa.binary() if pa.types.is_binary(self.col.type) or pa.types.is_large_binary(self.col.type) else pa.string()
        return pa.Array.from_buffers(typ, len(order), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(out)])

    def lines(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, bytes) of the values in ``order``, each followed by a newline, in one pass:
        taking them and then joining each with ``"\n"`` wrote every byte twice. Offsets are
        int64: no 2 GiB limit."""
        out, offsets = _take(self.address, self.length, np.asarray(order, np.int64), 10)
        return offsets, out


def _values(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(address of its first byte, length) of each value of a string or binary column."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    wide = pa.types.is_large_string(col.type) or pa.types.is_large_binary(col.type)
    address = np.empty(len(col), np.uint64)
    length = np.empty(len(col), np.int64)
    at = 0
    for c in chunks:
        n = len(c)
        if n == 0:
            continue
        _, offsets, data = c.buffers()
        off = np.frombuffer(offsets, np.int64 if wide else np.int32, n + 1, c.offset * (8 if wide else 4))
        address[at:at + n] = (data.address if data is not None else 0) + off[:-1].astype(np.uint64)
        length[at:at + n] = np.diff(off)
        at += n
    return address, length


@njit(cache=True, nogil=True)
def _take(address, length, order, end):  # pragma: no cover
    """The values at ``address`` (``length`` bytes each) in ``order``, each followed by byte
    ``end`` unless it is negative: (bytes, int64 offsets)."""
    n = len(order)
    extra = 1 if end >= 0 else 0
    offsets = np.zeros(n + 1, np.int64)
    for i in range(n):
        offsets[i + 1] = offsets[i] + length[order[i]] + extra
    out = np.empty(offsets[n], np.uint8)
    for i in range(n):
        r = order[i]
        copy_from_address(out, offsets[i], address[r], length[r])
        if extra:
            out[offsets[i + 1] - 1] = end
    return out, offsets


def warm() -> None:
    """Compile (or load from numba's cache) the kernels before the first block cut needs them."""
    Strings(pa.array(["a", "b"])).lines(np.array([1, 0]))
