"""``MemoryLogSource``: an in-memory ``LogSource`` for tests and benchmarks (not thread-safe).

Entries are appended per stream and sorted by time on first read (a stable sort: equal
times keep their written order). ``select`` merges the matching streams by time and cuts the
result into ``LOG_BATCH_SCHEMA`` tables of at most ``batch_rows`` rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.metrics.promql.model import Matcher
from kms.metrics.storage.labels import labels_text

from .logql.ast import LineFilter
from .logql.linefilter import filter_mask
from .source import LOG_BATCH_SCHEMA, Direction, QueryStats

__all__ = ["MemoryLogSource"]

Entry = tuple[int, str] | tuple[int, str, Mapping[str, str]]


@dataclass
class _Stream:
    labels: dict[str, str]
    text: str
    times: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    frozen: tuple[np.ndarray, pa.Array, pa.Array] | None = None

    def arrays(self) -> tuple[np.ndarray, pa.Array, pa.Array]:
        """(times int64, lines, metadata), sorted by time; converted to Arrow once per write."""
        if self.frozen is None:
            t = np.asarray(self.times, dtype=np.int64)
            order = np.argsort(t, kind="stable")
            lines = pa.array(self.lines, type=pa.string()).take(pa.array(order))
            meta = pa.array(self.metadata, type=pa.string()).take(pa.array(order))
            self.frozen = (t[order], lines, meta)
        return self.frozen


class MemoryLogSource:
    """Streams held in memory; see ``LogSource`` for the contract."""

    def __init__(self, batch_rows: int = 16_384) -> None:
        self.batch_rows = batch_rows
        self._streams: dict[str, _Stream] = {}

    def add_stream(self, labels: Mapping[str, str], entries: Iterable[Entry]) -> None:
        """Append entries ``(time_ns, line)`` or ``(time_ns, line, metadata)`` to the stream
        with index labels ``labels`` (created on first use)."""
        text = labels_text(sorted(labels.items()))
        s = self._streams.get(text)
        if s is None:
            s = self._streams[text] = _Stream(dict(labels), text)
        s.frozen = None
        for e in entries:
            s.times.append(int(e[0]))
            s.lines.append(e[1])
            meta = e[2] if len(e) > 2 else {}  # type: ignore[misc]
            s.metadata.append(labels_text(sorted(meta.items())))

    def _matching(self, matchers: list[Matcher]) -> list[_Stream]:
        return [s for s in self._streams.values() if all(m.matches(s.labels.get(m.name, "")) for m in matchers)]

    def streams(self, matchers: list[Matcher], start_ns: int, end_ns: int) -> list[dict[str, str]]:
        out = []
        for s in self._matching(matchers):
            t = s.arrays()[0]
            if np.searchsorted(t, end_ns, "left") > np.searchsorted(t, start_ns, "left"):
                out.append(dict(s.labels))
        return out

    def select(
        self, matchers: list[Matcher], start_ns: int, end_ns: int, direction: Direction = "backward", *,
        line_filters: Sequence[LineFilter] = (), stats: QueryStats | None = None,
    ) -> Iterator[pa.Table]:
        """``LogSource.select``, applying ``line_filters`` to each stream's slice before the
        merge, as the store does; the lines and bytes read go to ``stats``."""
        parts_t, parts_line, parts_meta, parts_stream = [], [], [], []
        texts: list[str] = []
        for s in self._matching(matchers):
            t, lines, meta = s.arrays()
            lo, hi = np.searchsorted(t, start_ns, "left"), np.searchsorted(t, end_ns, "left")
            if hi <= lo:
                continue
            t, lines, meta = t[lo:hi], lines[lo:hi], meta[lo:hi]
            if stats is not None:
                stats.lines_processed += len(lines)
                stats.bytes_processed += int(pc.sum(pc.binary_length(lines)).as_py() or 0)
            for f in line_filters:
                keep = filter_mask(f, lines)
                t, lines, meta = t[keep.to_numpy(zero_copy_only=False)], lines.filter(keep), meta.filter(keep)
            if len(t):
                parts_t.append(t)
                parts_line.append(lines)
                parts_meta.append(meta)
                parts_stream.append(np.full(len(t), len(texts), dtype=np.int32))
                texts.append(s.text)
        if not parts_t:
            return
        t = np.concatenate(parts_t)
        order = np.argsort(t, kind="stable")
        if direction == "backward":
            # newest first; equal times in reversed written order
            order = order[::-1]
        t = t[order]
        stream = np.concatenate(parts_stream)[order]
        lines_all = pa.concat_arrays(parts_line)
        meta_all = pa.concat_arrays(parts_meta)
        dictionary = pa.array(texts, type=pa.string())
        for a in range(0, len(t), self.batch_rows):
            b = a + self.batch_rows
            take = pa.array(order[a:b])
            yield pa.table(
                [
                    pa.array(t[a:b], type=pa.int64()),
                    pa.DictionaryArray.from_arrays(pa.array(stream[a:b], type=pa.int32()), dictionary),
                    lines_all.take(take),
                    meta_all.take(take),
                ],
                schema=LOG_BATCH_SCHEMA,
            )
