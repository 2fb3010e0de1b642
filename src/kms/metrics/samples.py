"""The columnar sample batch that every metrics ingest path produces.

Remote write (1.0/2.0) and OTLP translation both end in a :class:`SampleBatch`: the distinct
series of the request (each a label set), then one row per float sample in three parallel numpy
arrays (series index, timestamp in **milliseconds** since the epoch, value). Exemplars and
metadata ride along as small lists. Data the decoder refused without failing the whole request
(e.g. a malformed native histogram) is counted in ``rejected`` by reason, with a few example
messages in ``errors``. Native-histogram samples ride along in ``histograms`` as (series index,
timestamp in ms, ``FloatHistogram``): they are few, and stored in a signal of their own.

Invariants (checked by :meth:`SampleBatch.check`):

* every label set is a tuple of ``(name, value)`` pairs sorted by name, names unique, and it
  contains ``__name__``; empty values never appear (an empty value means "no such label");
* ``series_idx``, ``ts_ms`` and ``values`` have the same length; ``series_idx`` is int32 and
  indexes ``series``; samples keep the request's order (not sorted by time);
* the staleness marker is the NaN with bit pattern ``0x7ff0000000000002`` (:data:`STALE_NAN`),
  kept bit-exact; test for it with :func:`is_stale`, never with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "STALE_NAN",
    "STALE_NAN_BITS",
    "METRIC_TYPES",
    "Labels",
    "Exemplar",
    "Metadata",
    "SampleBatch",
    "SeriesRefs",
    "BatchBuilder",
    "is_stale",
]

Labels = tuple[tuple[str, str], ...]

#: Prometheus's staleness marker (``value.StaleNaN``): a signalling NaN with this exact payload.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])

#: Metric types as Prometheus's ``/api/v1/metadata`` spells them (index = prompb MetricType).
METRIC_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")

#: At most this many example messages are kept per batch in ``errors``.
MAX_ERROR_MESSAGES = 10


def is_stale(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the samples that are staleness markers (bit-exact comparison)."""
    return np.asarray(values, dtype=np.float64).view(np.uint64) == STALE_NAN_BITS


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One exemplar attached to ``series[series]`` (labels sorted, e.g. ``trace_id``/``span_id``)."""

    series: int
    labels: Labels
    value: float
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Metadata:
    """Metric family metadata; ``type`` is one of :data:`METRIC_TYPES`."""

    family: str
    type: str
    help: str = ""
    unit: str = ""


class SeriesRefs:
    """What a store's series table found for one list of label sets, kept by a producer that
    sends the same list again (a scrape cache sends its last batch's list while a target's lines
    stay the same): ``owner`` (the table, by identity), the refs and the samples table's columns
    of the list. A joined batch's memo hands what it is given to its ``parts``' memos
    ``(memo, start, stop)``. Filled and read by the one thread that stores the batches."""

    __slots__ = ("owner", "refs", "columns", "parts")

    def __init__(self, parts: tuple[tuple[SeriesRefs, int, int], ...] = ()):
        self.owner: object = None
        self.refs: np.ndarray | None = None
        self.columns: tuple | None = None
        self.parts = parts

    def found(self, owner: object, refs: np.ndarray, columns: tuple | None = None) -> None:
        self.owner, self.refs, self.columns = owner, refs, columns
        for memo, lo, hi in self.parts:
            memo.found(owner, refs[lo:hi], None if columns is None else tuple(c.slice(lo, hi - lo) for c in columns))

    @staticmethod
    def joined(memos: list[SeriesRefs | None], sizes: list[int]) -> SeriesRefs:
        """The memo of batches joined in this order (``sizes``: their series counts)."""
        parts, lo = [], 0
        for memo, n in zip(memos, sizes, strict=True):
            if memo is not None:
                parts.append((memo, lo, lo + n))
            lo += n
        out = SeriesRefs(tuple(parts))
        first = memos[0] if memos else None
        if first is not None and all(m is not None and m.owner is first.owner and m.refs is not None for m in memos):
            out.owner, out.refs = first.owner, np.concatenate([m.refs for m in memos])
        return out


@dataclass
class SampleBatch:
    series: list[Labels]
    series_idx: np.ndarray  # int32, one per sample
    ts_ms: np.ndarray  # int64, one per sample, ms since the epoch
    values: np.ndarray  # float64, one per sample
    exemplars: list[Exemplar] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)
    #: native-histogram samples: (series index, ts_ms, nativehist.FloatHistogram)
    histograms: list[tuple[int, int, object]] = field(default_factory=list)
    #: reason -> number of samples / data points refused without failing the request
    rejected: dict[str, int] = field(default_factory=dict)
    #: up to MAX_ERROR_MESSAGES human-readable messages about the refusals
    errors: list[str] = field(default_factory=list)
    #: the producer's memo of ``series``' refs in the store (None: looked up every time)
    series_refs: SeriesRefs | None = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def by_series(self) -> dict[Labels, list[tuple[int, float]]]:
        """``{labels: [(ts_ms, value), ...]}``, for tests and debugging (slow)."""
        out: dict[Labels, list[tuple[int, float]]] = {}
        for i, t, v in zip(self.series_idx.tolist(), self.ts_ms.tolist(), self.values.tolist(), strict=True):
            out.setdefault(self.series[i], []).append((t, v))
        return out

    def check(self) -> None:
        """Raise ``RuntimeError("BUG: ...")`` if an invariant of the module docstring is broken."""
        n = len(self.values)
        if not (len(self.series_idx) == len(self.ts_ms) == n):
            raise RuntimeError("BUG: sample columns differ in length")
        if self.series_idx.dtype != np.int32 or self.ts_ms.dtype != np.int64 or self.values.dtype != np.float64:
            raise RuntimeError("BUG: sample columns have the wrong dtypes")
        if n and (self.series_idx.min() < 0 or self.series_idx.max() >= len(self.series)):
            raise RuntimeError("BUG: series index out of range")
        for ls in self.series:
            names = [k for k, _ in ls]
            if names != sorted(set(names)) or "__name__" not in names or any(v == "" for _, v in ls):
                raise RuntimeError(f"BUG: malformed label set {ls!r}")
        for ex in self.exemplars:
            if not 0 <= ex.series < len(self.series):
                raise RuntimeError("BUG: exemplar series index out of range")

    @staticmethod
    def concat(batches: list[SampleBatch]) -> SampleBatch:
        """One batch holding all samples of ``batches`` (series deduplicated, order kept)."""
        b = BatchBuilder()
        parts_idx, parts_ts, parts_v = [], [], []
        for batch in batches:
            remap = np.array([b.series_index(ls) for ls in batch.series] or [0], dtype=np.int32)
            parts_idx.append(remap[batch.series_idx] if len(batch) else batch.series_idx)
            parts_ts.append(batch.ts_ms)
            parts_v.append(batch.values)
            for ex in batch.exemplars:
                b.exemplars.append(Exemplar(int(remap[ex.series]), ex.labels, ex.value, ex.ts_ms))
            b.histograms += [(int(remap[i]), t, h) for i, t, h in batch.histograms]
            b.metadata.extend(batch.metadata)
            for reason, count in batch.rejected.items():
                b.rejected[reason] = b.rejected.get(reason, 0) + count
            b.errors.extend(batch.errors[: MAX_ERROR_MESSAGES - len(b.errors)])
        out = b.build()
        if parts_v:
            out.series_idx = np.concatenate(parts_idx).astype(np.int32, copy=False)
            out.ts_ms = np.concatenate(parts_ts).astype(np.int64, copy=False)
            out.values = np.concatenate(parts_v).astype(np.float64, copy=False)
        return out


class BatchBuilder:
    """Accumulates series, samples, exemplars and metadata; :meth:`build` makes the batch.

    Label sets passed to :meth:`series_index` must already be sorted and valid; the builder only
    deduplicates them. Not thread-safe (one builder per request).
    """

    def __init__(self) -> None:
        self.series: list[Labels] = []
        self._index: dict[Labels, int] = {}
        self.idx: list[int] = []
        self.ts: list[int] = []
        self.values: list[float] = []
        self.exemplars: list[Exemplar] = []
        self.metadata: list[Metadata] = []
        self.histograms: list[tuple[int, int, object]] = []
        self.rejected: dict[str, int] = {}
        self.errors: list[str] = []

    def series_index(self, labels: Labels) -> int:
        i = self._index.get(labels)
        if i is None:
            i = self._index[labels] = len(self.series)
            self.series.append(labels)
        return i

    def add(self, series: int, ts_ms: int, value: float) -> None:
        self.idx.append(series)
        self.ts.append(ts_ms)
        self.values.append(value)

    def mark(self) -> tuple[int, int, int, int, int]:
        """A point to :meth:`rollback` to (series, samples, exemplars, metadata, histograms counts)."""
        return len(self.series), len(self.values), len(self.exemplars), len(self.metadata), len(self.histograms)

    def rollback(self, mark: tuple[int, int, int, int, int]) -> None:
        """Forget everything added since ``mark`` (used when a unit of input is refused midway)."""
        n_series, n_samples, n_ex, n_md, n_h = mark
        del self.histograms[n_h:]
        for labels in self.series[n_series:]:
            del self._index[labels]
        del self.series[n_series:]
        del self.idx[n_samples:], self.ts[n_samples:], self.values[n_samples:]
        del self.exemplars[n_ex:], self.metadata[n_md:]

    def reject(self, reason: str, count: int, message: str) -> None:
        """Count ``count`` refused samples/points under ``reason``, keeping a few messages."""
        self.rejected[reason] = self.rejected.get(reason, 0) + count
        if len(self.errors) < MAX_ERROR_MESSAGES:
            self.errors.append(message)

    def build(self) -> SampleBatch:
        return SampleBatch(
            series=self.series,
            series_idx=np.array(self.idx, dtype=np.int32),
            ts_ms=np.array(self.ts, dtype=np.int64),
            values=np.array(self.values, dtype=np.float64),
            exemplars=self.exemplars,
            metadata=self.metadata,
            histograms=self.histograms,
            rejected=self.rejected,
            errors=self.errors,
        )
