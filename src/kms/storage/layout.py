"""Every on-disk path and object key of the store, in one place (see FORMAT.md).

Local disk (always, even with S3)::

    <data_dir>/wal/<base:020d>.wal      WAL segments; <base> is the segment's first logical offset
    <data_dir>/wal/checkpoint.json      replay floors per tenant+signal (what blocks already hold)
    <data_dir>/wal/LOCK                 flock()ed while a store has the directory open
    <data_dir>/blocks/                  root of the ``local`` object store (when used)

Object store (local directory or S3 bucket + prefix)::

    <tenant>/<signal>/<block_id>/data.parquet
    <tenant>/<signal>/<block_id>/bloom.bin     optional Bloom filter of SignalSpec.bloom_column
    <tenant>/<signal>/<block_id>/meta.json     written last: a block without it does not exist

Tenant ids are validated like Mimir's (``validate_tenant``), so they are safe path components.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from kms.tenancy import TENANT_RE, validate_tenant

__all__ = [
    "WAL_DIR",
    "CHECKPOINT_FILE",
    "LOCK_FILE",
    "BLOCK_DATA",
    "BLOCK_META",
    "BLOCK_BLOOM",
    "wal_dir",
    "segment_name",
    "segment_base",
    "checkpoint_path",
    "local_blocks_root",
    "block_prefix",
    "block_data_key",
    "block_meta_key",
    "block_bloom_key",
    "parse_block_key",
    "new_block_id",
    "validate_tenant",
    "validate_signal",
]

WAL_DIR = "wal"
SEGMENT_SUFFIX = ".wal"
CHECKPOINT_FILE = "checkpoint.json"
LOCK_FILE = "LOCK"  # flock()ed by the open store: one process per data_dir
BLOCKS_DIR = "blocks"
BLOCK_DATA = "data.parquet"
BLOCK_META = "meta.json"
BLOCK_BLOOM = "bloom.bin"

_SEGMENT_RE = re.compile(r"^(\d{20})\.wal$")
# Mimir's tenant id rules: at most 150 bytes of [A-Za-z0-9!-_.*'()], and not "." or "..".
_TENANT_RE = TENANT_RE
_SIGNAL_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BLOCK_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def wal_dir(data_dir: Path) -> Path:
    return Path(data_dir) / WAL_DIR


def segment_name(base: int) -> str:
    """The file name of the segment whose first byte has logical WAL offset ``base``."""
    return f"{base:020d}{SEGMENT_SUFFIX}"


def segment_base(name: str) -> int | None:
    """The base offset encoded in a segment file name, or None if ``name`` is not a segment."""
    m = _SEGMENT_RE.match(name)
    return int(m.group(1)) if m else None


def checkpoint_path(data_dir: Path) -> Path:
    return wal_dir(data_dir) / CHECKPOINT_FILE


def local_blocks_root(data_dir: Path) -> Path:
    """Where the ``local`` backend keeps its objects by convention."""
    return Path(data_dir) / BLOCKS_DIR


def block_prefix(tenant: str, signal: str, block_id: str | None = None) -> str:
    """``<tenant>/<signal>/`` or ``<tenant>/<signal>/<block_id>/``."""
    return f"{tenant}/{signal}/" if block_id is None else f"{tenant}/{signal}/{block_id}/"


def block_data_key(tenant: str, signal: str, block_id: str) -> str:
    return block_prefix(tenant, signal, block_id) + BLOCK_DATA


def block_meta_key(tenant: str, signal: str, block_id: str) -> str:
    return block_prefix(tenant, signal, block_id) + BLOCK_META


def block_bloom_key(tenant: str, signal: str, block_id: str) -> str:
    return block_prefix(tenant, signal, block_id) + BLOCK_BLOOM


def parse_block_key(key: str) -> tuple[str, str, str, str] | None:
    """``(tenant, signal, block_id, file)`` for a block object key, None for anything else."""
    parts = key.split("/")
    if len(parts) != 4:
        return None
    tenant, signal, block_id, name = parts
    if not _TENANT_RE.match(tenant) or tenant in (".", "..") or not _BLOCK_ID_RE.match(block_id):
        return None
    return tenant, signal, block_id, name


def new_block_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit unix ms + 80 random bits, Crockford base32, so ids sort by creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    n = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


def validate_signal(signal: str) -> str:
    """Signal names become key components: lower-case identifiers only (ValueError if not)."""
    if not _SIGNAL_RE.match(signal):
        raise ValueError(f"invalid signal name {signal!r}: use [a-z][a-z0-9_]*")
    return signal
