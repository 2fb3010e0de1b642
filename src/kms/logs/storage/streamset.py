"""Which streams each block holds, remembered per block (a block never changes once written), so
a read with line filters can prune row groups by stream without first reading the ``stream``
column of its whole range (the index pass of ``source``). The head is looked at each time."""

from __future__ import annotations

import threading

import pyarrow.compute as pc

from kms.logs.schema import LOGS
from kms.storage import Store

__all__ = ["streams_in_range", "streams_of_block"]

#: (tenant, block id) -> stream texts. Cleared when it grows past MAX_BLOCKS (ids of deleted
#: blocks are never asked for again, so a clear is the only eviction needed).
_CACHE: dict[tuple[str, str], frozenset[str]] = {}
_LOCK = threading.Lock()
MAX_BLOCKS = 20_000


def _block_streams(block) -> frozenset[str]:
    reader = block.reader()
    if hasattr(reader, "stream_set"):  # format 2: in its directory
        return reader.stream_set()
    out: set[str] = set()
    for t in reader.scan(None, ["stream"], False):
        out.update(pc.unique(t.column("stream")).to_pylist())
    return frozenset(out)


def streams_of_block(tenant: str, block) -> frozenset[str]:
    """Stream texts of one block (remembered)."""
    key = (tenant, block.meta.block_id)
    texts = _CACHE.get(key)
    if texts is None:
        texts = _block_streams(block)
        with _LOCK:
            if len(_CACHE) >= MAX_BLOCKS:
                _CACHE.clear()
            _CACHE[key] = texts
    return texts


def streams_in_range(store: Store, tenant: str, start_ns: int, end_ns: int) -> set[str]:
    """Stream texts of the blocks and head entries overlapping ``[start_ns, end_ns)``: every
    stream with entries in the range, and maybe some without."""
    head, blocks = store.snapshot(tenant, LOGS.name)
    out: set[str] = set()
    for b in blocks:
        if not b.meta.overlaps(start_ns, end_ns - 1):
            continue
        out |= streams_of_block(tenant, b)
    for e in head:
        if e.max_ns >= start_ns and e.min_ns < end_ns:
            out.update(x for x in pc.unique(e.table.column("stream")).to_pylist() if x is not None)
    return out
