"""The S3 backend end to end against a real S3-compatible server (moto_server subprocess)."""

from __future__ import annotations

import time

import pyarrow.compute as pc
import pytest

from kms.errors import NotFound
from kms.storage import S3ObjectStore, ScanRequest
from kms.traces.schema import TRACES

from .conftest import TOY, numbers, simulate_crash, span_rows, toy_rows


@pytest.fixture
def bucket(s3_server):
    return s3_server.create_bucket()


@pytest.fixture
def s3(s3_server, bucket):
    stores = []

    def make(prefix="kms"):
        st = S3ObjectStore(bucket, prefix=prefix, **s3_server.objstore_kwargs())
        stores.append(st)
        return st

    yield make
    for st in stores:
        st.close()


def test_objstore_contract(s3, s3_server, bucket):
    st = s3(prefix="p/q")
    st.put("a/b/c.bin", b"123")
    st.put("a/b/c.bin", b"456")
    st.put("a/x.bin", b"xx")
    assert st.get("a/b/c.bin") == b"456"
    assert st.list("") == ["a/b/c.bin", "a/x.bin"] and st.list("a/b") == ["a/b/c.bin"]
    with st.open("a/b/c.bin") as f:
        f.seek(1)
        assert f.read(2) == b"56"
    with pytest.raises(NotFound):
        st.get("nope")
    st.delete("nope")
    st.delete_prefix("a/b/")
    assert st.list("") == ["a/x.bin"]
    assert all(k.startswith("p/q/") for k in s3_server.keys(bucket))


def test_store_on_s3_survives_a_lost_data_dir(make_store, s3, s3_server, bucket, tmp_path):
    store = make_store(tmp_path / "node1", objstore=s3(), signals=[TOY, TRACES])
    spans = span_rows(3000, seed=7)
    store.append("acme", "traces", spans)
    store.append("acme", "toy", toy_rows(range(100)))
    store.append("other", "toy", toy_rows(range(500, 510)))
    store.flush()
    store.append("acme", "toy", toy_rows(range(100, 110)))
    store.close()  # cuts the last rows too
    keys = s3_server.keys(bucket, "kms/")
    assert {k.split("/")[1] for k in keys if k.count("/") == 4} == {"acme", "other"}
    assert all(k.endswith(("data.parquet", "meta.json", "bloom.bin")) for k in keys if k.count("/") == 4)
    assert any(k.split("/")[2] == "traces" and k.endswith("/bloom.bin") for k in keys)

    # A new node with an empty data_dir (no WAL) reads everything back from the bucket.
    store = make_store(tmp_path / "node2", objstore=s3(), signals=[TOY, TRACES])
    assert numbers(store.scan(ScanRequest("acme", "toy"))) == list(range(110))
    assert numbers(store.scan(ScanRequest("other", "toy"))) == list(range(500, 510))
    tid = spans.column("trace_id")[42].as_py()
    hits = list(store.scan(ScanRequest("acme", "traces", filter=pc.field("trace_id") == tid)))
    assert sum(t.num_rows for t in hits) == 8 and all(t.schema == TRACES.schema for t in hits)


def test_wal_replay_then_cut_to_s3(make_store, s3):
    store = make_store(objstore=s3())
    store.append("t1", "toy", toy_rows(range(20)))
    simulate_crash(store)
    store = make_store(objstore=s3())
    assert store.stats()["replayed_rows"] == 20
    store.flush()
    simulate_crash(store)
    store = make_store(objstore=s3())
    assert (
        numbers(store.scan(ScanRequest("t1", "toy"))) == list(range(20))
        and store.stats()["replayed_rows"] == 0
    )


def test_compaction_and_retention_on_s3(make_store, s3, s3_server, bucket):
    now = time.time_ns()
    hour = 3600 * 10**9
    store = make_store(objstore=s3(), compaction_min_blocks=2, block_delete_delay_s=0)
    store.append("t1", "toy", toy_rows([1, 2], times=[now - 5 * hour, now - 5 * hour + 1]))
    store.flush()
    store.append("t1", "toy", toy_rows([3], times=[now]))
    store.flush()
    store.append("t1", "toy", toy_rows([4], times=[now]))
    store.flush()
    assert len([k for k in s3_server.keys(bucket) if k.endswith("meta.json")]) == 3
    store.config.retention_s = 3600
    store.maintain()  # retention drops the old block, compaction merges the other two
    assert numbers(store.scan(ScanRequest("t1", "toy"))) == [3, 4]
    metas = [k for k in s3_server.keys(bucket) if k.endswith("meta.json")]
    assert len(metas) == 1 and store.stats()["retention_deleted_blocks"] == 1
    assert len([k for k in s3_server.keys(bucket) if k.endswith("data.parquet")]) == 1
