"""The metrics storage: samples/exemplars tables and StoreSeriesSource over a real Store."""

from __future__ import annotations

import numpy as np
import pytest

from kms.metrics.promql.model import Matcher
from kms.metrics.samples import STALE_NAN_BITS, BatchBuilder, Exemplar, SampleBatch, is_stale
from kms.metrics.store import (
    EXEMPLARS,
    SAMPLES,
    StoreSeriesSource,
    exemplars_table,
    labels_text,
    parse_labels_text,
    samples_table,
)
from kms.storage import LocalObjectStore, Store, StoreConfig

T0 = 1_700_000_000_000
STALE = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])


@pytest.fixture
def store(tmp_path):
    s = Store(
        StoreConfig(data_dir=tmp_path / "data"), LocalObjectStore(tmp_path / "blocks"), [SAMPLES, EXEMPLARS]
    )
    s.open()
    yield s
    s.close()


def ls(**kw) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def batch(rows, exemplars=()) -> SampleBatch:
    """rows: (labels, ts_ms, value)."""
    b = BatchBuilder()
    for labels, t, v in rows:
        b.add(b.series_index(labels), t, v)
    for labels, ex_labels, v, t in exemplars:
        b.exemplars.append(Exemplar(b.series_index(labels), ex_labels, v, t))
    out = b.build()
    out.check()
    return out


def write(store, tenant, b: SampleBatch) -> None:
    store.append(tenant, "samples", samples_table(b))
    ex = exemplars_table(b)
    if ex is not None:
        store.append(tenant, "exemplars", ex)


def M(name, op, value) -> Matcher:
    return Matcher(name, op, value)


def bits(a) -> list[int]:
    return np.asarray(a, dtype=np.float64).view(np.uint64).tolist()


@pytest.mark.parametrize(
    "labels",
    [
        ls(__name__="up"),
        ls(__name__="x", a='q"uo\\te', b="new\nline", c="}{,=\\n"),
        (("__name__", "x"), ("dotted.name", 'v"'), ("ünï", "ç")),
        (),
    ],
)
def test_labels_text_round_trip(labels):
    text = labels_text(labels)
    assert parse_labels_text(text) == dict(labels)
    assert tuple(parse_labels_text(text).items()) == tuple(labels)


def test_labels_text_form():
    assert labels_text(ls(__name__="up", job='a"b')) == '{__name__="up",job="a\\"b"}'
    with pytest.raises(ValueError):
        parse_labels_text('{a="b"')
    with pytest.raises(ValueError):
        parse_labels_text('{a="b"x}')


@pytest.mark.parametrize("flush", [False, True])
def test_round_trip_with_stale_nan(store, flush):
    a, b = ls(__name__="m", job="a"), ls(__name__="m", job="b")
    vals = [1.0, STALE, float("nan"), -0.0, float("inf"), 2.5]
    rows = [(a if i % 2 else b, T0 + 1000 * (10 - i), v) for i, v in enumerate(vals)]  # unsorted times
    write(store, "t1", batch(rows))
    if flush:
        store.flush()
        assert store.stats()["blocks"]["t1/samples"] == 1
    src = StoreSeriesSource(store, ["t1"])
    got = src.select([M("__name__", "=", "m")], T0, T0 + 60_000)
    assert [s.labels for s in got] == [dict(a), dict(b)]
    for s, lab in zip(got, (a, b), strict=True):
        want = sorted((t, v) for l_, t, v in rows if l_ == lab)
        assert s.t.dtype == np.int64 and s.v.dtype == np.float64
        assert s.t.tolist() == [t for t, _ in want]
        assert bits(s.v) == bits([v for _, v in want])
    assert is_stale(got[0].v).sum() + is_stale(got[1].v).sum() == 1
    # the time range is inclusive and applied
    part = src.select([M("__name__", "=", "m")], T0 + 5000, T0 + 7000)
    assert sorted(t for s in part for t in s.t.tolist()) == [T0 + 5000, T0 + 6000, T0 + 7000]


@pytest.mark.parametrize("flush", [False, True])
def test_matchers(store, flush):
    series = [
        ls(__name__="http", code="200", path="/a"),
        ls(__name__="http", code="500", path="/b"),
        ls(__name__="http", path="/c"),
        ls(__name__="rpc", code="200"),
    ]
    write(store, "t", batch([(s, T0, float(i)) for i, s in enumerate(series)]))
    if flush:
        store.flush()
    src = StoreSeriesSource(store, ["t"])

    def names(*ms):
        got = src.select(list(ms), T0, T0)
        assert [s.labels for s in got] == sorted((s.labels for s in got), key=lambda d: sorted(d.items()))
        return sorted((s.labels["__name__"], s.labels.get("code", ""), s.labels.get("path", "")) for s in got)

    assert names(M("__name__", "=", "http"), M("code", "=", "200")) == [("http", "200", "/a")]
    assert names(M("__name__", "=", "http"), M("code", "!=", "200")) == [
        ("http", "", "/c"),
        ("http", "500", "/b"),
    ]
    assert names(M("code", "=~", "2..|5..")) == [
        ("http", "200", "/a"),
        ("http", "500", "/b"),
        ("rpc", "200", ""),
    ]
    assert names(M("code", "!~", "2.*")) == [("http", "", "/c"), ("http", "500", "/b")]
    # empty-label semantics: code="" matches series without code, code!="" those with one
    assert names(M("code", "=", "")) == [("http", "", "/c")]
    assert names(M("__name__", "=", "http"), M("code", "!=", "")) == [
        ("http", "200", "/a"),
        ("http", "500", "/b"),
    ]
    assert names(M("code", "=~", "|200")) == [("http", "", "/c"), ("http", "200", "/a"), ("rpc", "200", "")]
    assert names(M("__name__", "=~", "rp.")) == [("rpc", "200", "")]
    assert names(M("__name__", "=", "nope")) == []
    assert names(M("__name__", "=", "")) == []
    assert len(names()) == 4


@pytest.mark.parametrize("flush", [False, True])
def test_duplicate_timestamps_last_written_wins(store, flush):
    s = ls(__name__="c")
    write(store, "t", batch([(s, T0, 1.0), (s, T0 + 1000, 2.0), (s, T0, 3.0)]))
    write(store, "t", batch([(s, T0 + 1000, 4.0), (s, T0 + 2000, 5.0)]))
    if flush:
        store.flush()
    (got,) = StoreSeriesSource(store, ["t"]).select([M("__name__", "=", "c")], T0, T0 + 10_000)
    assert got.t.tolist() == [T0, T0 + 1000, T0 + 2000]
    assert got.v.tolist() == [3.0, 4.0, 5.0]


def test_head_and_blocks_together(store):
    s = ls(__name__="c", i="1")
    write(store, "t", batch([(s, T0 + i * 1000, float(i)) for i in range(5)]))
    store.flush()
    write(store, "t", batch([(s, T0 + i * 1000, float(i)) for i in range(5, 10)]))
    (got,) = StoreSeriesSource(store, ["t"]).select([M("__name__", "=", "c")], T0, T0 + 10_000)
    assert got.v.tolist() == [float(i) for i in range(10)]


def test_tenants_kept_apart(store):
    s = ls(__name__="up", job="x")
    write(store, "a", batch([(s, T0, 1.0)]))
    write(store, "b", batch([(s, T0, 2.0), (ls(__name__="only_b"), T0, 3.0)]))
    store.flush()
    m = [M("__name__", "=", "up")]
    assert [x.v.tolist() for x in StoreSeriesSource(store, ["a"]).select(m, T0, T0)] == [[1.0]]
    assert [x.v.tolist() for x in StoreSeriesSource(store, ["b"]).select(m, T0, T0)] == [[2.0]]
    assert StoreSeriesSource(store, ["a"]).label_values("__name__", []) == ["up"]
    assert StoreSeriesSource(store, ["a", "b"]).label_values("__name__", []) == ["only_b", "up"]
    assert StoreSeriesSource(store, ["c"]).select(m, T0, T0) == []


@pytest.mark.parametrize("flush", [False, True])
def test_label_names_values_series(store, flush):
    write(
        store,
        "t",
        batch(
            [
                (ls(__name__="http", code="200", path="/a"), T0, 1.0),
                (ls(__name__="http", code="500"), T0 + 1000, 1.0),
                (ls(__name__="rpc", svc="x"), T0 + 5000, 1.0),
            ]
        ),
    )
    if flush:
        store.flush()
    src = StoreSeriesSource(store, ["t"])
    assert src.label_names([]) == ["__name__", "code", "path", "svc"]
    assert src.label_names([[M("__name__", "=", "http")]]) == ["__name__", "code", "path"]
    assert src.label_names([], T0 + 2000, T0 + 9000) == ["__name__", "svc"]
    assert src.label_values("code", []) == ["200", "500"]
    assert src.label_values("code", [[M("path", "=", "")]]) == ["500"]
    assert src.label_values("nope", []) == []
    assert src.series([[M("__name__", "=", "rpc")], [M("code", "=", "500")]]) == [
        {"__name__": "http", "code": "500"},
        {"__name__": "rpc", "svc": "x"},
    ]
    assert len(src.series([])) == 3
    assert [
        d["__name__"] for d in src.series([[M("__name__", "=", "rpc")], [M("__name__", "=", "http")]])
    ] == [
        "http",
        "http",
        "rpc",
    ]
    # unbounded and huge bounds (clamped into int64 ns)
    assert len(src.series([], None, None)) == 3
    assert len(src.select([M("__name__", "=", "http")], -(2**62), 2**62)) == 2
    assert src.series([[M("__name__", "=", "http")]], T0 + 500, T0 + 1000) == [
        {"__name__": "http", "code": "500"}
    ]


@pytest.mark.parametrize("flush", [False, True])
def test_exemplars(store, flush):
    h = ls(__name__="lat_bucket", le="0.5", svc="api")
    o = ls(__name__="other")
    tid = ls(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    b = batch(
        [(h, T0, 1.0), (o, T0, 2.0)],
        exemplars=[
            (h, tid, 0.231, T0 + 12_345),
            (h, tid, 0.231, T0 + 12_345),
            (o, (), 7.0, T0),
            (h, ls(a="b"), 0.1, T0 + 1),
        ],
    )
    tab = exemplars_table(b)
    assert tab.num_rows == 4 and tab.schema == EXEMPLARS.schema
    assert exemplars_table(batch([(o, T0, 1.0)])) is None
    write(store, "t", b)
    if flush:
        store.flush()
    src = StoreSeriesSource(store, ["t"])
    got = src.exemplars([[M("__name__", "=", "lat_bucket")]], T0, T0 + 60_000)
    assert got == [
        {
            "seriesLabels": dict(h),
            "exemplars": [
                {"labels": {"a": "b"}, "value": 0.1, "timestamp": (T0 + 1) / 1000},
                {"labels": dict(tid), "value": 0.231, "timestamp": (T0 + 12_345) / 1000},
            ],
        }
    ]
    assert [e["seriesLabels"]["__name__"] for e in src.exemplars([], T0, T0 + 60_000)] == [
        "lat_bucket",
        "other",
    ]
    assert src.exemplars([], T0 + 20_000, T0 + 60_000) == []
    assert src.exemplars([[M("svc", "=", "api")]], T0 + 1, T0 + 1)[0]["exemplars"][0]["labels"] == {"a": "b"}


def test_samples_table_shape():
    s1, s2 = ls(__name__="b", x="1"), ls(__name__="a")
    b = batch([(s1, T0, 1.0), (s2, T0 + 1, 2.0), (s1, T0 + 2, 3.0)])
    t = samples_table(b)
    assert t.schema == SAMPLES.schema
    assert t.column("time_ns").to_pylist() == [T0 * 1_000_000, (T0 + 1) * 1_000_000, (T0 + 2) * 1_000_000]
    assert t.column("metric").to_pylist() == ["b", "a", "b"]
    assert t.column("series").to_pylist() == [labels_text(s1), labels_text(s2), labels_text(s1)]
    empty = samples_table(BatchBuilder().build())
    assert empty.num_rows == 0 and empty.schema == SAMPLES.schema


def test_select_parses_each_series_once(store, monkeypatch):
    import kms.metrics.storage.index as source  # the series index parses each new label text

    series = [ls(__name__="c", i=str(i)) for i in range(3)]
    for part in range(2):
        write(
            store,
            "t",
            batch([(s, T0 + 1000 * (100 * part + k), float(k)) for s in series for k in range(100)]),
        )
        if part == 0:
            store.flush()
    calls = []
    real = source.parse_labels_text
    monkeypatch.setattr(source, "parse_labels_text", lambda text: calls.append(text) or real(text))
    got = StoreSeriesSource(store, ["t"]).select([M("i", "!=", "1")], T0, T0 + 10**6)
    assert [s.labels["i"] for s in got] == ["0", "2"] and all(len(s.t) == 200 for s in got)
    assert sorted(calls) == sorted(labels_text(s) for s in series)


def test_blocks_use_per_column_encodings_and_round_trip_bit_exact(store, tmp_path):
    """Samples/exemplars blocks: time_ns DELTA_BINARY_PACKED, value BYTE_STREAM_SPLIT (no dictionary),
    metric/series dictionary-encoded; every value bit (NaN payloads included) survives cut + compaction."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    series = [ls(__name__=f"m{i % 3}", i=str(i)) for i in range(9)]
    vals = np.cumsum(rng.normal(10, 1, 9 * 200))
    vals[::37] = STALE
    vals[5::53] = np.array([0x7FF8000000000001, 0x8000000000000000], dtype=np.uint64).view(np.float64)[0]
    rows = [(series[k % 9], T0 + 15_000 * (k // 9), float(vals[k])) for k in range(len(vals))]
    for lo in range(0, len(rows), 600):
        write(store, "t", batch(rows[lo : lo + 600], exemplars=[(series[0], ls(trace_id=f"{lo:032x}"), 0.5, T0 + lo)]))
        store.flush()
    store.config.compaction_min_blocks = 2
    store.compact()
    for signal in ("samples", "exemplars"):
        for f in (tmp_path / "blocks" / "t" / signal).rglob("data.parquet"):
            md = pq.ParquetFile(f).metadata
            enc = {md.row_group(0).column(c).path_in_schema: md.row_group(0).column(c).encodings for c in range(md.num_columns)}
            assert "DELTA_BINARY_PACKED" in enc["time_ns"] and "BYTE_STREAM_SPLIT" in enc["value"]
            assert not {"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & set(enc["time_ns"] + enc["value"])
            assert "RLE_DICTIONARY" in enc["metric"] and "RLE_DICTIONARY" in enc["series"]
    src = StoreSeriesSource(store, ["t"])
    got = {tuple(sorted(s.labels.items())): s for s in src.select([M("__name__", "=~", "m.*")], T0, T0 + 10**8)}
    assert len(got) == 9
    for lab in series:
        want = [(t, v) for l_, t, v in rows if l_ == lab]
        assert got[lab].t.tolist() == [t for t, _ in want] and bits(got[lab].v) == bits([v for _, v in want])
    assert sum(is_stale(s.v).sum() for s in got.values()) == is_stale(vals).sum() > 40
    ex = src.exemplars([[M("__name__", "=", "m0")]], T0, T0 + 10**8)
    assert len(ex[0]["exemplars"]) == 3


@pytest.mark.parametrize("flush", [False, True])
def test_select_across_tenants_merges_the_same_series(store, flush):
    a = ls(__name__="m", job="a")
    write(store, "t1", batch([(a, T0, 1.0), (a, T0 + 2000, 2.0)]))
    write(store, "t2", batch([(a, T0 + 1000, 10.0), (a, T0 + 2000, 20.0)]))
    if flush:
        store.flush()
    got = StoreSeriesSource(store, ["t1", "t2"]).select([M("job", "=", "a")], T0, T0 + 10_000)
    assert len(got) == 1
    assert got[0].t.tolist() == [T0, T0 + 1000, T0 + 2000]
    assert got[0].v.tolist() == [1.0, 10.0, 20.0]  # a tie: the later tenant in the list wins
