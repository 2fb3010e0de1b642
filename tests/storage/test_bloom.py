"""Per-block Bloom filters on the bloom column (trace_id): the filter itself, the expression
parser that decides when it may be used, and the store skipping blocks (local disk and S3)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kms.storage import LocalObjectStore, S3ObjectStore, ScanRequest
from kms.storage.bloom import BITS_PER_KEY, BloomFilter, filter_keys, hash_column, hash_values
from kms.traces.schema import TRACES

from .conftest import TOY, span_rows

TID = pc.field("trace_id")
MIDDLE = b"\x80" + bytes(15)  # an absent id inside every block's trace_id range


def fixed(raw: bytes, width: int = 16) -> pa.Array:
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(raw) // width, [None, pa.py_buffer(raw)]
    )


def lookup(tid: bytes) -> pc.Expression:
    return TID == pa.scalar(tid, pa.binary(16))


# -- the filter ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 30_000])
@pytest.mark.parametrize("width", [16, 8, 5])
def test_no_false_negatives(n, width):
    rng = np.random.default_rng(n * 31 + width)
    ids = fixed(rng.bytes(n * width), width)
    f = BloomFilter.from_bytes(BloomFilter.build(hash_column(ids)).to_bytes())
    assert f.keys == n
    if n:
        assert f.contains(hash_values([ids[i].as_py() for i in range(n)], width)).all()
        assert f.contains(hash_column(ids)).all()


def test_nulls_slices_and_duplicates():
    rng = np.random.default_rng(3)
    vals = [rng.bytes(16) for _ in range(200)]
    arr = pa.array(vals + [None] + vals[:50], pa.binary(16))
    h = hash_column(pa.chunked_array([arr.slice(0, 120), arr.slice(120)]))
    assert len(h) == 200  # distinct, nulls left out
    sliced = arr.slice(37, 20)
    assert np.array_equal(hash_column(sliced), np.sort(hash_values(vals[37:57], 16)))
    assert BloomFilter.build(h).contains(hash_values(vals, 16)).all()


def test_false_positive_rate_near_one_percent():
    rng = np.random.default_rng(11)
    f = BloomFilter.build(hash_column(fixed(rng.bytes(16 * 50_000))))
    assert abs(len(f.bits) * 8 / f.keys - BITS_PER_KEY) < 0.1
    rate = f.contains(hash_values([rng.bytes(16) for _ in range(100_000)], 16)).mean()
    assert 0.005 < rate < 0.017, rate
    assert abs(f.estimated_fpp() - rate) < 0.004
    # Non-random ids (sequential counters) hash just as well.
    seq = np.arange(50_000, dtype=">u8")
    ids = fixed(np.stack([np.zeros(50_000, ">u8"), seq], axis=1).tobytes())
    g = BloomFilter.build(hash_column(ids))
    other = np.stack([np.ones(100_000, ">u8"), np.arange(100_000, dtype=">u8")], axis=1).tobytes()
    assert g.contains(hash_values([other[i : i + 16] for i in range(0, len(other), 16)], 16)).mean() < 0.017


def test_damaged_filter_is_rejected():
    data = BloomFilter.build(hash_values([b"x" * 16], 16)).to_bytes()
    for bad in (data[:10], b"NOTBLOOM" + data[8:], data[:-1], data[:40] + bytes([data[40] ^ 1]) + data[41:]):
        with pytest.raises(ValueError):
            BloomFilter.from_bytes(bad)


# -- when a filter expression allows skipping -----------------------------------------------


def test_filter_keys():
    a, b = bytes(range(16)), bytes(range(1, 17))
    t = pc.field("time_ns")
    assert filter_keys(lookup(a), "trace_id", 16) == [a]
    assert filter_keys(TID == a, "trace_id", 16) == [a]
    assert filter_keys(TID.isin([a, b]), "trace_id", 16) == [a, b]
    assert filter_keys(TID.isin(pa.array([a, b], pa.binary(16))), "trace_id", 16) == [a, b]
    assert filter_keys((t >= 1) & lookup(a) & (pc.field("name") == "x"), "trace_id", 16) == [a]
    assert filter_keys(TID.isin([a, b]) & lookup(b), "trace_id", 16) == [b]
    tricky = pc.field("name") == f'x") and (trace_id == "{a.hex().upper()}'
    for e in (
        None,
        lookup(a) | lookup(b),
        ~lookup(a),
        t >= 1,
        tricky,
        (t >= 1) & tricky,
        TID == "0123456789ABCDEF",  # a 16-character string could equal a 16-byte id
        TID.isin([a, None]),
        TID.isin([a] * 30),  # printed truncated
        pc.field("span_id") == a,
    ):
        assert filter_keys(e, "trace_id", 16) is None, e


# -- the store ---------------------------------------------------------------------------


class CountingStore(LocalObjectStore):
    """Counts opens of block data (every block scan opens data.parquet once)."""

    def __init__(self, root):
        super().__init__(root)
        self.data_opens = 0

    def open(self, key):
        if key.endswith("/data.parquet"):
            self.data_opens += 1
        return super().open(key)


def traces_store(make_store, tmp_path, objstore=None, **cfg):
    objstore = objstore or CountingStore(tmp_path / "data" / "blocks")
    return make_store(tmp_path / "data", objstore=objstore, signals=[TOY, TRACES], **cfg), objstore


def hits(store, tid, **kw) -> int:
    return sum(t.num_rows for t in store.scan(ScanRequest("t1", "traces", filter=lookup(tid), **kw)))


_seeds = itertools.count(1)


def load_blocks(store, n_blocks=4, rows=800):
    ids = []
    for _ in range(n_blocks):
        i = next(_seeds)  # distinct trace ids in every block
        spans = span_rows(rows, seed=i, t0=1_700_000_000_000_000_000 + i * 10**9)
        store.append("t1", "traces", spans)
        store.flush()
        ids.append(spans.column("trace_id")[5].as_py())
    return ids


def test_absent_id_opens_no_block(make_store, tmp_path):
    store, objs = traces_store(make_store, tmp_path)
    ids = load_blocks(store)
    meta = store._parts[("t1", "traces")].blocks[0].meta
    assert meta.bloom["column"] == "trace_id" and meta.bloom["keys"] == 100 and meta.bloom["fpp"] < 0.05
    rng = np.random.default_rng(5)
    before = objs.data_opens
    assert all(hits(store, rng.bytes(16)) == 0 for _ in range(50))
    # At ~1% per block some of 200 probes could pass; with 100 keys per block it stays rare.
    assert objs.data_opens - before <= 4
    assert store.stats()["bloom_skipped_blocks"] >= 190
    before = objs.data_opens
    for tid in ids:
        assert hits(store, tid) == 8
    assert objs.data_opens - before <= len(ids) + 1  # each id opens (about) only its own block
    # isin and an AND with other conditions use the filter too; OR does not.
    absent = rng.bytes(16)
    before = objs.data_opens
    got = list(store.scan(ScanRequest("t1", "traces", filter=TID.isin([ids[0], absent]))))
    assert sum(t.num_rows for t in got) == 8
    assert hits(store, absent, start_ns=0) == 0
    flt = lookup(absent) & (pc.field("kind") == 2)
    assert not list(store.scan(ScanRequest("t1", "traces", filter=flt)))
    assert objs.data_opens - before <= 2
    before = objs.data_opens
    list(store.scan(ScanRequest("t1", "traces", filter=lookup(absent) | (pc.field("kind") == 9))))
    assert objs.data_opens - before == 4


def test_found_after_compaction_and_restart(make_store, tmp_path):
    store, objs = traces_store(
        make_store, tmp_path, compaction_min_blocks=2, block_delete_delay_s=0, compaction_window_s=0
    )
    ids = load_blocks(store)
    old = [b.id for b in store._parts[("t1", "traces")].blocks]
    store.compact()
    store._reap(everything=True)
    (merged,) = store._parts[("t1", "traces")].blocks
    assert merged.meta.bloom["keys"] == 400 and merged.bloom().keys == 400
    assert all(hits(store, tid) == 8 for tid in ids)
    # Deleting a block deletes its filter.
    left = {k.split("/")[2] for k in objs.list("t1/traces/")}
    assert left == {merged.id} and not set(old) & left
    assert objs.list(f"t1/traces/{merged.id}/") == [
        f"t1/traces/{merged.id}/{n}" for n in ("bloom.bin", "data.parquet", "meta.json")
    ]
    store.close()
    store, objs = traces_store(make_store, tmp_path)
    (b,) = store._parts[("t1", "traces")].blocks
    assert isinstance(b._bloom, BloomFilter) and b.bloom().keys == 400  # loaded at open
    assert all(hits(store, tid) == 8 for tid in ids)
    assert hits(store, b"\x00" * 16) == 0 and store.stats()["bloom_skipped_blocks"] >= 1


def test_blocks_without_a_filter_are_still_scanned(make_store, tmp_path):
    """Old-format blocks (no bloom.bin, no ``bloom`` in meta.json) and blocks whose filter is
    lost or damaged are read as before."""
    plain = dataclasses.replace(TRACES, bloom_column=None)
    objs = CountingStore(tmp_path / "data" / "blocks")
    store = make_store(tmp_path / "data", objstore=objs, signals=[plain])
    ids = load_blocks(store, n_blocks=2)
    store.close()
    assert not [k for k in objs.list("") if k.endswith("bloom.bin")]
    store, objs = traces_store(make_store, tmp_path)
    ids += load_blocks(store, n_blocks=2)  # two new blocks with filters
    blocks = store._parts[("t1", "traces")].blocks
    assert [b.meta.bloom is None for b in blocks] == [True, True, False, False]
    assert all(hits(store, tid) == 8 for tid in ids)
    scans = store.stats()["block_scans"]
    assert hits(store, MIDDLE) == 0
    assert store.stats()["block_scans"] - scans == 2  # only the old blocks
    store.close()
    # A lost and a damaged filter: those blocks are read.
    objs.delete(f"t1/traces/{blocks[2].id}/bloom.bin")
    objs.put(f"t1/traces/{blocks[3].id}/bloom.bin", b"garbage")
    store, objs = traces_store(make_store, tmp_path)
    assert all(hits(store, tid) == 8 for tid in ids)
    scans = store.stats()["block_scans"]
    assert hits(store, MIDDLE) == 0
    assert store.stats()["block_scans"] - scans == 4


def test_bloom_on_s3(make_store, s3_server, tmp_path):
    bucket = s3_server.create_bucket()
    s3 = [S3ObjectStore(bucket, prefix="kms", **s3_server.objstore_kwargs()) for _ in range(2)]
    try:
        store, _ = traces_store(
            make_store, tmp_path / "n1", objstore=s3[0], compaction_min_blocks=2, compaction_window_s=0
        )
        ids = load_blocks(store, n_blocks=3)
        store.compact()
        ids += load_blocks(store, n_blocks=2)
        assert all(hits(store, tid) == 8 for tid in ids)
        store.close()
        store, _ = traces_store(make_store, tmp_path / "n2", objstore=s3[1])
        assert len(store._parts[("t1", "traces")].blocks) == 3
        assert all(hits(store, tid) == 8 for tid in ids)
        scans = store.stats()["block_scans"]
        assert all(hits(store, bytes([i]) * 16) == 0 for i in range(20))
        assert store.stats()["block_scans"] - scans <= 2
    finally:
        for st in s3:
            st.close()
