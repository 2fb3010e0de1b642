"""Tailing log files into log lines, the Promtail/filelog role: glob patterns re-expanded every
poll, rotation by rename (the old file is read to its end first) and by truncation (copytruncate),
and positions checkpointed per file (inode + offset) only after the lines were handed over, so
an agent restart resumes where it stopped without losing or repeating a line. A file rotated
while the agent was down is found again by its inode in the same directory and read to its end.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FileTailer", "LogLine"]

log = logging.getLogger("kms.agent")

MAX_READ = 4 << 20  # bytes read from one file per poll: one busy file cannot starve the others
MAX_LINE = 256 << 10  # a "line" longer than this is cut (Loki's default max_line_size)


@dataclass(frozen=True)
class LogLine:
    ts_ns: int  # when it was read
    path: str
    line: str
    time_ns: int = 0  # when it was written, if the line says (a container runtime's prefix)
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass
class _File:
    path: str
    inode: int
    handle: object
    offset: int
    partial: bytes = b""
    draining: bool = False  # rotated away: read to its end, then close


@dataclass
class FileTailer:
    patterns: list[str]
    positions_path: Path
    sink: Callable[[list[LogLine]], None]  # must make the lines durable before returning
    poll_s: float = 0.25
    start_at_end: bool = False  # files found at the first poll without a position: skip what they hold
    _files: dict[str, _File] = field(default_factory=dict)
    _draining: list[_File] = field(default_factory=list)
    _positions: dict[str, dict] = field(default_factory=dict)
    _first: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        try:
            self._positions = json.loads(Path(self.positions_path).read_text())
        except (OSError, ValueError):
            self._positions = {}

    # -- one poll --
    def poll(self) -> int:
        """Read what is new in every file; returns the lines handed over."""
        paths = sorted({p for pat in self.patterns for p in glob.glob(pat) if os.path.isfile(p)})
        for path in paths:
            self._track(path)
        for path in list(self._files):
            if path not in paths:  # deleted or renamed away and not matched any more: finish it
                self._draining.append(self._files.pop(path))
                self._draining[-1].draining = True
        out: list[LogLine] = []
        moved: list[tuple[_File, int]] = []
        for f in [*self._draining, *self._files.values()]:
            lines, new_offset = self._read(f)
            out += lines
            moved.append((f, new_offset))
        self._first = False
        if out:
            self.sink(out)  # durable now: positions may move past these lines
        changed = False
        for f, off in moved:
            if off != f.offset or f.path not in self._positions:
                changed = True
            f.offset = off
            if not f.draining:
                self._positions[f.path] = {"inode": f.inode, "offset": off}
        finished = [f for f in self._draining if not f.partial and f.offset >= os.fstat(f.handle.fileno()).st_size]
        for f in finished:
            f.handle.close()
            self._draining.remove(f)
        if changed:
            self._save()
        return len(out)

    def _track(self, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        f = self._files.get(path)
        if f is not None and f.inode == st.st_ino:
            if st.st_size < f.offset:  # truncated in place (copytruncate): start over
                log.info("%s was truncated; reading it from the start", path)
                f.offset, f.partial = 0, b""
            return
        if f is not None:  # rotated: the path is a new file now; finish the old one first
            f.draining = True
            self._draining.append(f)
        pos = self._positions.get(path)
        offset = 0
        if pos and pos.get("inode") == st.st_ino:
            offset = min(int(pos["offset"]), st.st_size)
        elif pos and f is None:  # first sight since a restart, and the file changed meanwhile
            self._resume_rotated(path, pos)
        elif self._first and self.start_at_end:
            offset = st.st_size
        try:
            handle = open(path, "rb")  # noqa: SIM115 - kept open to follow the file through renames
        except OSError:
            return
        self._files[path] = _File(path, st.st_ino, handle, offset)

    def _resume_rotated(self, path: str, pos: dict) -> None:
        """The file we were reading was rotated while we were away: find it by inode and finish it."""
        d = os.path.dirname(path) or "."
        for name in os.listdir(d):
            p = os.path.join(d, name)
            try:
                if os.stat(p).st_ino == pos.get("inode") and os.path.isfile(p):
                    handle = open(p, "rb")  # noqa: SIM115
                    self._draining.append(_File(path, pos["inode"], handle, int(pos["offset"]), draining=True))
                    log.info("%s was rotated to %s while stopped; reading the rest of it", path, p)
                    return
            except OSError:
                continue

    def _read(self, f: _File) -> tuple[list[LogLine], int]:
        """New whole lines of ``f`` and the offset after them; an unfinished last line waits in
        ``f.partial`` (its bytes are re-read after a restart, so the position stays before it)."""
        f.handle.seek(f.offset + len(f.partial))
        data = f.handle.read(MAX_READ)
        buf = f.partial + data
        consumed = buf.rfind(b"\n") + 1
        chunks = buf[:consumed].split(b"\n")[:-1]
        rest = buf[consumed:]
        if rest and ((f.draining and not data) or len(rest) > MAX_LINE):
            chunks.append(rest)  # a rotated file's last line without newline, or an endless line
            consumed, rest = len(buf), b""
        f.partial = rest
        now = time.time_ns()
        lines = [LogLine(now, f.path, c[:MAX_LINE].decode("utf-8", "replace").rstrip("\r")) for c in chunks]
        return lines, f.offset + consumed

    def _save(self) -> None:
        tmp = Path(str(self.positions_path) + ".tmp")
        tmp.write_text(json.dumps(self._positions, sort_keys=True))
        os.replace(tmp, self.positions_path)

    # -- running --
    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - one bad poll must not end tailing
                log.exception("tailing log files")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kms-agent-tail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.poll()  # what was written until now
        except Exception:  # noqa: BLE001
            log.exception("tailing log files")
        for f in [*self._draining, *self._files.values()]:
            f.handle.close()
