"""The WAL byte formats: Hypothesis round trips, and no crash on arbitrary bytes."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms.storage.walrec import (
    FrameDamage,
    WalCorrupt,
    decode_record,
    encode_record,
    find_intact_frame,
    frame,
    framed_record,
    iter_frames,
    parse_segment_header,
    segment_header,
)

from .conftest import toy_rows

tenants = st.text(alphabet="abcXYZ019!-_.*'()", min_size=1, max_size=40)
signals = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
def test_frames_round_trip(payloads):
    buf = b"".join(frame(p) for p in payloads)
    assert [bytes(p) for _, p in iter_frames(buf)] == payloads


@given(st.binary(max_size=600))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_frame_reader_never_crashes(data):
    try:
        for _ in iter_frames(data):
            pass
    except FrameDamage as d:
        assert 0 <= d.offset < len(data)
        find_intact_frame(data, d.offset)


@given(st.binary(max_size=600))
def test_record_decoder_never_crashes(data):
    try:
        decode_record(data)
    except WalCorrupt:
        pass


@given(
    tenants, signals, st.lists(st.integers(-(2**62), 2**62), max_size=50), st.sampled_from(["a", "b", "ccc"])
)
@settings(max_examples=50, deadline=None)
def test_record_round_trip(tenant, signal, times, host):
    table = toy_rows(range(len(times)), times=times, hosts=[host] * len(times))
    rec = decode_record(encode_record(tenant, signal, table))
    assert (rec.tenant, rec.signal) == (tenant, signal)
    assert rec.table.equals(table)
    framed = framed_record(tenant, signal, table)  # the same record, framed in place
    [(_, payload)] = list(iter_frames(framed))
    assert bytes(payload) == encode_record(tenant, signal, table).to_pybytes()
    assert bytes(framed) == frame(payload)


@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_single_bit_flip_is_detected(payload, data):
    buf = bytearray(frame(payload))
    bit = data.draw(st.integers(0, len(buf) * 8 - 1))
    buf[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FrameDamage):
        list(iter_frames(bytes(buf)))


def test_damage_is_reported_where_it_is():
    good = [frame(b"\x01" + bytes([i]) * 50) for i in range(3)]
    buf = bytearray(b"".join(good))
    second = len(good[0])
    buf[second + 20] ^= 0xFF
    seen = []
    with pytest.raises(FrameDamage) as e:
        for off, _ in iter_frames(bytes(buf)):
            seen.append(off)
    assert seen == [0] and e.value.offset == second
    assert find_intact_frame(bytes(buf), second) == second + len(good[1])
    assert find_intact_frame(b"".join(good)[: second + 10], second) is None  # a torn tail


def test_segment_header():
    wal_id = bytes(range(16))
    assert parse_segment_header(segment_header(wal_id)) == wal_id
    for bad in (b"", b"KMSWAL", b"XMSWAL\x01\x00" + wal_id, b"KMSWAL\x09\x00" + wal_id):
        with pytest.raises(WalCorrupt):
            parse_segment_header(bad)


def test_record_with_dictionary_chunks_round_trips():
    t = pa.concat_tables([toy_rows([1, 2], hosts=["a", "b"]), toy_rows([3], hosts=["z"])])
    assert decode_record(encode_record("t", "toy", t)).table.to_pylist() == t.to_pylist()
