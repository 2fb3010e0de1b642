"""A durable first-in first-out queue on local disk: what the agent has acknowledged to its
senders waits here until the central stack has taken it, across central outages and agent
restarts.

Records are appended to numbered segment files (``<n>.seg``) and fsynced before ``append``
returns. A record is ``length u32 | crc32 u32 | body`` with body ``kind u8 | tenant length u8 |
tenant | payload``. The read position (segment, offset) is kept in ``cursor`` and advanced by
``ack`` once a record was delivered; fully read segments are deleted. A torn record at the end
of the newest segment (a crash mid-append, never acknowledged) is cut off at open.

Bound: when the segments exceed ``max_bytes``, the oldest whole segments are dropped (the
oldest data goes first, so the newest keeps flowing) and counted in ``dropped_records``.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DiskQueue", "Record"]

log = logging.getLogger("kms.agent")

_HEAD = struct.Struct("<II")  # length of body, crc32 of body
SEGMENT_BYTES = 16 << 20


@dataclass(frozen=True)
class Record:
    segment: int
    offset: int
    end: int  # offset of the next record
    kind: str
    tenant: str
    payload: bytes


class DiskQueue:
    def __init__(self, directory: Path, max_bytes: int = 1 << 30, segment_bytes: int = SEGMENT_BYTES):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dropped_records = 0
        self.cond = threading.Condition()
        self._closed = False
        self._sizes: dict[int, int] = {}  # segment -> bytes
        self._read_seg, self._read_off = self._load_cursor()
        self._pending = 0  # records not yet acknowledged (counted at open, then kept up to date)
        for seg in self._segments():
            self._sizes[seg] = self._check_segment(seg)
        if self._read_seg not in self._sizes and self._sizes:
            self._read_seg, self._read_off = min(self._sizes), 0
        self._pending = self._count_from(self._read_seg, self._read_off)
        self._write_seg = (max(self._sizes) + 1) if self._sizes else max(self._read_seg, 1)
        self._writer = None

    # -- files --
    def _path(self, seg: int) -> Path:
        return self.dir / f"{seg:010d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg"))

    def _load_cursor(self) -> tuple[int, int]:
        try:
            doc = json.loads((self.dir / "cursor").read_text())
            return int(doc["segment"]), int(doc["offset"])
        except (OSError, ValueError, KeyError):
            return 1, 0

    def _save_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(json.dumps({"segment": self._read_seg, "offset": self._read_off}))
        os.replace(tmp, self.dir / "cursor")

    def _scan(self, seg: int, start: int = 0):
        """(offset, end, body) of each whole, intact record of a segment from ``start``."""
        data = self._path(seg).read_bytes()
        off = start
        while off + _HEAD.size <= len(data):
            n, crc = _HEAD.unpack_from(data, off)
            body = data[off + _HEAD.size: off + _HEAD.size + n]
            if len(body) < n or zlib.crc32(body) != crc:
                return
            yield off, off + _HEAD.size + n, body
            off += _HEAD.size + n

    def _read_at(self, seg: int, off: int) -> tuple[int, bytes] | None:
        """(end, body) of the record at ``off``, reading just that record; None past the end."""
        if off >= self._sizes.get(seg, 0):
            return None
        with open(self._path(seg), "rb") as f:
            f.seek(off)
            n, crc = _HEAD.unpack(f.read(_HEAD.size))
            body = f.read(n)
        if len(body) < n or zlib.crc32(body) != crc:
            raise OSError(f"queue segment {seg}: corrupt record at byte {off}")
        return off + _HEAD.size + n, body

    def _check_segment(self, seg: int) -> int:
        """Cut a torn tail (a crash mid-append); the segment's intact length."""
        end = 0
        for _, e, _ in self._scan(seg):
            end = e
        if end != self._path(seg).stat().st_size:
            log.warning("queue segment %s: cutting a torn record at byte %d", self._path(seg).name, end)
            with open(self._path(seg), "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        return end

    def _count_from(self, seg: int, off: int) -> int:
        return sum(sum(1 for _ in self._scan(s, off if s == seg else 0)) for s in sorted(self._sizes) if s >= seg)

    # -- writing --
    def append(self, items: list[tuple[str, str, bytes]]) -> None:
        """Append (kind, tenant, payload) records durably (one fsync for all of them)."""
        if not items:
            return
        buf = bytearray()
        for kind, tenant, payload in items:
            t = tenant.encode()
            body = bytes([ord(kind), len(t)]) + t + payload
            buf += _HEAD.pack(len(body), zlib.crc32(body)) + body
        with self.cond:
            if self._closed:
                raise RuntimeError("queue closed")
            if self._writer is None or self._sizes.get(self._write_seg, 0) >= self.segment_bytes:
                self._roll()
            self._writer.write(buf)
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._sizes[self._write_seg] = self._sizes.get(self._write_seg, 0) + len(buf)
            self._pending += len(items)
            self._enforce_bound()
            self.cond.notify_all()

    def _roll(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._write_seg += 1
        self._writer = open(self._path(self._write_seg), "ab")  # noqa: SIM115 - kept open for appends
        self._sizes.setdefault(self._write_seg, 0)
        fd = os.open(self.dir, os.O_RDONLY)  # the new file's directory entry is durable too
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _enforce_bound(self) -> None:
        while sum(self._sizes.values()) > self.max_bytes and len(self._sizes) > 1:
            oldest = min(self._sizes)
            if oldest == self._write_seg:
                return
            lost = sum(1 for _ in self._scan(oldest, self._read_off if oldest == self._read_seg else 0))
            if oldest >= self._read_seg:
                self.dropped_records += lost
                self._pending -= lost
                log.warning("queue over %d bytes: dropped the oldest %d records (segment %d)",
                            self.max_bytes, lost, oldest)
            self._delete(oldest)
            if self._read_seg <= oldest:
                self._read_seg, self._read_off = min(self._sizes), 0
                self._save_cursor()

    def _delete(self, seg: int) -> None:
        self._sizes.pop(seg, None)
        self._path(seg).unlink(missing_ok=True)

    # -- reading --
    def peek(self, timeout_s: float | None = None) -> Record | None:
        """The oldest unacknowledged record, waiting up to ``timeout_s`` for one (None: none)."""
        with self.cond:
            if not self._pending and not self.cond.wait_for(lambda: self._pending or self._closed, timeout_s):
                return None
            while self._pending:
                if self._read_seg not in self._sizes:
                    later = [s for s in self._sizes if s > self._read_seg]
                    if not later:
                        return None
                    self._read_seg, self._read_off = min(later), 0
                    continue
                got = self._read_at(self._read_seg, self._read_off)
                if got is not None:
                    end, body = got
                    tl = body[1]
                    return Record(self._read_seg, self._read_off, end, chr(body[0]), body[2:2 + tl].decode(),
                                  body[2 + tl:])
                if self._read_seg == self._write_seg:
                    return None
                self._delete(self._read_seg)  # fully read
                self._read_seg, self._read_off = self._read_seg + 1, 0
            return None

    def ack(self, rec: Record) -> None:
        """``rec`` was delivered: move past it (persisted), deleting a segment once read."""
        with self.cond:
            if (rec.segment, rec.offset) != (self._read_seg, self._read_off):
                return  # dropped by the bound meanwhile
            self._read_off = rec.end
            self._pending -= 1
            if self._read_off >= self._sizes.get(self._read_seg, 0) and self._read_seg != self._write_seg:
                self._delete(self._read_seg)
                later = [s for s in self._sizes if s > self._read_seg]
                self._read_seg, self._read_off = (min(later) if later else self._read_seg + 1), 0
            self._save_cursor()

    def pending(self) -> int:
        with self.cond:
            return self._pending

    def bytes(self) -> int:
        with self.cond:
            return sum(self._sizes.values())

    def close(self) -> None:
        with self.cond:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self.cond.notify_all()
