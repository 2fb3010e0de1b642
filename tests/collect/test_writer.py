"""The scrape writer: many scrapes' batches, one append; every waiting scrape gets the outcome."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kms.collect.writer import BatchWriter, join
from kms.errors import LimitExceeded
from kms.metrics.samples import Exemplar, SampleBatch


def batch(target: str, n: int, with_exemplar: bool = False) -> SampleBatch:
    series = [(("__name__", f"m{i}"), ("instance", target)) for i in range(n)]
    b = SampleBatch(series, np.arange(n, dtype=np.int32), np.full(n, 1000, np.int64), np.arange(n, dtype=np.float64))
    if with_exemplar:
        b.exemplars.append(Exemplar(n - 1, (("trace_id", target),), 1.0, 1000))
    return b


def test_join_offsets_series_and_exemplars():
    j = join([batch("a", 2), batch("b", 3, with_exemplar=True)])
    j.check()
    assert j.by_series()[(("__name__", "m2"), ("instance", "b"))] == [(1000, 2.0)]
    assert len(j.series) == 5 and j.series[j.exemplars[0].series] == (("__name__", "m2"), ("instance", "b"))


def test_groups_waiting_batches_and_hands_errors_to_each():
    calls: list[int] = []
    gate, entered = threading.Event(), threading.Event()

    def sink(b: SampleBatch):
        entered.set()
        gate.wait(5)
        calls.append(len(b))
        if len(calls) == 2:
            raise LimitExceeded("head full")
        return len(b)

    w = BatchWriter(sink, max_samples=10)
    first = w.submit(batch("a", 4))  # taken alone while the others queue behind the gate
    assert entered.wait(5)
    queued = [w.submit(batch(t, 4)) for t in "bcd"]
    gate.set()
    assert first.result(5) == 4
    with pytest.raises(LimitExceeded):
        queued[0].result(5)
    with pytest.raises(LimitExceeded):
        queued[1].result(5)  # same append as queued[0]: b and c (8 samples; d would pass 10)
    assert queued[2].result(5) == 4
    w.close()
    assert calls == [4, 8, 4]


def test_series_memos_give_the_same_refs_and_columns_and_fill_joined_parts():
    """A batch's memo, filled when it is admitted, answers for the next batch with its list (and
    for joins of such batches) with the refs and columns the table itself gives."""
    from kms.metrics.admission import SampleAdmission
    from kms.metrics.samples import SeriesRefs

    adm = SampleAdmission()
    a, b = batch("a", 2), batch("b", 3)
    a.series_refs, b.series_refs = SeriesRefs(), SeriesRefs()
    first = adm.admit("t", join([a, b]))
    cols = [c.to_pylist() for c in first.columns()]
    assert a.series_refs.owner is first.series and a.series_refs.refs.tolist() == first.refs[:2].tolist()
    assert [c.to_pylist() for c in b.series_refs.columns] == [c[2:] for c in cols]
    # the same lists again, joined the other way round, and a new series list beside them
    b2 = SampleBatch(b.series, b.series_idx, b.ts_ms + 1000, b.values, series_refs=b.series_refs)
    a2 = SampleBatch(a.series, a.series_idx, a.ts_ms + 1000, a.values, series_refs=a.series_refs)
    c = batch("c", 1)
    for parts in ([b2, a2], [b2, a2, c]):
        joined = join(parts)
        got = adm.admit("t", joined)
        plain = adm.admit("t", SampleBatch(joined.series, joined.series_idx, joined.ts_ms, joined.values))
        assert got.refs.tolist() == plain.refs.tolist()
        assert [x.to_pylist() for x in got.columns()] == [x.to_pylist() for x in plain.columns()]
    assert c.series_refs is None  # a batch without a memo is looked up every time
