"""The vectorised ``Sample`` decoder against protobuf's own, on every layout encoders produce."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.metrics.remote_write import Sample
from kms.metrics.sample_wire import decode_samples

_VALUES = st.one_of(st.floats(allow_nan=False), st.just(0.0), st.just(-0.0), st.just(float("nan")))
_TIMES = st.one_of(st.integers(-(2**63), 2**63 - 1), st.just(0), st.integers(0, 2**42))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_VALUES, _TIMES), max_size=40))
def test_decode_matches_protobuf(pairs):
    msgs = [Sample(value=v, timestamp=t).SerializeToString() for v, t in pairs]
    got = decode_samples(b"".join(msgs), np.array([len(m) for m in msgs], dtype=np.int64))
    assert got is not None
    ts, vs = got
    assert ts.tolist() == [t for _, t in pairs]
    want = np.array([v for v, _ in pairs], dtype=np.float64)
    assert vs.view(np.uint64).tolist() == want.view(np.uint64).tolist() or (
        # -0.0 is left out by proto3 encoders and decodes as 0.0, as protobuf itself does
        [Sample.FromString(m).value for m in msgs] == vs.tolist()
    )


def test_unusual_layouts_are_refused_not_misread():
    fields_reversed = b"\x10\x05" + b"\x09" + np.float64(1.5).tobytes()
    unknown_field = b"\x09" + np.float64(1.5).tobytes() + b"\x10\x05" + b"\x18\x01"
    repeated = b"\x10\x05\x10\x06"
    for raw in (fields_reversed, unknown_field, repeated):
        assert decode_samples(raw, np.array([len(raw)])) is None
    ok = b"\x09" + np.float64(2.5).tobytes() + b"\x10\x2a"
    ts, vs = decode_samples(ok + b"", np.array([len(ok)]))
    assert ts.tolist() == [42] and vs.tolist() == [2.5]


def test_request_with_an_unusual_sample_is_decoded_message_by_message():
    from kms.metrics.remote_write import Label, decode_write_request
    from kms.otlp.wire import len_prefixed

    labels = b"".join(
        len_prefixed(1, Label(name=k, value=v).SerializeToString()) for k, v in (("__name__", "m"), ("a", "b"))
    )
    usual = Sample(value=1.5, timestamp=1000).SerializeToString()
    reversed_fields = b"\x10" + bytes([0xD0, 0x0F]) + b"\x09" + np.float64(2.5).tobytes()  # ts 2000 first
    series = labels + len_prefixed(2, usual) + len_prefixed(2, reversed_fields)
    batch = decode_write_request(len_prefixed(1, series))
    assert batch.series == [(("__name__", "m"), ("a", "b"))]
    assert batch.ts_ms.tolist() == [1000, 2000] and batch.values.tolist() == [1.5, 2.5]


_SERIES = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "é"]), st.sampled_from(["", "x", "long" * 40])),
                   min_size=1, max_size=3, unique_by=lambda kv: kv[0])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), _VALUES, st.integers(0, 2**62)), max_size=60),
       st.lists(_SERIES, min_size=5, max_size=5))
def test_encode_batch_matches_protobuf(points, label_sets):
    """The vectorised remote-write encoder, read back by protobuf: the same series, samples in
    time order per series, bit-exact values."""
    import cramjam

    from kms.metrics.remote_write import WriteRequest, encode_batch
    from kms.metrics.samples import BatchBuilder

    b = BatchBuilder()
    series = [b.series_index(tuple(sorted({"__name__": f"m{i}", **dict(ls)}.items()))) for i, ls in enumerate(label_sets)]
    for s, v, t in points:
        b.add(series[s], t, v)
    batch = b.build()
    req = WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(encode_batch(batch))))
    got = {tuple((lb.name, lb.value) for lb in ts.labels): [(x.timestamp, np.float64(x.value).view(np.uint64))
                                                              for x in ts.samples] for ts in req.timeseries}
    want: dict = {}
    for s, v, t in sorted(points, key=lambda p: (p[0], p[2])):
        want.setdefault(batch.series[series[s]], []).append((t, np.float64(v).view(np.uint64)))
    assert got == want
