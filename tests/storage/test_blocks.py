"""Cut -> blocks -> scan, the block format, compaction, retention and block-level crash leftovers."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kms.errors import Unavailable
from kms.storage import LocalObjectStore, ScanRequest
from kms.storage import block as blockmod
from kms.storage.block import FORMAT_VERSION, BlockMeta

from .conftest import numbers, toy_rows

NOW = time.time_ns()


def rows(store, tenant="t1"):
    return numbers(store.scan(ScanRequest(tenant, "toy")))


def block_dirs(root):
    return sorted(p.parent for p in root.rglob("meta.json"))


def test_cut_by_rows_and_by_age(make_store):
    store = make_store(head_max_rows=100, head_max_age_s=3600)
    store.append("t1", "toy", toy_rows(range(0, 150)))
    store.append("t2", "toy", toy_rows(range(500, 510)))
    store.maintain()
    s = {p["tenant"]: p for p in store.stats()["partitions"]}
    assert (s["t1"]["head_rows"], s["t1"]["blocks"]) == (0, 1)
    assert (s["t2"]["head_rows"], s["t2"]["blocks"]) == (10, 0)  # neither full nor old
    store.config.head_max_age_s = 0
    store.maintain()
    assert {p["tenant"]: p["blocks"] for p in store.stats()["partitions"]} == {"t1": 1, "t2": 1}
    assert rows(store) == list(range(150)) and rows(store, "t2") == list(range(500, 510))


def test_background_thread_cuts(make_store):
    store = make_store(head_max_rows=50, background_interval_s=0.05)
    store.append("t1", "toy", toy_rows(range(60)))
    deadline = time.monotonic() + 10
    while store.stats()["blocks_written"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.stats()["blocks_written"] == 1 and rows(store) == list(range(60))


def test_block_format(make_store, tmp_path):
    store = make_store()
    hosts = ["b", "a", "c"] * 100
    store.append("t1", "toy", toy_rows(range(300), times=[NOW - i for i in range(300)], hosts=hosts))
    store.flush()
    (d,) = block_dirs(tmp_path / "data" / "blocks")
    meta = json.loads((d / "meta.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["tenant"] == "t1" and meta["signal"] == "toy"
    assert (meta["rows"], meta["min_time_ns"], meta["max_time_ns"]) == (300, NOW - 299, NOW)
    assert (
        meta["bytes"] == (d / "data.parquet").stat().st_size and meta["level"] == 0 and meta["sources"] == []
    )
    assert list(meta["wal_marks"].values())[0] > 0
    f = pq.ParquetFile(d / "data.parquet")
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [64, 64, 64, 64, 44]
    col = f.metadata.row_group(0).column(0)
    assert col.compression == "ZSTD" and col.statistics.has_min_max
    t = f.read()
    keys = list(zip(t.column("host").to_pylist(), t.column("time_ns").to_pylist(), strict=True))
    assert keys == sorted(keys)  # sorted by (host, time_ns)
    assert d.name == meta["block_id"] and len(d.name) == 26


def test_scans_never_see_a_row_twice_or_miss_one_during_cuts_and_compaction(make_store):
    store = make_store(compaction_min_blocks=2, compaction_target_rows=10_000, block_delete_delay_s=5)
    stop = threading.Event()
    errors = []
    expected = [0]

    def scanner():
        while not stop.is_set():
            want = expected[0]
            got = rows(store)
            if got[:want] != list(range(want)) or len(got) != len(set(got)):
                errors.append((want, got))
            time.sleep(0.001)  # let the writer have the GIL too

    th = threading.Thread(target=scanner)
    th.start()
    try:
        for i in range(240):  # small appends: the head also merges them (every 64)
            store.append("t1", "toy", toy_rows(range(i * 2, i * 2 + 2)))
            expected[0] = i * 2 + 2
            if i % 80 == 79:
                store.flush()
            if i == 159:
                store.compact()
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:1]
    assert rows(store) == list(range(480))
    assert store.stats()["compactions"] == 1


def test_writers_racing_the_background_thread(make_store):
    store = make_store(
        head_max_rows=200, background_interval_s=0.001, compaction_min_blocks=3, block_delete_delay_s=0.5
    )

    def writer(w):
        for i in range(150):
            store.append("t1", "toy", toy_rows([w * 10_000 + i]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = sorted(w * 10_000 + i for w in range(4) for i in range(150))
    assert rows(store) == want
    assert store.stats()["cuts"] >= 1 and store.stats()["maintenance_errors"] == 0
    store.close()
    assert rows(make_store()) == want


def test_compaction_keeps_every_row_once(make_store, tmp_path):
    store = make_store(compaction_min_blocks=3, compaction_target_rows=1000, block_delete_delay_s=0)
    for i in range(7):
        store.append("t1", "toy", toy_rows(range(i * 100, i * 100 + 100)))
        store.flush()
    assert store.stats()["partitions"][0]["blocks"] == 7
    store.compact()
    store.maintain()  # deletes the replaced blocks
    part = store.stats()["partitions"][0]
    assert part["blocks"] == 1 and part["block_rows"] == 700 and store.stats()["compactions"] == 1
    assert rows(store) == list(range(700))
    (d,) = block_dirs(tmp_path / "data" / "blocks")
    meta = json.loads((d / "meta.json").read_text())
    assert meta["level"] == 1 and len(meta["sources"]) == 7
    t = pq.read_table(d / "data.parquet")
    keys = list(zip(t.column("host").to_pylist(), t.column("time_ns").to_pylist(), strict=True))
    assert keys == sorted(keys)
    store.close()
    assert rows(make_store()) == list(range(700))


def test_compaction_plan_limits():
    from kms.storage.compact import plan_compaction

    class B:
        def __init__(self, i, rows):
            self.id = f"{i:02d}"
            self.meta = BlockMeta(self.id, "t", "toy", i, i, rows, 1, 0)

    def plan(sizes, min_blocks=3, target=100, window=None):
        blocks = [B(i, r) for i, r in enumerate(sizes)]
        groups = plan_compaction(blocks, min_blocks=min_blocks, target_rows=target, window_ns=window)
        return [[b.meta.rows for b in g] for g in groups]

    assert plan([10, 10]) == []  # too few
    assert plan([10, 10, 10]) == [[10, 10, 10]]
    assert plan([60, 60, 60]) == [[60, 60]]  # a full group; the rest waits
    assert plan([100, 10, 10, 10]) == [[10, 10, 10]]  # full blocks stay
    assert plan([150, 90]) == []
    assert plan([10, 11, 12, 13, 14, 15], window=3) == [[10, 11, 12], [13, 14, 15]]  # min times 0-2, 3-5
    assert plan([10, 11, 12, 13], window=3) == [[10, 11, 12]]


def test_crash_after_compaction_before_deleting_sources(make_store, tmp_path):
    root = tmp_path / "data" / "blocks"
    store = make_store(compaction_min_blocks=2, block_delete_delay_s=0)
    for i in range(3):
        store.append("t1", "toy", toy_rows(range(i * 10, i * 10 + 10)))
        store.flush()
    saved = tmp_path / "saved"
    shutil.copytree(root, saved)
    store.compact()
    store.maintain()
    store.close()
    shutil.copytree(saved, root, dirs_exist_ok=True)  # the sources are back, next to the merged block
    assert len(block_dirs(root)) == 4
    store = make_store()
    assert rows(store) == list(range(30))
    assert store.stats()["partitions"][0]["blocks"] == 1 and len(block_dirs(root)) == 1


def test_block_without_meta_is_ignored_and_removed(make_store, tmp_path):
    root = tmp_path / "data" / "blocks"
    store = make_store()
    store.append("t1", "toy", toy_rows(range(10)))
    store.flush()
    store.close()
    (d,) = block_dirs(root)
    half = d.parent / "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    half.mkdir()
    shutil.copy(d / "data.parquet", half / "data.parquet")  # a crash between data and meta
    store = make_store()
    assert rows(store) == list(range(10)) and not half.exists()


def test_retention_deletes_old_blocks_and_old_head_rows(make_store, tmp_path):
    hour = 3600 * 10**9
    store = make_store(retention_s=None, block_delete_delay_s=0)
    store.append("t1", "toy", toy_rows([1, 2], times=[NOW - 5 * hour, NOW - 4 * hour]))
    store.flush()
    store.append("t1", "toy", toy_rows([3, 4], times=[NOW - 3 * hour, NOW - 1 * hour]))
    store.flush()
    store.append("t1", "toy", toy_rows([5], times=[NOW]))
    store.append("t1", "toy", toy_rows([6], times=[NOW - 3 * hour]))  # late and too old
    assert rows(store) == [1, 2, 3, 4, 5, 6]
    store.config.retention_s = 2 * 3600
    store.maintain()  # the first block is all older than 2 h; the second is not
    assert rows(store) == [3, 4, 5, 6] and store.stats()["retention_deleted_blocks"] == 1
    assert len(block_dirs(tmp_path / "data" / "blocks")) == 1
    store.flush()  # the cut drops head rows older than the retention
    assert rows(store) == [3, 4, 5] and store.stats()["retention_dropped_rows"] == 1
    store.apply_retention(now_ns=NOW + 2 * hour)
    store.maintain()
    assert rows(store) == [5]
    store.close()
    assert rows(make_store(retention_s=2 * 3600)) == [5]


def test_a_row_bound_keeps_the_newest_rows_to_within_one_block(make_store):
    hour = 3600 * 10**9
    store = make_store(block_delete_delay_s=0, max_rows={"toy": 3})
    for k in range(4):  # four blocks of two rows, oldest first
        store.append("t1", "toy", toy_rows([2 * k, 2 * k + 1], times=[NOW - (8 - 2 * k) * hour] * 2))
        store.flush()
    store.append("t2", "toy", toy_rows([100, 101], times=[NOW - 9 * hour] * 2))  # another tenant
    store.flush()
    store.append("t1", "toy", toy_rows([8], times=[NOW]))  # head rows count first
    store.maintain()
    assert rows(store, "t1") == [6, 7, 8]  # 1 head row + the newest block hold 3: the rest go
    assert rows(store, "t2") == [100, 101]
    assert store.stats()["retention_deleted_blocks"] == 3
    store.append("t1", "toy", toy_rows([9, 10], times=[NOW] * 2))
    store.maintain()
    assert rows(store, "t1") == [8, 9, 10]  # the head alone now holds 3 rows: the last block goes


def test_blocks_are_read_by_their_format_version(make_store, tmp_path, monkeypatch):
    root = tmp_path / "data" / "blocks"
    store = make_store()
    store.append("t1", "toy", toy_rows(range(10)))
    store.flush()
    store.close()
    (d,) = block_dirs(root)
    meta = json.loads((d / "meta.json").read_text())
    meta["format_version"] = 2
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(Unavailable, match="format version 2"):
        make_store()

    used = []

    class ReaderV2(blockmod.ParquetBlockReaderV1):
        def __init__(self, *a):
            used.append(2)
            super().__init__(*a)

    monkeypatch.setitem(blockmod.READERS, 2, ReaderV2)
    assert rows(make_store()) == list(range(10)) and used == [2]


def test_trace_id_lookup_reads_few_row_groups(make_store, tmp_path, monkeypatch):
    from kms.traces.schema import TRACES

    from .conftest import span_rows

    store = make_store(signals=[TRACES])
    batches = [span_rows(4000, seed=s) for s in range(3)]
    for b in batches:
        store.append("t1", "traces", b)
        store.flush()
    reads = []
    real = pq.ParquetFile.read_row_group

    def counting(self, i, columns=None, **kw):
        reads.append((i, tuple(columns or ())))
        return real(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    tid = batches[2].column("trace_id")[123].as_py()
    expr = pa.compute.field("trace_id") == pa.scalar(tid, pa.binary(16))
    hits = pa.concat_tables(store.scan(ScanRequest("t1", "traces", filter=expr)))
    assert hits.num_rows == 8
    narrow = [r for r in reads if set(r[1]) <= {"trace_id", "time_ns"}]
    assert len(narrow) <= 3 and len(reads) - len(narrow) == 1  # one probe per block, one full read


def test_local_objstore_contract(tmp_path):
    from kms.errors import NotFound

    st = LocalObjectStore(tmp_path / "objs")
    st.put("a/b/c.bin", b"123")
    st.put("a/b/c.bin", b"456")
    st.put("a/x.bin", pa.py_buffer(b"xx"))
    assert (
        st.get("a/b/c.bin") == b"456"
        and st.list("") == ["a/b/c.bin", "a/x.bin"]
        and st.list("a/b") == ["a/b/c.bin"]
    )
    with st.open("a/b/c.bin") as f:
        f.seek(1)
        assert f.read(1) == b"5"
    with pytest.raises(NotFound):
        st.get("nope")
    st.delete("nope")
    st.delete_prefix("a/b/")
    assert st.list("") == ["a/x.bin"]
    assert not list((tmp_path / "objs").rglob(".*tmp-*"))
