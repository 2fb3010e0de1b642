"""The write-ahead log: segment files on local disk, group commit, replay, truncation.

Positions are logical byte offsets (segment base + offset in the file), monotonic for the life
of the WAL directory; a record is named by the position of its first byte.

Locking: ``_lock`` guards the active segment, ``_written`` and ``_unapplied`` and is held for
one ``os.write`` only. ``_sync_lock`` serializes fsyncs and segment rolls; fsync runs outside
``_lock`` so other writers keep appending while it runs (group commit). Lock order is always
``_sync_lock`` -> ``_lock``.

Protocol for one append: ``pos, end = write(payload)``; ``sync(end)``; apply to the head;
``done(pos)`` (always, also on failure). ``safe_point()`` is the position below which every
record is done, so a head cut up to it misses nothing.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from kms.errors import Unavailable
from kms.storage import layout
from kms.storage.walrec import (
    SEGMENT_HEADER_SIZE,
    FrameDamage,
    WalCorrupt,
    decode_record,
    decode_record_key,
    find_intact_frame,
    frame,
    iter_frames,
    parse_segment_header,
    segment_header,
)

__all__ = ["Wal", "WalRecord", "WalCorrupt"]

log = logging.getLogger(__name__)

# Indirections so tests can inject I/O faults.
_write = os.write
_fsync = os.fdatasync if hasattr(os, "fdatasync") else os.fsync


@dataclass(slots=True)
class _Segment:
    base: int
    path: Path
    size: int
    fd: int | None = None

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class WalRecord:
    pos: int  # logical WAL offset of the record
    tenant: str
    signal: str
    table: pa.Table


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Wal:
    """One WAL directory. Use: ``open()``, ``replay()`` (once), ``start()``, then appends."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.id = b""
        self._closed: list[_Segment] = []  # oldest first; guarded by _lock
        self._active: _Segment | None = None
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0  # end of the last written record
        self._synced = 0  # everything below is on disk
        self._unapplied: set[int] = set()  # written, not yet done()
        self._failed: str | None = None
        self._replay_end = 0
        self.records = 0
        self.bytes = 0
        self.fsyncs = 0
        self.coalesced = 0  # syncs answered by another thread's fsync
        self.dropped_tail_bytes = 0

    # -- opening ---------------------------------------------------------------------------

    def open(self) -> None:
        """Find the segments and the WAL id; a new, empty directory gets a fresh id."""
        self.dir.mkdir(parents=True, exist_ok=True)
        segs = []
        for p in self.dir.iterdir():
            base = layout.segment_base(p.name)
            if base is not None:
                segs.append(_Segment(base, p, p.stat().st_size))
        segs.sort(key=lambda s: s.base)
        if segs and segs[-1].size < SEGMENT_HEADER_SIZE:  # crashed while creating it: holds nothing
            log.warning("WAL: removing incomplete segment %s (%d bytes)", segs[-1].path, segs[-1].size)
            segs[-1].path.unlink()
            self._replay_end = segs[-1].base
            segs.pop()
        ids = set()
        for s in segs:
            with open(s.path, "rb") as f:
                try:
                    ids.add(parse_segment_header(f.read(SEGMENT_HEADER_SIZE)))
                except WalCorrupt as e:
                    raise WalCorrupt(f"WAL segment {s.path}: offset 0: {e}") from None
        if len(ids) > 1:
            raise WalCorrupt(f"WAL directory {self.dir} mixes segments of {len(ids)} different WALs")
        self.id = ids.pop() if ids else os.urandom(16)
        self._closed = segs
        self._replay_end = max([self._replay_end] + [s.end for s in segs])

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    @property
    def failed(self) -> str | None:
        """Why appends are refused (a failed fsync, closed), or None."""
        return self._failed

    def replay(self, floors: Mapping[tuple[str, str], int]) -> Iterator[WalRecord]:
        """Yield the records of every segment in order, skipping those below their
        tenant+signal floor (already in blocks). A torn or CRC-bad record at the very end of the
        last segment is dropped and cut off; damage anywhere else raises WalCorrupt."""
        for i, seg in enumerate(self._closed):
            yield from self._replay_segment(seg, i == len(self._closed) - 1, floors)

    def _replay_segment(
        self, seg: _Segment, last: bool, floors: Mapping[tuple[str, str], int]
    ) -> Iterator[WalRecord]:
        with open(seg.path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        damage: tuple[int, str] | None = None
        try:
            try:
                for off, payload in iter_frames(buf, SEGMENT_HEADER_SIZE):
                    try:
                        tenant, signal, _ = decode_record_key(payload)
                        if seg.base + off < floors.get((tenant, signal), -1):
                            continue
                        rec = decode_record(payload)
                    except WalCorrupt as e:
                        raise WalCorrupt(f"WAL segment {seg.path}: offset {off}: {e}") from None
                    yield WalRecord(seg.base + off, rec.tenant, rec.signal, rec.table)
            except FrameDamage as d:
                damage = (d.offset, d.why)
            if damage is None:
                return
            intact_after = find_intact_frame(buf, damage[0])
        finally:
            try:
                buf.close()
            except BufferError:  # a view is still referenced (e.g. by a traceback): GC closes it
                pass
        if not last or intact_after is not None:
            where = (
                "it is not the last segment"
                if not last
                else f"an intact record follows at offset {intact_after}"
            )
            raise WalCorrupt(
                f"WAL segment {seg.path}: offset {damage[0]}: {damage[1]}; this is not a torn tail "
                f"({where}). Move the segment away to start without its records."
            )
        log.warning("WAL: dropping damaged tail of %s at offset %d (%s)", seg.path, damage[0], damage[1])
        self.dropped_tail_bytes += seg.size - damage[0]
        with open(seg.path, "r+b") as f:
            f.truncate(damage[0])
            os.fsync(f.fileno())
        seg.size = damage[0]

    def start(self, min_base: int = 0) -> None:
        """Open a new segment for appends. ``min_base``: the highest position anything
        (a block mark, the checkpoint) refers to, so positions are never reused."""
        seg = self._create_segment(max(self._replay_end, min_base, *(s.end for s in self._closed)))
        with self._lock:
            self._active = seg
            self._written = self._synced = seg.end

    def _create_segment(self, base: int) -> _Segment:
        path = self.dir / layout.segment_name(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            header = segment_header(self.id)
            os.write(fd, header)
            os.fsync(fd)
            fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            raise
        return _Segment(base, path, len(header), fd)

    # -- appending ---------------------------------------------------------------------------

    def write(self, payload) -> tuple[int, int]:
        """Append one record (not yet durable); returns ``(pos, end)``. Unavailable on failure."""
        return self.write_framed(frame(payload))

    def write_framed(self, rec) -> tuple[int, int]:
        """``write`` of a record already framed (``walrec.frame``, ``walrec.framed_record``)."""
        with self._lock:
            if self._failed or self._active is None:
                raise Unavailable(
                    f"WAL is not writable: {self._failed or 'not started'}", reason="wal_failed"
                )
            seg = self._active
            pos = seg.end
            try:
                view, done = memoryview(rec), 0
                while done < len(rec):
                    done += _write(seg.fd, view[done:])
            except OSError as e:
                try:
                    os.ftruncate(seg.fd, seg.size)  # take the partial record back out
                except OSError as e2:
                    self._failed = f"write failed and could not be undone: {e2}"
                raise Unavailable(f"WAL write failed: {e}", reason="wal_write") from e
            seg.size += len(rec)
            self._written = seg.end
            self._unapplied.add(pos)
            self.records += 1
            self.bytes += len(rec)
        return pos, pos + len(rec)

    def sync(self, end: int) -> None:
        """Return once every byte below ``end`` is on disk: one fsync serves all writers whose
        records it covers. Unavailable (forever after) if fsync fails."""
        with self._sync_lock:
            if self._synced >= end:
                self.coalesced += 1
                return
            if self._failed or self._active is None:
                raise Unavailable(
                    f"WAL is not writable: {self._failed or 'not started'}", reason="wal_failed"
                )
            with self._lock:
                fd, target = self._active.fd, self._written
            try:
                _fsync(fd)
            except OSError as e:
                # After a failed fsync the page cache state is unknown: never trust this WAL again.
                self._failed = f"fsync failed: {e}"
                raise Unavailable(f"WAL fsync failed: {e}", reason="wal_fsync") from e
            self.fsyncs += 1
            self._synced = target

    def done(self, pos: int) -> None:
        """The record at ``pos`` is applied to the head (or abandoned)."""
        with self._lock:
            self._unapplied.discard(pos)

    def safe_point(self) -> int:
        """Every record below this position is done: applied, or failed and never acknowledged."""
        with self._lock:
            return min(self._unapplied) if self._unapplied else self._written

    # -- checkpointing ---------------------------------------------------------------------------

    def roll(self) -> None:
        """Close the active segment (after an fsync) and start the next one, unless it is empty."""
        with self._sync_lock, self._lock:
            seg = self._active
            if seg is None or seg.size <= SEGMENT_HEADER_SIZE or self._failed:
                return
            os.fsync(seg.fd)
            new = self._create_segment(seg.end)  # if this fails, the old segment stays active
            os.close(seg.fd)
            seg.fd = None
            self._closed.append(seg)
            self._active = new
            self._written = self._synced = new.end

    def truncate(self, low_water: int) -> int:
        """Delete closed segments whose every record lies below ``low_water``; returns how many."""
        with self._lock:
            dead = [s for s in self._closed if s.end <= low_water]
            self._closed = [s for s in self._closed if s.end > low_water]
        for s in dead:
            s.path.unlink(missing_ok=True)
        if dead:
            fsync_dir(self.dir)
        return len(dead)

    def disk_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._closed) + (self._active.size if self._active else 0)

    def segment_count(self) -> int:
        with self._lock:
            return len(self._closed) + (1 if self._active else 0)

    def first_position(self) -> int:
        """The lowest position still on disk."""
        with self._lock:
            segs = self._closed + ([self._active] if self._active else [])
            return segs[0].base if segs else self._written

    def close(self) -> None:
        with self._sync_lock, self._lock:
            seg, self._active = self._active, None
            failed, self._failed = self._failed, self._failed or "closed"
            if seg is not None and seg.fd is not None:
                if not failed:
                    os.fsync(seg.fd)
                os.close(seg.fd)
                seg.fd = None
                self._closed.append(seg)
