"""Per-tenant cumulative counters and classic histograms, collected as one ``SampleBatch``.

Semantics follow Tempo's generator registry:

* series live in memory and are cumulative from their creation; :meth:`Registry.collect` writes
  every live series at one timestamp (ms), strictly increasing from collection to collection so
  the in-order sample admission of the metrics store accepts every sample;
* the first collection of a new series writes a 0 first, at the end of the previous minute, so
  that ``rate()`` counts the series' first increments (null -> x would be lost); ``_sum``
  starts with its value, as in Tempo;
* a series not updated for ``stale_ms`` is dropped, with a staleness marker at the collection
  time, so instant queries stop returning it at once;
* histograms keep, per bucket, the trace id of the last observation that fell into it; it is
  written as an exemplar (label ``traceID``) at the next collection and then forgotten.

Storage is columnar: a family's series are rows of numpy arrays (values, last update, new flag;
histograms a row of bucket counts), so a batch of spans updates every touched series with a few
vector operations. Series keys are label tuples without ``__name__``, sorted, no empty values.

Locking: one lock per registry, taken by every update and by ``collect``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from kms.generator.names import TRACE_ID_LABEL, format_bound
from kms.metrics.samples import STALE_NAN, Exemplar, Labels, SampleBatch

__all__ = ["Registry", "Counter", "Histogram", "make_labels"]

_MINUTE_MS = 60_000


def make_labels(pairs: Sequence[tuple[str, str]]) -> Labels:
    """A series key: pairs sorted by name, empty values dropped (Prometheus has no empty labels)."""
    return tuple(sorted((k, v) for k, v in pairs if v != ""))


def _add_rows(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``target[rows] += values``, correct when a row repeats (``np.add.at``, ~10x slower, only then)."""
    if len(rows) < 2 or len(np.unique(rows)) == len(rows):
        target[rows] += values
    else:
        np.add.at(target, rows, values)


def _with(labels: Labels, **extra: str) -> Labels:
    return tuple(sorted(labels + tuple(extra.items())))


class _Rows:
    """Series keys -> dense row numbers, with reuse of the rows of dropped series."""

    def __init__(self) -> None:
        self.index: dict[Labels, int] = {}
        self.keys: list[Labels | None] = []
        self.free: list[int] = []
        self.updated = np.zeros(0, np.int64)  # ms of the last update, per row
        self.new = np.zeros(0, bool)  # not collected yet

    def rows(self, keys: Sequence[Labels], now_ms: int) -> np.ndarray:
        """The row of each key (new rows for new keys), all marked updated at ``now_ms``."""
        index = self.index
        out = np.empty(len(keys), np.int64)
        for i, k in enumerate(keys):
            r = index.get(k)
            if r is None:
                r = self._add(k)
            out[i] = r
        self.updated[out] = now_ms
        return out

    def _add(self, key: Labels) -> int:
        if self.free:
            r = self.free.pop()
            self.keys[r] = key
        else:
            r = len(self.keys)
            self.keys.append(key)
            if r >= len(self.updated):
                self._grow(max(64, 2 * len(self.updated)))
        self.index[key] = r
        self.new[r] = True
        self._reset(r)
        return r

    def _grow(self, size: int) -> None:
        self.updated = np.concatenate([self.updated, np.zeros(size - len(self.updated), np.int64)])
        self.new = np.concatenate([self.new, np.zeros(size - len(self.new), bool)])

    def _reset(self, r: int) -> None:
        raise NotImplementedError

    def drop(self, r: int) -> None:
        del self.index[self.keys[r]]
        self.keys[r] = None
        self.free.append(r)

    def live(self) -> list[int]:
        return [r for r, k in enumerate(self.keys) if k is not None]


class Counter(_Rows):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.values = np.zeros(0)
        self.labels: list[Labels] = []

    def _grow(self, size: int) -> None:
        super()._grow(size)
        self.values = np.concatenate([self.values, np.zeros(size - len(self.values))])

    def _reset(self, r: int) -> None:
        self.values[r] = 0.0
        full = _with(self.keys[r], __name__=self.name)
        if r < len(self.labels):
            self.labels[r] = full
        else:
            self.labels.append(full)

    def add(self, keys: Sequence[Labels], values: np.ndarray | Sequence[float], now_ms: int) -> None:
        rows = self.rows(keys, now_ms)  # first: it may grow (replace) the arrays
        _add_rows(self.values, rows, np.asarray(values, np.float64))


class Histogram(_Rows):
    """A classic histogram; ``bounds`` are the finite upper bounds, ``+Inf`` is appended; the
    same series can be written under alias names too."""

    def __init__(self, name: str, bounds: Sequence[float], aliases: Sequence[str] = ()):
        super().__init__()
        self.name = name
        self.names = (name, *aliases)
        self.bounds = np.array([*sorted(float(b) for b in bounds), np.inf])
        self._le = [format_bound(b) for b in self.bounds]
        nb = len(self.bounds)
        self.buckets = np.zeros((0, nb))  # per row and bucket, not cumulative (cumulated when written)
        self.sums = np.zeros(0)
        self.counts = np.zeros(0)
        self.exemplars: dict[tuple[int, int], tuple[str, float]] = {}  # (row, bucket) -> (trace id, value)
        self.labels: list[tuple[Labels, ...]] = []  # per row: count, sum, then one per bucket, per name

    def bucket_of(self, values: np.ndarray) -> np.ndarray:
        """Index of the bucket each value falls into (the first bound >= value)."""
        return np.searchsorted(self.bounds, values, side="left")

    def _grow(self, size: int) -> None:
        old = len(self.sums)
        super()._grow(size)
        self.buckets = np.concatenate([self.buckets, np.zeros((size - old, len(self.bounds)))])
        self.sums = np.concatenate([self.sums, np.zeros(size - old)])
        self.counts = np.concatenate([self.counts, np.zeros(size - old)])

    def _reset(self, r: int) -> None:
        self.buckets[r] = 0.0
        self.sums[r] = self.counts[r] = 0.0
        for b in range(len(self.bounds)):
            self.exemplars.pop((r, b), None)
        key = self.keys[r]
        full = tuple(lab for name in self.names for lab in (
            _with(key, __name__=name + "_count"), _with(key, __name__=name + "_sum"),
            *(_with(key, __name__=name + "_bucket", le=le) for le in self._le)))
        if r < len(self.labels):
            self.labels[r] = full
        else:
            self.labels.append(full)

    def add(self, keys: Sequence[Labels], per_bucket: np.ndarray, sums: np.ndarray, counts: np.ndarray, now_ms: int,
            exemplars: Sequence[tuple[int, int, str, float]] = ()) -> None:
        """Observations of many series at once: per key a row of bucket counts (not cumulative),
        their sum and count; exemplars as (key position, bucket, trace id hex, value), later ones
        winning."""
        rows = self.rows(keys, now_ms)
        _add_rows(self.buckets, rows, per_bucket)
        _add_rows(self.sums, rows, sums)
        _add_rows(self.counts, rows, counts)
        ex = self.exemplars
        rl = rows.tolist()
        for i, b, tid, v in exemplars:
            ex[(rl[i], b)] = (tid, v)


class _Out:
    """Accumulates the samples of one collection."""

    def __init__(self) -> None:
        self.series: list[Labels] = []
        self.idx: list[int] = []
        self.ts: list[int] = []
        self.values: list[float] = []
        self.exemplars: list[Exemplar] = []

    def add(self, labels: Labels, ts: int, value: float) -> int:
        i = len(self.series)
        self.series.append(labels)
        self.idx.append(i)
        self.ts.append(ts)
        self.values.append(value)
        return i

    def add_more(self, i: int, ts: int, value: float) -> None:
        self.idx.append(i)
        self.ts.append(ts)
        self.values.append(value)

    def batch(self) -> SampleBatch:
        return SampleBatch(self.series, np.array(self.idx, np.int32), np.array(self.ts, np.int64),
                           np.array(self.values, np.float64), self.exemplars)


class Registry:
    """The metrics of one tenant. ``stale_ms`` 0 keeps idle series forever."""

    def __init__(self, stale_ms: int = 15 * _MINUTE_MS):
        self.stale_ms = stale_ms
        self.lock = threading.Lock()
        self.counters: dict[str, Counter] = {}
        self.histograms: dict[str, Histogram] = {}
        self._last_ms = 0

    def counter(self, name: str) -> Counter:
        c = self.counters.get(name)
        if c is None:
            c = self.counters[name] = Counter(name)
        return c

    def histogram(self, name: str, bounds: Sequence[float], aliases: Sequence[str] = ()) -> Histogram:
        h = self.histograms.get(name)
        if h is None:
            h = self.histograms[name] = Histogram(name, bounds, aliases)
        return h

    def active_series(self) -> int:
        """Series written at each collection (a histogram series counts its buckets, sum, count)."""
        with self.lock:
            n = sum(len(c.index) for c in self.counters.values())
            return n + sum(len(h.index) * (len(h.bounds) + 2) * len(h.names) for h in self.histograms.values())

    def collect(self, now_ms: int) -> SampleBatch:
        """Every live series at one timestamp (> the previous collection's); idle series dropped
        with a staleness marker."""
        with self.lock:
            now_ms = max(int(now_ms), self._last_ms + 1)
            self._last_ms = now_ms
            init_ms = now_ms // _MINUTE_MS * _MINUTE_MS - 1
            stale_before = now_ms - self.stale_ms if self.stale_ms else None
            out = _Out()
            for c in self.counters.values():
                values = c.values.tolist()
                for r in c.live():
                    if stale_before is not None and c.updated[r] < stale_before:
                        out.add(c.labels[r], now_ms, STALE_NAN)
                        c.drop(r)
                    elif c.new[r]:
                        i = out.add(c.labels[r], init_ms, 0.0)
                        out.add_more(i, now_ms, values[r])
                        c.new[r] = False
                    else:
                        out.add(c.labels[r], now_ms, values[r])
            for h in self.histograms.values():
                self._collect_histogram(out, h, now_ms, init_ms, stale_before)
            return out.batch()

    @staticmethod
    def _collect_histogram(out: _Out, h: Histogram, now_ms: int, init_ms: int, stale_before: int | None) -> None:
        nb = len(h.bounds)
        per_name = nb + 2
        cumulative = np.cumsum(h.buckets, axis=1).tolist()
        sums, counts = h.sums.tolist(), h.counts.tolist()
        ex = h.exemplars
        for r in h.live():
            labels = h.labels[r]
            if stale_before is not None and h.updated[r] < stale_before:
                for lab in labels:
                    out.add(lab, now_ms, STALE_NAN)
                h.drop(r)
                continue
            new = bool(h.new[r])
            values = [counts[r], sums[r], *cumulative[r]]
            for j, lab in enumerate(labels):
                k = j % per_name
                if new and k != 1:  # _count and _bucket start at 0; _sum starts with its value
                    i = out.add(lab, init_ms, 0.0)
                    out.add_more(i, now_ms, values[k])
                else:
                    i = out.add(lab, now_ms, values[k])
                if k >= 2:
                    e = ex.get((r, k - 2))
                    if e is not None:
                        out.exemplars.append(Exemplar(i, ((TRACE_ID_LABEL, e[0]),), e[1], now_ms))
            h.new[r] = False
        ex.clear()
