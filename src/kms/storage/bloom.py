"""Per-block membership filters (``bloom.bin``, FORMAT.md "Bloom filters").

A split-block Bloom filter (the scheme Parquet uses): the bitset is an array of 256-bit blocks of
eight 32-bit words; a key's 64-bit hash picks one block with its high 32 bits and sets one bit in
each of the eight words with its low 32 bits (times eight odd salts, top 5 bits). A lookup touches
one 32-byte block. Everything is vectorised with numpy: a block's ids are hashed straight from the
fixed-size binary column buffer, never one id at a time in Python.

Only ``fixed_size_binary`` columns are supported (trace ids). Nulls are not inserted (an equality
or ``isin`` without nulls never matches a null).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "BLOOM_VERSION",
    "BITS_PER_KEY",
    "BloomFilter",
    "hash_column",
    "hash_values",
    "filter_keys",
]

BLOOM_VERSION = 1
HASH_ID = 1  # the hash below; a new hash needs a new id
BITS_PER_KEY = 10.5  # measured: ~1.0% false positives (10: 1.26%, 11: 0.81%)
_MAGIC = b"KMSBLOOM"
_HEADER = struct.Struct("<8sBBHIQII")  # magic, version, hash id, 0, blocks, keys, crc32(bitset), 0
_SEED = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0x87C37B91114253D5)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_SALT = np.array(
    [0x47B6137B, 0x44974D91, 0x8824AD5B, 0xA2B7289D, 0x705495C7, 0x2DF1424B, 0x9EFC4947, 0x5C6BFB31],
    dtype=np.uint32,
)
_WORD_BITS = np.arange(8, dtype=np.uint64) * np.uint64(32)  # bit offset of word i inside a block


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * _M1
    h = h ^ (h >> np.uint64(33))
    h = h * _M2
    return h ^ (h >> np.uint64(33))


def _hash_rows(raw: np.ndarray, width: int) -> np.ndarray:
    """64-bit hashes of the rows of a ``(n, width)`` uint8 matrix: h = seed ^ width, then per
    8-byte little-endian word w (the last zero-padded): h = fmix64((h ^ w) * C1) (mod 2^64)."""
    n = raw.shape[0]
    lanes_n = (width + 7) // 8
    if width % 8:
        padded = np.zeros((n, lanes_n * 8), dtype=np.uint8)
        padded[:, :width] = raw
        raw = padded
    lanes = np.ascontiguousarray(raw).view("<u8").reshape(n, lanes_n)
    h = np.full(n, _SEED ^ np.uint64(width), dtype=np.uint64)
    for j in range(lanes_n):
        h = _fmix64((h ^ lanes[:, j]) * _C1)
    return h


def hash_column(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Distinct hashes of the non-null values of a fixed_size_binary column (uint64, sorted)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_fixed_size_binary(col.type):
        raise TypeError(f"bloom filters index fixed_size_binary columns, not {col.type}")
    w = col.type.byte_width
    n = len(col)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    data = col.buffers()[1]
    raw = np.frombuffer(data, dtype=np.uint8, count=(col.offset + n) * w)[col.offset * w :].reshape(n, w)
    if col.null_count:
        raw = raw[col.is_valid().to_numpy(zero_copy_only=False)]
    h = np.sort(_hash_rows(raw, w))  # (np.unique is ~10x slower here)
    if len(h) > 1:
        h = h[np.concatenate(([True], h[1:] != h[:-1]))]
    return h


def hash_values(values: Sequence[bytes], width: int) -> np.ndarray:
    """Hashes of lookup values (each exactly ``width`` bytes)."""
    raw = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), width)
    return _hash_rows(raw, width)


class BloomFilter:
    """An immutable split-block Bloom filter; ``bits`` is the bitset as little-endian bytes."""

    __slots__ = ("bits", "keys", "_u8")

    def __init__(self, bits: bytes, keys: int):
        if not bits or len(bits) % 32:
            raise ValueError(f"bloom bitset of {len(bits)} bytes is not a whole number of 32-byte blocks")
        self.bits = bits
        self.keys = keys
        self._u8 = np.frombuffer(bits, dtype=np.uint8)

    @property
    def num_blocks(self) -> int:
        return len(self.bits) // 32

    @staticmethod
    def _bit_index(hashes: np.ndarray, num_blocks: int) -> np.ndarray:
        """``(n, 8)`` absolute bit positions of each hash (bit j of uint32 word i of block b is
        bit ``b*256 + i*32 + j``, i.e. byte ``b*32 + i*4 + j//8``, bit ``j%8`` of the bitset)."""
        blk = ((hashes >> np.uint64(32)) * np.uint64(num_blocks)) >> np.uint64(32)
        key = (hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        bit = (key[:, None] * _SALT[None, :]) >> np.uint32(27)  # uint32 arithmetic wraps mod 2^32
        return blk[:, None] * np.uint64(256) + _WORD_BITS[None, :] + bit.astype(np.uint64)

    @classmethod
    def build(cls, hashes: np.ndarray, bits_per_key: float = BITS_PER_KEY) -> BloomFilter:
        """A filter holding ``hashes`` (distinct, from ``hash_column``), sized at ``bits_per_key``."""
        num_blocks = max(1, int(np.ceil(len(hashes) * bits_per_key / 256)))
        flat = np.zeros(num_blocks * 256, dtype=bool)
        if len(hashes):
            flat[cls._bit_index(hashes, num_blocks).ravel()] = True
        return cls(np.packbits(flat, bitorder="little").tobytes(), len(hashes))

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash: False = certainly absent, True = maybe present."""
        idx = self._bit_index(hashes, self.num_blocks)
        set_ = (self._u8[idx >> np.uint64(3)] >> (idx & np.uint64(7)).astype(np.uint8)) & 1
        return set_.all(axis=1)

    def may_contain_any(self, hashes: np.ndarray) -> bool:
        return bool(len(hashes)) and bool(self.contains(hashes).any())

    def estimated_fpp(self) -> float:
        """The chance a random absent key passes, from how full each word is."""
        words = self._u8.view("<u4").reshape(-1, 8)
        fill = np.bitwise_count(words).astype(np.float64) / 32
        return float(fill.prod(axis=1).mean())

    def to_bytes(self) -> bytes:
        head = _HEADER.pack(
            _MAGIC, BLOOM_VERSION, HASH_ID, 0, self.num_blocks, self.keys, zlib.crc32(self.bits), 0
        )
        return head + self.bits

    @classmethod
    def from_bytes(cls, data: bytes) -> BloomFilter:
        """Parse ``bloom.bin``; ValueError if it is not one this build reads."""
        if len(data) < _HEADER.size:
            raise ValueError("bloom filter: truncated header")
        magic, version, hash_id, _, blocks, keys, crc, _ = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != BLOOM_VERSION or hash_id != HASH_ID:
            raise ValueError(f"bloom filter: unknown magic/version/hash {magic!r} {version} {hash_id}")
        bits = bytes(data[_HEADER.size :])
        if len(bits) != blocks * 32 or zlib.crc32(bits) != crc:
            raise ValueError("bloom filter: bitset size or CRC mismatch")
        return cls(bits, keys)


# -- which keys a filter expression asks for ------------------------------------------------------

_STR = re.compile(r'"(?:[^"\\]|\\.)*"')
_HEX = "[0-9A-F]"


def _conjuncts(text: str) -> list[str]:
    """The top-level ``and`` operands of a printed expression (just [text] if it is no ``and``).
    Quoted literals are skipped (Arrow escapes quotes in them), so parentheses are structural."""
    if not (text.startswith("(") and text.endswith(")")):
        return [text]
    masked = _STR.sub(lambda m: "_" * len(m.group()), text)
    depth = 0
    for i, ch in enumerate(masked):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != len(masked) - 1:
                return [text]  # "(a) op (b)" without outer parentheses
        elif depth == 1 and masked.startswith(" and ", i):
            return _conjuncts(text[1:i]) + _conjuncts(text[i + 5 : -1])
    return [text]


def filter_keys(expr: pc.Expression | None, column: str, width: int) -> list[bytes] | None:
    """The values of ``column`` a row must have to match ``expr``, when ``expr`` says so plainly:
    ``column == v`` or ``column.isin([...])``, alone or as an operand of a top-level ``and``.
    None when it does not (or when unsure: then no block may be skipped)."""
    if expr is None:
        return None
    name = re.escape(column)
    eq = re.compile(rf'^\({name} == "({_HEX}{{{2 * width}}})"\)$')
    isin = re.compile(
        rf"^is_in\({name}, \{{value_set=(?:fixed_size_binary\[{width}\]|binary|large_binary):\[\n"
        rf"((?:  {_HEX}{{{2 * width}}},?\n)*)\], null_matching_behavior=[A-Z_]+\}}\)$"
    )
    # A literal of exactly 2*width hex digits is either the binary value itself or a string that can
    # never equal a width-byte value, so treating it as the value is safe either way.
    best: list[bytes] | None = None
    for part in _conjuncts(str(expr)):
        m = eq.match(part)
        if m:
            keys = [bytes.fromhex(m.group(1))]
        else:
            m = isin.match(part)
            if not m:
                continue
            keys = [bytes.fromhex(v.strip().rstrip(",")) for v in m.group(1).splitlines() if v.strip()]
        if best is None or len(keys) < len(best):
            best = keys
    return best
