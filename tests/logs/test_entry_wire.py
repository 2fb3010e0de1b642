"""Loki push entries decoded as columns (``kms.logs.entry_wire``) agree with the protobuf
decoding of each entry, and every entry shape they do not handle falls back to it."""

from __future__ import annotations

import random

import pytest

from kms.errors import BadInput
from kms.logs import loki_push
from kms.logs.batch import LogBatch, LogStream
from kms.logs.entry_wire import decode_uniform
from kms.logs.logproto import EntryAdapter, RawPushRequest
from kms.logs.loki_push import decode_push, encode_push

NOW = 1_763_800_000_123_456_789


def entries_of(body: bytes) -> list[bytes]:
    req = RawPushRequest.FromString(loki_push._snappy(body, 1 << 30))
    return [e for st in req.streams for e in st.entries]


def both_ways(body: bytes):
    """(the request decoded by decode_push, by the per-entry protobuf path)."""
    raw = loki_push._snappy(body, 1 << 30)
    return decode_push(body, "application/x-protobuf", None, 1 << 30), loki_push._decode_entries(raw)


def same(a: LogBatch, b: LogBatch) -> None:
    assert [(s.labels, s.times, s.lines, s.metadata) for s in a.streams] == \
        [(s.labels, s.times, s.lines, s.metadata) for s in b.streams]


def test_columns_match_protobuf_entries():
    rnd = random.Random(7)
    streams = []
    for k in range(4):
        s = LogStream({"app": f"a{k}"})
        for _ in range(300):
            size = rnd.choice([1, 5, 100, 130, 16_383, 16_384, 70_000])
            line = "".join(rnd.choice("abcé€ \t\"\\{}") for _ in range(size))
            t = rnd.choice([NOW, NOW - NOW % 10**9, 10**9 * rnd.randrange(1, 2**33), rnd.randrange(1, 10**9), 0])
            s.add(t, line)
        streams.append(s)
    body = encode_push(LogBatch(streams))
    assert decode_uniform(entries_of(body)) is not None  # every entry of the usual shape
    fast, slow = both_ways(body)
    same(fast, slow)
    assert fast.streams[0].line_array().to_pylist() == slow.streams[0].lines


@pytest.mark.parametrize("case", ["metadata", "empty line", "negative time"])
def test_other_shapes_fall_back(case):
    s = LogStream({"app": "x"})
    s.add(NOW, "first")
    if case == "metadata":
        s.add(NOW + 1, "with metadata", {"trace_id": "abc"})
    elif case == "empty line":
        s.add(NOW + 1, "")
    else:
        s.add(-5 * 10**9, "before 1970")
    body = encode_push(LogBatch([s]))
    assert decode_uniform(entries_of(body)) is None
    fast, slow = both_ways(body)
    same(fast, slow)
    assert len(fast.streams[0].times) == 2


def test_fields_in_another_order_fall_back():
    e = EntryAdapter(line="hello")
    e.timestamp.seconds, e.timestamp.nanos = divmod(NOW, 10**9)
    swapped = EntryAdapter(line="hello").SerializeToString() + EntryAdapter(timestamp=e.timestamp).SerializeToString()
    req = RawPushRequest()
    req.streams.add(labels='{app="x"}').entries.append(swapped)  # as sent, not re-serialized
    body = bytes(loki_push.cramjam.snappy.compress_raw(req.SerializeToString()))
    assert decode_uniform(entries_of(body)) is None
    fast, _ = both_ways(body)
    assert fast.streams[0].times == [NOW] and fast.streams[0].lines == ["hello"]


def test_invalid_utf8_is_refused():
    req = RawPushRequest()
    st = req.streams.add(labels='{app="x"}')
    st.entries.append(b"\x0a\x02\x08\x01" + b"\x12\x02\xff\xfe")
    body = bytes(loki_push.cramjam.snappy.compress_raw(req.SerializeToString()))
    assert decode_uniform(entries_of(body)) is None
    with pytest.raises(BadInput):
        decode_push(body, "application/x-protobuf", None, 1 << 30)
