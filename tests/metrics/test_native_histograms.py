"""Native histograms below the engine: the stored encoding, the ``histograms`` signal read back
through StoreSeriesSource (also after a restart), the wire conversions and the API's JSON."""

from __future__ import annotations

import math
from types import SimpleNamespace

import orjson
import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from kms.metrics.http.encode import encode_result
from kms.metrics.nativewire import HistogramError, from_otlp_exponential, from_remote_write
from kms.metrics.promql.engine import Engine
from kms.metrics.promql.model import Matcher, MemorySeriesSource
from kms.metrics.promql.nativehist import FloatHistogram
from kms.metrics.samples import BatchBuilder
from kms.metrics.storage.histograms import decode, encode
from kms.metrics.store import (
    EXEMPLARS,
    HISTOGRAMS,
    SAMPLES,
    StoreSeriesSource,
    histograms_table,
    samples_table,
)
from kms.storage import LocalObjectStore, Store, StoreConfig

T0 = 1_700_000_000_000
LABELS = (("__name__", "http_duration_seconds"), ("job", "api"))


def hist(count: float, **kw) -> FloatHistogram:
    h = FloatHistogram(schema=0, count=count, sum=count * 0.5, pos={0: count / 2, 1: count / 2}, **kw)
    return h


def open_store(tmp_path) -> Store:
    s = Store(
        StoreConfig(data_dir=tmp_path / "data"),
        LocalObjectStore(tmp_path / "blocks"),
        [SAMPLES, EXEMPLARS, HISTOGRAMS],
    )
    s.open()
    return s


def test_encoding_round_trip_keeps_every_field():
    h = FloatHistogram(
        schema=3,
        zero_threshold=1e-3,
        zero_count=2.5,
        count=11.5,
        sum=-4.25,
        pos={-2: 1.0, 5: 3.0},
        neg={0: 5.0},
        hint="gauge",
    )
    assert decode(encode(h)) == h
    c = FloatHistogram(schema=-53, count=3, sum=7, pos={0: 1, 2: 2}, custom_values=(0.5, 1.0))
    assert decode(encode(c)) == c
    with pytest.raises(ValueError, match="version"):
        decode(b"\x09" + encode(h)[1:])


def test_store_round_trip_and_restart(tmp_path):
    store = open_store(tmp_path)
    items = [(0, T0 + i * 15_000, hist(10.0 * (i + 1))) for i in range(5)]
    store.append("t1", HISTOGRAMS.name, histograms_table([LABELS], items))
    # a float sample of another series next to it
    b = BatchBuilder()
    b.add(b.series_index((("__name__", "up"), ("job", "api"))), T0, 1.0)
    store.append("t1", SAMPLES.name, samples_table(b.build()))
    src = StoreSeriesSource(store, ["t1"])
    [s] = src.select([Matcher("__name__", "=", "http_duration_seconds")], T0, T0 + 60_000)
    assert s.t.tolist() == [T0 + i * 15_000 for i in range(5)]
    assert [h.count for h in s.h] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert math.isnan(s.v[0])
    res = Engine(src).instant("histogram_count(rate(http_duration_seconds[1m]))", T0 + 60_000).value
    assert [round(x.value, 6) for x in res.samples] == [round(40.0 / 60 * 60 / 60, 6)]
    store.close()

    store = open_store(tmp_path)  # WAL replay
    src = StoreSeriesSource(store, ["t1"])
    [s] = src.select([Matcher("job", "=", "api"), Matcher("__name__", "=~", "http_.*")], T0, T0 + 60_000)
    assert [h.count for h in s.h] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert src.select([Matcher("__name__", "=", "http_duration_seconds")], T0 + 61_000, T0 + 99_000) == []
    store.close()


def _span(offset, length):
    return SimpleNamespace(offset=offset, length=length)


def _rw(**kw):
    base = dict(
        schema=0,
        zero_threshold=0.0,
        zero_count_int=0,
        zero_count_float=0.0,
        count_int=0,
        count_float=0.0,
        sum=0.0,
        positive_spans=[],
        negative_spans=[],
        positive_deltas=[],
        negative_deltas=[],
        positive_counts=[],
        negative_counts=[],
        reset_hint=0,
        custom_values=[],
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_remote_write_integer_histogram_decodes_spans_and_deltas():
    # buckets 1,2 then a gap of 2 then bucket 5; counts 3,5,4 sent as deltas 3,+2,-1
    msg = _rw(
        count_int=12,
        sum=20.5,
        zero_count_int=0,
        positive_spans=[_span(1, 2), _span(2, 1)],
        positive_deltas=[3, 2, -1],
    )
    h = from_remote_write(msg)
    assert h.pos == {1: 3.0, 2: 5.0, 5: 4.0}
    assert (h.count, h.sum, h.hint) == (12.0, 20.5, "unknown")
    fl = from_remote_write(
        _rw(count_float=2.5, negative_spans=[_span(-1, 1)], negative_counts=[2.5], reset_hint=3)
    )
    assert fl.neg == {-1: 2.5} and fl.hint == "gauge"


def test_remote_write_histogram_refusals():
    with pytest.raises(HistogramError, match="more buckets"):
        from_remote_write(_rw(count_int=1, positive_spans=[_span(0, 2)], positive_deltas=[1]))
    with pytest.raises(HistogramError, match="negative bucket count"):
        from_remote_write(_rw(count_int=1, positive_spans=[_span(0, 2)], positive_deltas=[1, -2]))
    with pytest.raises(HistogramError, match="schema 9"):
        from_remote_write(_rw(schema=9))
    with pytest.raises(HistogramError, match="strictly increasing"):
        from_remote_write(_rw(schema=-53, custom_values=[1.0, 1.0]))


def test_otlp_exponential_point_maps_like_prometheus():
    p = metrics_pb2.ExponentialHistogramDataPoint(
        scale=10, count=7, sum=3.5, zero_count=1, zero_threshold=0.0
    )
    p.positive.offset = 0
    p.positive.bucket_counts.extend([2, 2, 2])  # OTLP buckets 0..2 at scale 10
    h = from_otlp_exponential(p)
    # scale 10 -> schema 8: OTLP index i is Prometheus index i+1; indexes 1..3 merge into 1
    assert h.schema == 8 and h.pos == {1: 6.0}
    assert (h.count, h.sum, h.zero_count) == (7.0, 3.5, 1.0)
    low = metrics_pb2.ExponentialHistogramDataPoint(scale=-5, count=1)
    with pytest.raises(HistogramError, match="scale -5"):
        from_otlp_exponential(low)


def test_api_json_shows_count_sum_and_non_empty_buckets():
    src = MemorySeriesSource()
    h = FloatHistogram(
        schema=0, zero_threshold=0.001, zero_count=1, count=6, sum=3, pos={1: 2, 2: 0, 3: 1}, neg={1: 2}
    )
    src.add_histogram(dict(LABELS), T0, h)
    body = orjson.loads(encode_result(Engine(src).instant("http_duration_seconds", T0).value))
    [item] = body["result"]
    assert item["histogram"][1] == {
        "count": "6",
        "sum": "3",
        "buckets": [
            [1, "-2", "-1", "2"],
            [3, "-0.001", "0.001", "1"],
            [0, "1", "2", "2"],
            [0, "4", "8", "1"],
        ],
    }
    rng = orjson.loads(
        encode_result(Engine(src).range("http_duration_seconds", T0, T0 + 30_000, 15_000).value)
    )
    assert [p[0] for p in rng["result"][0]["histograms"]] == [T0 / 1000, T0 / 1000 + 15, T0 / 1000 + 30]
    assert "values" not in rng["result"][0]


def test_remote_write_encoding_round_trips_histograms():
    from kms.metrics.remote_write import decode_remote_write, encode_batch

    b = BatchBuilder()
    i = b.series_index(LABELS)
    h = FloatHistogram(schema=1, zero_threshold=0.01, zero_count=1, count=9, sum=4.5,
                       pos={-3: 1, -2: 2, 4: 3}, neg={0: 2}, hint="not_reset")  # fmt: skip
    b.histograms.append((i, T0, h))
    b.add(b.series_index((("__name__", "up"),)), T0, 1.0)
    out = decode_remote_write(encode_batch(b.build()))
    assert [(out.series[j], t, g) for j, t, g in out.histograms] == [(LABELS, T0, h)]
    assert len(out) == 1


def test_histogram_series_are_listed_by_the_metadata_queries(tmp_path):
    store = open_store(tmp_path)
    store.append("t1", HISTOGRAMS.name, histograms_table([LABELS], [(0, T0, hist(1.0))]))
    src = StoreSeriesSource(store, ["t1"])
    assert src.series([[Matcher("job", "=", "api")]], T0 - 1, T0 + 1) == [dict(LABELS)]
    assert src.label_values("__name__", [], T0 - 1, T0 + 1) == ["http_duration_seconds"]
    store.close()


def test_histograms_follow_the_append_rules():
    from kms.metrics.admission import SampleAdmission

    adm = SampleAdmission(ooo_window_ms=0)

    def batch(*items):
        b = BatchBuilder()
        i = b.series_index(LABELS)
        b.histograms.extend((i, t, h) for t, h in items)
        return b.build()

    a = adm.admit("t", batch((T0, hist(1.0)), (T0 + 15_000, hist(2.0))))
    assert len(a.batch.histograms) == 2 and not a.batch.rejected
    a.commit()
    # older than the newest: out of order; the newest time with another histogram: duplicate
    a = adm.admit("t", batch((T0 + 5_000, hist(9.0)), (T0 + 15_000, hist(3.0)), (T0 + 30_000, hist(4.0))))
    assert [t for _, t, _ in a.batch.histograms] == [T0 + 30_000]
    assert a.batch.rejected == {"sample_out_of_order": 1, "sample_duplicate_timestamp": 1}
    a.commit()
    assert adm.admit("t", batch((T0 + 30_000, hist(4.0)))).batch.histograms  # the same one again: a retry
