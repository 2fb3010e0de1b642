"""Remote write 1.0/2.0 decoding: round trips, validation errors, limits, and fuzzing."""

from __future__ import annotations

import math

import cramjam
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.errors import BadInput, TooLarge, http_status
from kms.metrics import remote_write as rw
from kms.metrics.samples import STALE_NAN, SampleBatch, is_stale

V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"


def request(*series, metadata=()) -> rw.WriteRequest:
    """series: (labels as list of pairs, [(ts, value)...], [(exemplar pairs, value, ts)...])"""
    req = rw.WriteRequest()
    for s in series:
        labels, samples = s[0], s[1]
        exemplars = s[2] if len(s) > 2 else ()
        ts = req.timeseries.add()
        for k, v in labels:
            ts.labels.add(name=k, value=v)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
        for pairs, v, t in exemplars:
            e = ts.exemplars.add(value=v, timestamp=t)
            for k, val in pairs:
                e.labels.add(name=k, value=val)
    for typ, fam, help_, unit in metadata:
        req.metadata.add(type=typ, metric_family_name=fam, help=help_, unit=unit)
    return req


def decode(req, **kw) -> SampleBatch:
    b = rw.decode_remote_write(rw.encode_remote_write(req), **kw)
    b.check()
    return b


UP = [("__name__", "up"), ("instance", "a:1"), ("job", "node")]


def test_round_trip_v1():
    req = request(
        (UP, [(1000, 1.0), (2000, 0.0)], [([("trace_id", "ab" * 16)], 1.0, 1500)]),
        ([("__name__", "rate"), ("job", "x")], [(1000, math.inf), (1000, -math.inf), (3000, math.nan)]),
        (UP, [(3000, 1.0)]),  # same series again in one request
        ([("__name__", "empty")], []),  # no samples: no series
        metadata=[(1, "http_requests_total", "Requests.", ""), (2, "up", "", ""), (9, "odd", "", ""), (0, "", "", "")],
    )
    b = decode(req, content_type="application/x-protobuf", content_encoding="snappy")
    assert b.series == [tuple(UP), (("__name__", "rate"), ("job", "x"))]
    assert b.by_series()[tuple(UP)] == [(1000, 1.0), (2000, 0.0), (3000, 1.0)]
    v = b.by_series()[b.series[1]]
    assert v[0][1] == math.inf and v[1][1] == -math.inf and math.isnan(v[2][1])
    assert b.series_idx.dtype == np.int32 and b.ts_ms.dtype == np.int64 and b.values.dtype == np.float64
    assert [(e.series, e.labels, e.value, e.ts_ms) for e in b.exemplars] == [(0, (("trace_id", "ab" * 16),), 1.0, 1500)]
    assert [(m.family, m.type, m.help) for m in b.metadata] == [
        ("http_requests_total", "counter", "Requests."),
        ("up", "gauge", ""),
        ("odd", "unknown", ""),
    ]
    assert b.rejected == {}


def test_stale_nan_bits_survive():
    b = decode(request(([("__name__", "x")], [(1, STALE_NAN), (2, math.nan)])))
    assert is_stale(b.values).tolist() == [True, False]


def test_empty_label_values_dropped_and_empty_body():
    b = decode(request(([("__name__", "x"), ("a", ""), ("b", "1")], [(1, 1.0)])))
    assert b.series == [(("__name__", "x"), ("b", "1"))]
    assert len(decode(rw.WriteRequest())) == 0


@pytest.mark.parametrize(
    "labels, reason, fragment",
    [
        ([("job", "x")], "missing_metric_name", "without metric name"),
        ([("__name__", ""), ("job", "x")], "missing_metric_name", "without metric name"),
        ([("__name__", "1bad")], "metric_name_invalid", "invalid metric name: '1bad'"),
        ([("__name__", "a.b")], "metric_name_invalid", "invalid metric name"),
        ([("__name__", "x"), ("a-b", "1")], "label_invalid", "invalid label: 'a-b'"),
        ([("__name__", "x"), ("", "1")], "label_invalid", "invalid label"),
        ([("__name__", "x"), ("é", "1")], "label_invalid", "invalid label"),
        ([("__name__", "x"), ("a", "1"), ("a", "2")], "duplicate_label_names", "duplicate label name, label: 'a'"),
        ([("__name__", "x"), ("b", "1"), ("a", "2")], "labels_not_sorted", "not sorted, label: 'a'"),
        ([("job", "1"), ("__name__", "x")], "labels_not_sorted", "not sorted"),
    ],
)
def test_invalid_series(labels, reason, fragment):
    req = request((UP, [(1, 1.0)]), (labels, [(1, 1.0)]))
    with pytest.raises(BadInput) as ei:
        decode(req)
    assert ei.value.reason == reason and fragment in ei.value.message
    assert http_status(ei.value) == 400


@pytest.mark.parametrize(
    "labels", [[("__name__", "a.b"), ("é", "1")], [("__name__", "ü"), ("http.method", "GET")]]
)
def test_utf8_names_allowed_when_asked(labels):
    b = decode(request((labels, [(1, 1.0)])), utf8_names=True)
    assert b.series == [tuple(labels)]


def test_invalid_utf8_label_value():
    # Label{name:"a", value:b"\xff"} inside TimeSeries inside WriteRequest, by hand.
    label = b"\x0a\x01a\x12\x01\xff"
    name = b"\x0a\x08__name__\x12\x01x"
    ts = b"\x0a" + bytes([len(name)]) + name + b"\x0a" + bytes([len(label)]) + label
    body = bytes(cramjam.snappy.compress_raw(b"\x0a" + bytes([len(ts)]) + ts))
    with pytest.raises(BadInput) as ei:
        rw.decode_remote_write(body)
    assert ei.value.reason == "label_invalid_utf8" and "UTF-8" in ei.value.message


@pytest.mark.parametrize(
    "pairs, ok",
    [
        ([("trace_id", "a" * 32), ("span_id", "b" * 16)], True),
        ([("k", "v" * 127)], True),  # 1 + 127 = 128 runes: at the limit
        ([("k", "v" * 128)], False),
        ([("k", "é" * 127)], True),  # runes, not bytes
        ([("bad-name", "1")], False),
        ([("a", "1"), ("a", "2")], False),
        ([], True),
    ],
)
def test_exemplar_validation_drops_and_counts(pairs, ok):
    b = decode(request((UP, [(1, 1.0)], [(pairs, 2.0, 5)])))
    assert len(b) == 1  # the series' samples are kept either way
    assert len(b.exemplars) == int(ok)
    assert b.rejected == ({} if ok else {"invalid_exemplar": 1})
    if ok:
        assert b.exemplars[0].labels == tuple(sorted(pairs))


def test_native_histograms_decoded():
    req = request((UP, [(1, 1.0)]))
    h = req.timeseries[0].histograms.add(count_int=3, sum=1.5, schema=0, timestamp=1)
    h.positive_spans.add(offset=1, length=2)
    h.positive_deltas.extend([1, 1])  # counts 1, 2
    req.timeseries[0].histograms.add(count_float=4.0, sum=2.5, schema=0, timestamp=2, reset_hint=3)
    bad = req.timeseries[0].histograms.add(count_int=1, schema=0, timestamp=3)
    bad.positive_spans.add(offset=0, length=3)  # three buckets announced, none sent
    b = decode(req)
    assert len(b) == 1 and b.rejected == {"invalid_native_histogram": 1} and b.errors
    got = [(t, h.count, h.pos, h.hint) for _, t, h in b.histograms]
    assert got == [(1, 3.0, {1: 1.0, 2: 2.0}, "unknown"), (2, 4.0, {}, "gauge")]


@pytest.mark.parametrize(
    "content_type, version",
    [
        (None, 1),
        ("", 1),
        ("application/x-protobuf", 1),
        ("application/x-protobuf;proto=prometheus.WriteRequest", 1),
        ("application/x-protobuf; proto=io.prometheus.write.v2.Request", 2),
        (V2, 2),
    ],
)
def test_protocol_version(content_type, version):
    assert rw.protocol_version(content_type) == version


@pytest.mark.parametrize(
    "content_type, encoding",
    [
        ("application/json", None),
        ("application/x-protobuf;proto=io.prometheus.write.v3.Request", None),
        ("application/x-protobuf", "gzip"),
    ],
)
def test_unsupported_media_type(content_type, encoding):
    with pytest.raises(BadInput) as ei:
        rw.decode_remote_write(rw.encode_remote_write(request((UP, [(1, 1.0)]))), content_type=content_type, content_encoding=encoding)
    assert ei.value.reason == "unsupported_media_type" and http_status(ei.value) == 415


def test_size_limit_checked_before_decoding():
    body = rw.encode_remote_write(request((UP, [(i, float(i)) for i in range(1000)])))
    with pytest.raises(TooLarge) as ei:
        rw.decode_remote_write(body, max_bytes=1000)
    assert http_status(ei.value) == 413 and "over the limit of 1000" in ei.value.message
    assert len(rw.decode_remote_write(body, max_bytes=1 << 20)) == 1000


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xff\xff\xff\xff\xff", b"\x05abc", b"not snappy at all", bytes(cramjam.snappy.compress_raw(b"\x0a\x05\x0a\x03"))],
)
def test_garbage_is_bad_input(body):
    with pytest.raises(BadInput):
        rw.decode_remote_write(body)


def test_framed_snappy_is_refused():
    framed = bytes(cramjam.snappy.compress(request((UP, [(1, 1.0)])).SerializeToString()))
    with pytest.raises(BadInput):
        rw.decode_remote_write(framed)


# ----------------------------------------------------------------------------------- 2.0


def request_v2(series, symbols=None):
    """series: (label pairs, samples, exemplars, (type, help, unit) or None); symbols built here."""
    table = [""] if symbols is None else list(symbols)

    def ref(s):
        if s not in table:
            table.append(s)
        return table.index(s)

    req = rw.WriteRequestV2()
    for labels, samples, exemplars, md in series:
        ts = req.timeseries.add()
        for k, v in labels:
            ts.labels_refs.extend([ref(k), ref(v)])
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
        for pairs, v, t in exemplars:
            e = ts.exemplars.add(value=v, timestamp=t)
            for k, val in pairs:
                e.labels_refs.extend([ref(k), ref(val)])
        if md:
            ts.metadata.type, ts.metadata.help_ref, ts.metadata.unit_ref = md[0], ref(md[1]), ref(md[2])
    req.symbols.extend(table)
    return req


def test_round_trip_v2():
    req = request_v2(
        [
            (UP, [(1000, 1.0)], [([("trace_id", "cd" * 16)], 1.0, 900)], (2, "Up.", "")),
            ([("__name__", "req_total"), ("job", "node")], [(1000, 5.0), (2000, 7.0)], [], (1, "Requests.", "")),
            ([("__name__", "nosamples")], [(5, 0.5)], [], (2, "Only metadata.", "seconds")),
        ]
    )
    b = decode(req, content_type=V2)
    assert b.by_series() == {
        tuple(UP): [(1000, 1.0)],
        (("__name__", "req_total"), ("job", "node")): [(1000, 5.0), (2000, 7.0)],
        (("__name__", "nosamples"),): [(5, 0.5)],
    }
    assert [(e.series, e.labels) for e in b.exemplars] == [(0, (("trace_id", "cd" * 16),))]
    assert [(m.family, m.type, m.help, m.unit) for m in b.metadata] == [
        ("up", "gauge", "Up.", ""),
        ("req_total", "counter", "Requests.", ""),
        ("nosamples", "gauge", "Only metadata.", "seconds"),
    ]
    assert rw.written_headers(b) == {
        "X-Prometheus-Remote-Write-Samples-Written": "4",
        "X-Prometheus-Remote-Write-Histograms-Written": "0",
        "X-Prometheus-Remote-Write-Exemplars-Written": "1",
    }


def test_v2_bad_refs_and_validation():
    req = request_v2([(UP, [(1, 1.0)], [], None)])
    req.timeseries[0].labels_refs.append(1)  # odd
    with pytest.raises(BadInput, match="invalid labelRefs length 7"):
        decode(req, content_type=V2)
    req = request_v2([(UP, [(1, 1.0)], [], None)])
    req.timeseries[0].labels_refs.extend([1, 99])
    with pytest.raises(BadInput, match="outside of symbols table"):
        decode(req, content_type=V2)
    req = request_v2([([("job", "x")], [(1, 1.0)], [], None)])
    with pytest.raises(BadInput, match="without metric name"):
        decode(req, content_type=V2)
    req = request_v2([(UP, [], [([("trace_id", "x")], 1.0, 1)], (2, "", ""))])
    with pytest.raises(BadInput, match="at least one sample or histogram"):
        decode(req, content_type=V2)
    req = request_v2([(UP, [(1, 1.0)], [], None)])
    req.timeseries[0].histograms.add(count_int=1, timestamp=1, schema=12)
    assert decode(req, content_type=V2).rejected == {"invalid_native_histogram": 1}


def test_v1_body_read_as_v2_does_not_crash():
    body = rw.encode_remote_write(request((UP, [(1, 1.0)])))
    try:
        rw.decode_remote_write(body, content_type=V2)
    except BadInput:
        pass


# ------------------------------------------------------------------------------------ fuzz


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.sampled_from([None, V2]), st.booleans())
def test_arbitrary_bytes_only_bad_input(data, content_type, compress):
    body = bytes(cramjam.snappy.compress_raw(data)) if compress else data
    try:
        rw.decode_remote_write(body, content_type=content_type).check()
    except BadInput:
        pass


label_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True), label_text, max_size=4),
            st.lists(st.tuples(st.integers(-(2**62), 2**62), st.floats(allow_nan=False)), max_size=4),
        ),
        max_size=6,
    )
)
def test_valid_requests_round_trip(series):
    built = []
    for labels, samples in series:
        pairs = sorted({**labels, "__name__": "m"}.items())
        built.append((pairs, samples))
    b = decode(request(*built))
    expected: dict = {}
    for pairs, samples in built:
        if samples:
            expected.setdefault(tuple(p for p in pairs if p[1]), []).extend(samples)
    assert b.by_series() == expected


# ------------------------------------------------------------------------- the batch type


def test_batch_concat_check_and_rollback():
    from kms.metrics.samples import BatchBuilder, Exemplar, Metadata

    a = decode(request((UP, [(1, 1.0)], [([("trace_id", "t")], 1.0, 1)]), metadata=[(2, "up", "", "")]))
    b = decode(request(([("__name__", "x")], [(2, 2.0)]), (UP, [(3, 3.0)], [([("trace_id", "u")], 3.0, 3)])))
    b.rejected["invalid_exemplar"] = 2
    c = SampleBatch.concat([a, b, SampleBatch.concat([])])
    c.check()
    assert c.series == [tuple(UP), (("__name__", "x"),)]
    assert c.by_series() == {tuple(UP): [(1, 1.0), (3, 3.0)], (("__name__", "x"),): [(2, 2.0)]}
    assert [(e.series, e.value) for e in c.exemplars] == [(0, 1.0), (0, 3.0)]
    assert c.metadata == [Metadata("up", "gauge")] and c.rejected_total == 2

    bb = BatchBuilder()
    bb.add(bb.series_index((("__name__", "keep"),)), 1, 1.0)
    mark = bb.mark()
    i = bb.series_index((("__name__", "drop"),))
    bb.add(i, 2, 2.0)
    bb.exemplars.append(Exemplar(i, (), 1.0, 2))
    bb.rollback(mark)
    assert bb.series_index((("__name__", "again"),)) == 1
    out = bb.build()
    out.check()
    assert out.series == [(("__name__", "keep"),), (("__name__", "again"),)] and len(out) == 1 and not out.exemplars


@pytest.mark.parametrize(
    "series",
    [
        [(("b", "1"), ("__name__", "x"))],  # unsorted
        [(("job", "x"),)],  # no __name__
        [(("__name__", "x"), ("a", ""))],  # empty value
    ],
)
def test_batch_check_catches_broken_invariants(series):
    from kms.metrics.samples import BatchBuilder

    bb = BatchBuilder()
    for ls in series:
        bb.add(bb.series_index(ls), 1, 1.0)
    with pytest.raises(RuntimeError, match="BUG"):
        bb.build().check()


@pytest.mark.parametrize(
    ("case", "uniform"),
    [("plain", True), ("long labels", True), ("zero value", False), ("exemplar", False), ("two widths", False),
     ("no samples", False)],
)  # fmt: skip
def test_uniform_scan_agrees_with_message_decoding(case, uniform):
    """The whole-request scan of uniform series gives exactly what message-by-message decoding
    gives, and declines every request that is not uniform (the general path then decodes it)."""
    import numpy as np

    from kms.metrics import remote_write as rw
    from kms.metrics.remote_write import WriteRequest

    rng = np.random.default_rng(7)
    req = WriteRequest()
    for i in range(4):
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value=f"m{i}")
        ts.labels.add(name="job", value="x" * (200 if case == "long labels" else 3))  # 2-byte lengths
        t0 = 5_000 if (case == "two widths" and i == 2) else 1_700_000_000_000
        if case == "no samples" and i == 1:
            continue
        for k in range(3):
            value = 0.0 if (case == "zero value" and k == 1) else float(rng.normal())
            ts.samples.add(value=value, timestamp=t0 + 15_000 * k)
    if case == "exemplar":
        e = req.timeseries[0].exemplars.add(value=1.0, timestamp=1)
        e.labels.add(name="trace_id", value="ab")
    data = req.SerializeToString()
    v = rw._Validator(False)
    want = rw._decode_v1_messages(data, v)
    got = rw._decode_v1_uniform(data, v)
    assert (got is not None) == uniform
    if got is None:
        got = rw._decode_v1(data, v)
    assert got.series == want.series and got.by_series() == want.by_series()
    assert np.array_equal(np.sort(got.values.view(np.uint64)), np.sort(want.values.view(np.uint64)))
