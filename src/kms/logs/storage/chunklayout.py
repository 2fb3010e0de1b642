"""The byte layout of format-2 log blocks, shared by the writer (``chunks``) and the reader
(``chunkread``); see ``chunks`` for the whole format."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

__all__ = ["MAGIC", "TRAILER", "DIR_SCHEMA", "INDEX_COLS", "TIME_COLS", "META_COLS", "ID_COLS", "OPTIONAL_COLS", "DICT_BYTES", "string_parts"]

MAGIC = b"KMSLOGS2"
TRAILER = struct.Struct("<QQ8s")
#: the directory's per-chunk columns (kept by readers), then its per-entry ones (read when needed)
INDEX_COLS = ["stream", "min_time_ns", "max_time_ns", "rows", "length", "size", "sep", "grams", "dict", "vlen"]
TIME_COLS = ["time_unit", "deltas"]
META_COLS = ["meta_values", "meta_codes"]
DIR_SCHEMA = pa.schema([
    ("stream", pa.string()),
    ("min_time_ns", pa.int64()),
    ("max_time_ns", pa.int64()),
    ("rows", pa.int32()),
    ("length", pa.int64()),  # compressed (frames follow MAGIC in chunk order: offsets are sums of lengths)
    ("size", pa.int64()),  # decompressed
    ("sep", pa.bool_()),  # each line followed by "\n" (else: u32 lengths, then the bytes)
    ("grams", pa.binary()),  # BITS // 8 bytes
    ("time_unit", pa.int64()),  # the block's time deltas are multiples of this (their gcd)
    ("deltas", pa.binary()),  # rows x u1/u2/u4/u8 LE (a width a chunk; blocks before: a block): (time - previous) / unit, 0 first
    ("meta_values", pa.list_(pa.string())),  # the chunk's distinct metadata texts
    ("meta_codes", pa.binary()),  # rows x u8/u16/u32 LE (one width a block): index in meta_values; empty: all 0
    ("dict", pa.int32()),  # chunk whose first frame's decompressed bytes are its first frame's zstd dictionary, or -1
    ("vlen", pa.int32()),  # > 0: the chunk is split (``linevars``): its template's frame, then its variables' frame of this length
    # the entries' record ids (``kms.logs.recordids``), empty when none has any, else rows x 16
    # trace id bytes, rows x 8 span id bytes, rows x u64 LE observed time minus time (mod 2**64)
    ("ids", pa.binary()),
])
#: a frame with a dictionary chunk is compressed with that chunk's first DICT_BYTES bytes as zstd
#: raw-content dictionary (more adds nothing on access logs and slows compression)
DICT_BYTES = 4096
#: the directory columns a block written before chunk dictionaries (read as all -1) or split
#: chunks (all 0) may lack; and before record ids (none)
OPTIONAL_COLS = ["dict", "vlen", "ids"]
ID_COLS = ["ids"]


def string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64 rebased to 0, data uint8) of a string or binary array without nulls."""
    n = len(arr)
    width = 8 if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type) else 4
    _, obuf, dbuf = arr.buffers()
    offsets = np.frombuffer(obuf, dtype=np.int64 if width == 8 else np.int32, count=n + 1,
                            offset=arr.offset * width).astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(dbuf, dtype=np.uint8)[lo:hi] if dbuf is not None and hi > lo else np.empty(0, np.uint8)
    return offsets - lo, data


