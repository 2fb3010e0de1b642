"""Compaction: merge a tenant+signal's small blocks into bigger, re-sorted ones.

The merged block is written (data, then meta listing its ``sources``) before anything else
changes; the caller then swaps it for its sources in the partition's block list in one step
and deletes the sources later. A crash in between leaves sources and merged block both in the
store; ``superseded()`` names the sources so the next open ignores and deletes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from kms.storage.block import Block, BlockMeta, write_block, write_encoded_block
from kms.storage.objstore import ObjectStore

__all__ = ["plan_compaction", "compact_blocks", "superseded", "merge_marks"]


def plan_compaction(
    blocks: Sequence[Block], *, min_blocks: int, target_rows: int, window_ns: int | None = None
) -> list[list[Block]]:
    """Groups of blocks to merge. Only blocks whose min time falls in the same ``window_ns``
    window are merged, so merged blocks stay time-coherent and retention can drop them whole.
    Per window, blocks under ``target_rows`` are taken oldest first (by min time) until a group
    reaches ``target_rows``; a full group needs two blocks, the last, partial one ``min_blocks``."""
    windows: dict[int, list[Block]] = {}
    for b in blocks:
        if b.meta.rows < target_rows:
            windows.setdefault(b.meta.min_time_ns // window_ns if window_ns else 0, []).append(b)
    groups: list[list[Block]] = []
    for _, small in sorted(windows.items()):
        small.sort(key=lambda b: (b.meta.min_time_ns, b.id))
        group: list[Block] = []
        rows = 0
        for b in small:
            group.append(b)
            rows += b.meta.rows
            if rows >= target_rows:
                if len(group) >= 2:
                    groups.append(group)
                group, rows = [], 0
        if len(group) >= max(2, min_blocks):
            groups.append(group)
    return groups


def merge_marks(metas: Iterable[BlockMeta]) -> dict[str, int]:
    """The WAL marks a merged block carries: per WAL id, the highest of its sources."""
    marks: dict[str, int] = {}
    for m in metas:
        for wal_id, floor in m.wal_marks.items():
            marks[wal_id] = max(marks.get(wal_id, floor), floor)
    return marks


def compact_blocks(objstore: ObjectStore, group: Sequence[Block]) -> Block:
    """Write one block holding every row of ``group`` (sorted again); the sources are untouched.
    A signal's own block format may merge its blocks without decoding them (``merge``)."""
    spec = group[0].spec
    metas = [b.meta for b in group]
    merge = getattr(spec.block_format, "merge", None)
    data = merge(group) if merge is not None and spec.bloom_column is None else None
    if data is not None:
        return write_encoded_block(
            objstore,
            spec,
            metas[0].tenant,
            data,
            rows=sum(m.rows for m in metas),
            min_time_ns=min(m.min_time_ns for m in metas),
            max_time_ns=max(m.max_time_ns for m in metas),
            level=max(m.level for m in metas) + 1,
            sources=tuple(m.block_id for m in metas),
            wal_marks=merge_marks(metas),
        )
    table = pa.concat_tables([b.reader().read_all() for b in group])
    return write_block(
        objstore,
        spec,
        metas[0].tenant,
        table,
        level=max(m.level for m in metas) + 1,
        sources=tuple(m.block_id for m in metas),
        wal_marks=merge_marks(metas),
    )


def superseded(metas: Iterable[BlockMeta]) -> set[str]:
    """Ids of blocks that some other block lists as a source (their rows live on there)."""
    metas = list(metas)
    present = {m.block_id for m in metas}
    return {s for m in metas for s in m.sources if s in present}
