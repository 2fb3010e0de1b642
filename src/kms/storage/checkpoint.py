"""The WAL checkpoint: per tenant+signal replay floors (FORMAT.md, "Checkpoint").

A floor F for (tenant, signal) says: every WAL record of that tenant+signal at a position
below F is already in blocks (or was dropped by retention), so replay skips it. Block metas
carry the same marks (``wal_marks``); the checkpoint also covers cuts that wrote no block
and blocks since deleted by retention. Written atomically (tmp + fsync + rename + dir fsync).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from kms.storage.wal import fsync_dir

__all__ = ["CHECKPOINT_VERSION", "read_checkpoint", "write_checkpoint"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


def read_checkpoint(path: Path, wal_id: str) -> dict[tuple[str, str], int]:
    """The floors recorded for WAL ``wal_id``; empty if there is no checkpoint or it is for another WAL."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        # Only written by rename, so a bad one means outside damage; block marks still apply.
        log.warning("WAL checkpoint %s unreadable (%s); relying on block marks", path, e)
        return {}
    if doc.get("format_version") != CHECKPOINT_VERSION or doc.get("wal_id") != wal_id:
        return {}
    return {(t, s): int(f) for t, s, f in doc.get("floors", [])}


def write_checkpoint(path: Path, wal_id: str, floors: dict[tuple[str, str], int]) -> None:
    doc = {
        "format_version": CHECKPOINT_VERSION,
        "wal_id": wal_id,
        "floors": [[t, s, f] for (t, s), f in sorted(floors.items())],
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(doc, separators=(",", ":")).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
