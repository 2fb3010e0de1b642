"""``StoreLogSource``: ``kms.logs.source.LogSource`` over the store's ``logs`` signal, plus the
index queries of the Loki API (label names and values, series, stats, volume).

A read is two passes. The first reads only ``stream`` and ``time_ns`` in the range, matches the
selector once per distinct stream text and keeps the times of the matching rows. Those times
cut the range into windows; the second pass reads one window at a time (in the query's
direction) with ``stream`` pushed down as a filter, so row groups of other streams are skipped
by their statistics, sorts it by time and yields it in batches of ``WINDOW_ROWS``. A consumer
that stops early (``limit`` reached) never reads the remaining windows.

The first window holds ``WINDOW_ROWS`` entries (a ``limit`` query over recent data reads
little); the next ones ``MAX_WINDOW_ROWS`` (the memory bound of one window, ~100 MB of 100-byte
lines). Windows are large because a block is sorted by stream, then time: a row group of a busy
stream spans the block's whole time range, so every window overlapping a block reads that
block's matching row groups again (a full scan of 1M lines in one block: 31 windows of 32k
took 10 s, 3 windows 1.9 s).

``line_filters`` (the selector's leading line filters, pushed down by the engine) run on each
table as it is read (``linefilter.filter_mask``: a buffer-wide substring search), so only the
hits are sorted and yielded. A forward read with them (metric queries, which need the whole
range anyway) is one pass instead of two: every row group in the range is read once, with no
index pass and no windows (``count_over_time`` with a rare ``|=`` over 1M lines of
bench_logs_query.py: 0.94 s -> 0.50 s). Blocks of format 2 (``chunks``) answer it themselves:
only chunks of the selected streams whose trigram signatures may hold the filters' literals are
decompressed, each searched right after it is decompressed, and only the lines holding them
become Arrow strings (10M lines: 3.4-5.1 s -> 0.3-0.6 s; then 0.30 -> 0.26 s and 0.55 -> 0.47 s
server CPU for ``|=`` and ``|~ "a|b"``, of which ~0.12 s and ~0.2 s are zstd itself). Format-1 blocks are pruned by stream with the streams each block holds
(``streamset``, remembered per block). It falls back to the windows when more than
``MAX_WINDOW_ROWS`` entries pass. Backward reads (log queries with a ``limit``) keep the
windows, newest first, so they still stop early.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.logs.logql.ast import LineFilter
from kms.logs.logql.linefilter import filter_mask, required_literals
from kms.logs.recordids import joined
from kms.logs.schema import LOGS
from kms.logs.source import LOG_BATCH_SCHEMA, Direction, QueryStats
from kms.logs.storage.chunks import Literal, LogChunkReader, ReadCounter, exact_groups
from kms.logs.storage.streamset import streams_of_block
from kms.metrics.promql.model import Matcher
from kms.metrics.storage.labels import labels_text, parse_labels_text
from kms.storage import ScanRequest, Store
from kms.storage.head import scan_head

__all__ = ["StoreLogSource", "WINDOW_ROWS", "MAX_WINDOW_ROWS", "TENANT_LABEL", "window_bounds"]

#: Entries per window of the second pass, and at most per yielded batch (the contract asks for
#: batches of a few tens of thousands of rows).
WINDOW_ROWS = 32_768
MAX_WINDOW_ROWS = 1 << 19
#: Loki's label naming the tenant of each stream in a read of several tenants (``a|b``).
TENANT_LABEL = "__tenant_id__"


def _matches(labels: dict[str, str], matchers: list[Matcher]) -> bool:
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def window_bounds(times: np.ndarray, end_ns: int, direction: Direction) -> list[tuple[int, int]]:
    """``[lo, hi)`` windows over the sorted ``times`` of the matching entries, in ``direction``
    order, the first holding about ``WINDOW_ROWS`` entries and the next ones ``MAX_WINDOW_ROWS``.
    Bounds are entry times, so equal times never straddle a window."""
    n = len(times)
    if not n:
        return []
    cum, size, total = [], WINDOW_ROWS, 0
    while total < n:
        total += size
        cum.append(min(total, n))
        size = MAX_WINDOW_ROWS
    if direction == "forward":
        starts = sorted({int(times[0]), *(int(times[c]) for c in cum[:-1])})
    else:
        starts = sorted({int(times[0]), *(int(times[n - c]) for c in cum[:-1])})
    windows = list(zip(starts, [*starts[1:], end_ns], strict=True))
    return windows if direction == "forward" else windows[::-1]


class _Streams:
    """One tenant's stream texts: each distinct text parsed and matched once. ``extra`` labels
    (``__tenant_id__`` when several tenants are read together) are part of what the matchers
    see and of what is shown, never of what is stored."""

    def __init__(self, matcher_sets: list[list[Matcher]], extra: dict[str, str]):
        self.sets = matcher_sets
        self.extra = extra
        self.verdict: dict[str, bool] = {}
        self._shown: dict[str, str] = {}

    def labels(self, text: str) -> dict[str, str]:
        return {**parse_labels_text(text), **self.extra} if self.extra else parse_labels_text(text)

    def __call__(self, text: str) -> bool:
        v = self.verdict.get(text)
        if v is None:
            labels = self.labels(text)
            v = self.verdict[text] = not self.sets or any(_matches(labels, ms) for ms in self.sets)
        return v

    def shown(self, text: str) -> str:
        """The stream text as answered (with the extra labels)."""
        if not self.extra:
            return text
        out = self._shown.get(text)
        if out is None:
            out = self._shown[text] = labels_text(sorted(self.labels(text).items()))
        return out

    @property
    def matched(self) -> list[str]:
        return sorted(t for t, v in self.verdict.items() if v)


class StoreLogSource:
    """Reads the ``logs`` signal of ``tenants`` together. Times are unix ns; ranges are
    ``start_ns <= t < end_ns``. With several tenants every stream carries Loki's
    ``__tenant_id__`` label, so equal streams of two tenants stay apart and can be selected."""

    def __init__(self, store: Store, tenants: list[str]):
        self.store = store
        self.tenants = list(tenants)

    def _scan(self, tenant: str, start_ns: int, end_ns: int, columns, flt=None,
              selective: bool = True) -> Iterator[pa.Table]:
        if end_ns <= start_ns:
            return iter(())
        return self.store.scan(ScanRequest(tenant, LOGS.name, start_ns, end_ns - 1, filter=flt, columns=columns,
                                           hints={"selective": selective}))

    def _index(self, matcher_sets: list[list[Matcher]], start_ns: int, end_ns: int, want_times: bool):
        """({tenant: its streams with verdicts}, sorted times of the matching rows or None)."""
        federated = len(self.tenants) > 1
        per: dict[str, _Streams] = {}
        times: list[np.ndarray] = []
        for tenant in self.tenants:
            m = per[tenant] = _Streams(matcher_sets, {TENANT_LABEL: tenant} if federated else {})
            for t in self._scan(tenant, start_ns, end_ns, ("stream",)):
                for sc, tc in zip(t.column("stream").chunks, t.column("time_ns").chunks, strict=True):
                    if not len(sc):
                        continue
                    d = sc.dictionary_encode()
                    keep = np.fromiter((m(s) for s in d.dictionary.to_pylist()), dtype=bool, count=len(d.dictionary))
                    if not want_times or not keep.any():
                        continue
                    hit = keep[d.indices.to_numpy(zero_copy_only=False)]
                    times.append(tc.to_numpy(zero_copy_only=False)[hit])
        if not want_times:
            return per, None
        return per, (np.sort(np.concatenate(times)) if times else np.empty(0, np.int64))

    # -- LogSource --
    def select(
        self, matchers: list[Matcher], start_ns: int, end_ns: int, direction: Direction = "backward", *,
        line_filters: Sequence[LineFilter] = (), stats: QueryStats | None = None, lines: bool = True,
    ) -> Iterator[pa.Table]:
        if line_filters and direction == "forward":
            hits = self._filtered(list(matchers), start_ns, end_ns, tuple(line_filters), stats, lines)
            if hits is not None:
                yield from _sorted_batches(hits, direction)
                return
        per, times = self._index([list(matchers)], start_ns, end_ns, want_times=True)
        if not len(times):
            return
        # Always filtered: streams written between the passes must not slip in. When the selector
        # picked every stream, rows are read whole and then filtered (no narrow probe read first).
        reads = [(tenant, m, pc.field("stream").isin(pa.array(m.matched, pa.string())), len(m.matched) < len(m.verdict))
                 for tenant, m in per.items() if m.matched]
        for lo, hi in window_bounds(times, end_ns, direction):
            parts = self._window(reads, lo, hi, line_filters, stats)
            if parts:
                yield from _sorted_batches(parts, direction)

    def _filtered(self, matchers: list[Matcher], start_ns: int, end_ns: int, filters: tuple[LineFilter, ...],
                  stats: QueryStats | None, lines: bool = True) -> list[pa.Table] | None:
        """The entries of the selected streams passing ``filters``, in one read of the range;
        None when they are more than ``MAX_WINDOW_ROWS`` (the caller reads windows instead).
        Adds the lines and bytes read to ``stats`` (the engine sees only the hits).

        Blocks of format 2 give only the chunks that may hold the filters' literals (their
        trigram signatures, then a search of each frame); others are read whole. Without
        ``lines``, when the literals decide the filters (``exact_groups``), blocks of format 2
        give exactly the passing entries, without their text."""
        federated = len(self.tenants) > 1
        groups: list[list[Literal]] = []
        for f in filters:
            lits = required_literals(f)
            if lits:
                groups.append([Literal(text, cs) for text, cs in lits])
        parts: list[pa.Table] = []
        counter = ReadCounter()
        kept = 0
        last = end_ns - 1  # inclusive
        when = (pc.field("time_ns") >= pa.scalar(start_ns, pa.int64())) & (pc.field("time_ns") <= pa.scalar(last, pa.int64()))
        columns = ["time_ns", "stream", "line", "metadata", "ids"]
        # the chunks' search decides every filter: their hits need no text, nor filtering again
        textless = not lines and len(groups) == len(filters) and exact_groups(groups)
        for tenant in self.tenants:
            m = _Streams([matchers], {TENANT_LABEL: tenant} if federated else {})
            head, blocks = self.store.snapshot(tenant, LOGS.name)
            for b in blocks:
                if not b.meta.overlaps(start_ns, last):
                    continue
                reader = b.reader()
                if isinstance(reader, LogChunkReader):
                    tables = reader.select_lines(m, start_ns, last, groups, counter, lines=not textless)
                    matched = True
                else:
                    known = streams_of_block(tenant, b)
                    wanted = [x for x in known if m(x)]
                    if not wanted:
                        continue
                    flt = when if len(wanted) == len(known) else when & pc.field("stream").isin(pa.array(wanted, pa.string()))
                    tables = reader.scan(flt, columns, False)
                    matched = False
                for t in tables:
                    kept = _keep_hits(t, m, () if matched and textless else filters, matched, counter, parts, kept)
                    if kept > MAX_WINDOW_ROWS:
                        return None
            t = scan_head(head, start_ns, last, None, columns)
            if t is not None:
                kept = _keep_hits(t, m, filters, False, counter, parts, kept)
                if kept > MAX_WINDOW_ROWS:
                    return None
        if stats is not None:
            stats.lines_processed += counter.lines
            stats.bytes_processed += counter.bytes
        return parts

    def _window(self, reads, lo: int, hi: int, line_filters: Sequence[LineFilter] = (),
                stats: QueryStats | None = None) -> list[pa.Table]:
        parts = []
        for tenant, m, flt, selective in reads:
            for t in self._scan(tenant, lo, hi, ("stream", "line", "metadata", "ids"), flt, selective):
                if stats is not None:
                    stats.lines_processed += t.num_rows
                    stats.bytes_processed += int(pc.sum(pc.binary_length(t.column("line"))).as_py() or 0)
                for f in line_filters:
                    if not t.num_rows:
                        break
                    t = t.filter(filter_mask(f, t.column("line").combine_chunks()))
                if t.num_rows:
                    parts.append(_shown(joined(t), m))
        return parts

    def streams(self, matchers: list[Matcher], start_ns: int, end_ns: int) -> list[dict[str, str]]:
        return self.series([list(matchers)] if matchers else [], start_ns, end_ns)

    # -- index queries of the API --
    def series(self, matcher_sets: list[list[Matcher]], start_ns: int, end_ns: int) -> list[dict[str, str]]:
        """Label sets of the streams matching any of ``matcher_sets`` (empty = all), sorted."""
        per, _ = self._index(matcher_sets, start_ns, end_ns, want_times=False)
        found = {m.shown(t): m for m in per.values() for t in m.matched}
        return [parse_labels_text(t) for t in sorted(found)]

    def label_names(self, matcher_sets: list[list[Matcher]], start_ns: int, end_ns: int) -> list[str]:
        return sorted({k for ls in self.series(matcher_sets, start_ns, end_ns) for k in ls})

    def label_values(self, name: str, matcher_sets: list[list[Matcher]], start_ns: int, end_ns: int) -> list[str]:
        return sorted({ls[name] for ls in self.series(matcher_sets, start_ns, end_ns) if ls.get(name)})

    def stream_stats(self, matchers: list[Matcher], start_ns: int, end_ns: int,
                     step_ns: int = 0) -> dict[tuple[str, int], tuple[int, int]]:
        """(stream text, bucket start ns) -> (entries, line bytes) of the matching streams;
        one bucket (key ``start_ns``) when ``step_ns`` is 0."""
        federated = len(self.tenants) > 1
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for tenant in self.tenants:
            m = _Streams([list(matchers)] if matchers else [], {TENANT_LABEL: tenant} if federated else {})
            for t in self._scan(tenant, start_ns, end_ns, ("stream", "line")):
                for sc, tc, lc in zip(t.column("stream").chunks, t.column("time_ns").chunks, t.column("line").chunks,
                                      strict=True):
                    if len(sc):
                        self._add_stats(out, m, sc, tc, lc, start_ns, step_ns)
        return out

    @staticmethod
    def _add_stats(out, m: _Streams, sc, tc, lc, start_ns: int, step_ns: int) -> None:
        d = sc.dictionary_encode()
        texts = d.dictionary.to_pylist()
        keep = np.fromiter((m(s) for s in texts), dtype=bool, count=len(texts))
        idx = d.indices.to_numpy(zero_copy_only=False)
        hit = keep[idx]
        if not hit.any():
            return
        idx = idx[hit]
        nbytes = pc.binary_length(lc).to_numpy(zero_copy_only=False)[hit]
        ts = tc.to_numpy(zero_copy_only=False)[hit]
        bucket = start_ns + (ts - start_ns) // step_ns * step_ns if step_ns else np.full(len(ts), start_ns)
        uniq, inv = np.unique(np.stack([idx.astype(np.int64), bucket]), axis=1, return_inverse=True)
        inv = inv.reshape(-1)
        counts = np.bincount(inv)
        sizes = np.bincount(inv, weights=nbytes)
        for j in range(uniq.shape[1]):
            k = (m.shown(texts[int(uniq[0, j])]), int(uniq[1, j]))
            e, b = out.get(k, (0, 0))
            out[k] = (e + int(counts[j]), b + int(sizes[j]))


def _keep_hits(t: pa.Table, m: _Streams, filters: Sequence[LineFilter], matched: bool, counter: ReadCounter,
               parts: list[pa.Table], kept: int) -> int:
    """Appends the rows of ``t`` passing ``filters`` (of the streams ``m`` selects, unless
    ``matched``: already selected and counted) to ``parts``; returns ``kept`` plus their number."""
    if not t.num_rows:
        return kept
    t = t.combine_chunks()
    if not matched:
        d = pc.dictionary_encode(t.column("stream").chunk(0))
        keep = np.fromiter((m(x) for x in d.dictionary.to_pylist()), dtype=bool, count=len(d.dictionary))
        if not keep.any():
            return kept
        if not keep.all():
            t = t.filter(pa.array(keep[d.indices.to_numpy(zero_copy_only=False)]))
        counter.lines += t.num_rows
        counter.bytes += int(pc.sum(pc.binary_length(t.column("line"))).as_py() or 0)
    for f in filters:
        if not t.num_rows:
            break
        t = t.filter(filter_mask(f, t.column("line").combine_chunks()))
    if t.num_rows:
        parts.append(_shown(joined(t), m))  # record ids into the texts of the hits only
    return kept + t.num_rows


def _shown(t: pa.Table, m: _Streams) -> pa.Table:
    """``t`` with its stream texts as answered (the extra labels of a federated read)."""
    if not m.extra:
        return t
    d = pc.dictionary_encode(t.column("stream").combine_chunks())
    shown = pa.array([m.shown(x) for x in d.dictionary.to_pylist()], pa.string())
    return t.set_column(t.schema.get_field_index("stream"), "stream", shown.take(d.indices))


def _sorted_batches(parts: list[pa.Table], direction: Direction) -> Iterator[pa.Table]:
    """``LOG_BATCH_SCHEMA`` batches of at most ``WINDOW_ROWS`` rows of ``parts`` in time order."""
    if not parts:
        return
    # One chunk per column: take() over many chunks is several times slower.
    t = pa.concat_tables(parts).combine_chunks()
    times = t.column("time_ns").to_numpy()
    order = np.argsort(times, kind="stable")  # equal times keep the read order
    if direction == "backward":
        order = order[::-1]
    stream_type = LOG_BATCH_SCHEMA.field("stream").type
    for off in range(0, len(order), WINDOW_ROWS):
        part = t.take(pa.array(order[off:off + WINDOW_ROWS]))
        yield pa.Table.from_arrays(
            [part.column("time_ns"), pc.dictionary_encode(part.column("stream")).cast(stream_type),
             part.column("line"), part.column("metadata")],
            schema=LOG_BATCH_SCHEMA,
        ).combine_chunks()
