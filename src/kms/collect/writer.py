"""Group the batches of many scrapes into one store append.

Every append pays fixed costs (a WAL record and its fsync, admission, the table conversion);
per target they dominated (bench_scrape: WAL sync alone was ~10% of the CPU at 50 targets x 2k
series a second). One writer thread takes every batch waiting when it becomes free and stores
them as one: at low load nothing waits, at high load appends grow instead of multiplying.

Batches of different targets never share a series (the target labels differ), so they are joined
by offsetting series indexes, without deduplicating label sets. The caller learns the outcome
through a ``concurrent.futures.Future`` (the sink's result, or its exception for every batch of
the group).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError

import numpy as np

from kms.metrics.samples import Exemplar, SampleBatch, SeriesRefs

__all__ = ["BatchWriter", "join"]

log = logging.getLogger("kms.collect")


def join(batches: list[SampleBatch]) -> SampleBatch:
    """One batch of ``batches`` (series lists concatenated; no deduplication; the store's memo of
    the joined list passes what it learns to the parts' memos)."""
    if len(batches) == 1:
        return batches[0]
    series, idx, exemplars, metadata, histograms = [], [], [], [], []
    for b in batches:
        off = len(series)
        series.extend(b.series)
        idx.append(b.series_idx + np.int32(off) if off else b.series_idx)
        exemplars.extend(Exemplar(e.series + off, e.labels, e.value, e.ts_ms) for e in b.exemplars)
        histograms.extend((i + off, t, h) for i, t, h in b.histograms)
        metadata.extend(b.metadata)
    return SampleBatch(series=series, series_idx=np.concatenate(idx).astype(np.int32, copy=False),
                       ts_ms=np.concatenate([b.ts_ms for b in batches]),
                       values=np.concatenate([b.values for b in batches]),
                       exemplars=exemplars, metadata=metadata, histograms=histograms,
                       series_refs=SeriesRefs.joined([b.series_refs for b in batches], [len(b.series) for b in batches]))


class BatchWriter:
    def __init__(self, sink: Callable[[SampleBatch], object], max_samples: int = 50_000):
        self.sink = sink
        # one append at most: enough to pay the fixed costs once for many scrapes, while what a
        # group costs in memory at once stays bounded (an agent encodes it into one remote-write
        # body: ~350 bytes a sample; bench_agent peaked at +25 MiB on a 100k-sample group)
        self.max_samples = max_samples
        self._pending: list[tuple[SampleBatch, Future]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kms-scrape-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: SampleBatch) -> Future:
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("BUG: batch submitted after the scrape writer closed")
            self._pending.append((batch, fut))
            self._cond.notify()
        return fut

    def _take(self) -> list[tuple[SampleBatch, Future]] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            group, n = [], 0
            while self._pending and (not group or n + len(self._pending[0][0]) <= self.max_samples):
                item = self._pending.pop(0)
                group.append(item)
                n += len(item[0])
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            try:
                result, error = self.sink(join([b for b, _ in group])), None
            except Exception as e:  # noqa: BLE001 - handed to every waiting scrape
                result, error = None, e
            for _, fut in group:
                # a scrape stopped meanwhile has cancelled its future: nobody waits for it
                with contextlib.suppress(InvalidStateError):
                    if error is not None:
                        fut.set_exception(error)
                    else:
                        fut.set_result(result)

    def close(self) -> None:
        """Store what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(30)
