"""append -> scan round trips, the time/filter semantics, validation and tenant isolation."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kms.errors import BadInput
from kms.storage import TIME_COLUMN, LocalObjectStore, ScanRequest, validate_tenant
from kms.storage import wal as walmod
from kms.traces.schema import SPAN_SCHEMA, TRACES

from .conftest import TOY, TOY_SCHEMA, numbers, span_rows, toy_rows


def scan_all(store, tenant="t1", signal="toy", **kw) -> pa.Table | None:
    tables = list(store.scan(ScanRequest(tenant, signal, **kw)))
    return pa.concat_tables(tables) if tables else None


def test_round_trip_keeps_schema_and_rows(make_store):
    store = make_store()
    store.append("t1", "toy", toy_rows(range(0, 10)))
    store.append("t1", "toy", toy_rows(range(10, 20), hosts=["other"] * 10).to_batches()[0])  # a RecordBatch
    t = scan_all(store)
    assert t.schema == TOY_SCHEMA
    assert numbers([t]) == list(range(20))
    assert set(t.column("host").to_pylist()) == {"h0", "h1", "h2", "other"}


@pytest.mark.parametrize("where", ["head", "blocks", "both"])
@pytest.mark.parametrize(
    "start,end,filt,expected",
    [
        (None, None, None, range(30)),
        (5000, 9000, None, range(5, 10)),  # both bounds inclusive
        (5000, None, None, range(5, 30)),
        (None, 0, None, [0]),
        (29_000, 29_000, None, [29]),
        (30_000, None, None, []),
        (None, None, pc.field("host") == "h1", range(1, 30, 3)),
        (3000, 12_000, pc.field("host").isin(["h0", "h2"]), [3, 5, 6, 8, 9, 11, 12]),
        (None, None, (pc.field("value") > 10.0) & (pc.field("n") < 25), range(21, 25)),
        (None, None, pc.field("host") == "nope", []),
    ],
)
def test_time_range_and_filter(make_store, where, start, end, filt, expected):
    store = make_store()
    store.append("t1", "toy", toy_rows(range(0, 15)))
    if where != "head":
        store.flush()
    store.append("t1", "toy", toy_rows(range(15, 30)))
    if where == "blocks":
        store.flush()
    tables = list(store.scan(ScanRequest("t1", "toy", start_ns=start, end_ns=end, filter=filt)))
    assert numbers(tables) == list(expected)
    assert all(t.schema == TOY_SCHEMA and t.num_rows for t in tables)


@pytest.mark.parametrize("flush", [False, True])
def test_columns_projection_keeps_time(make_store, flush):
    store = make_store()
    store.append("t1", "toy", toy_rows(range(10)))
    if flush:
        store.flush()
    t = scan_all(store, columns=("value",), filter=pc.field("host") == "h0")
    assert t.schema.names == ["value", TIME_COLUMN]
    assert sorted(t.column(TIME_COLUMN).to_pylist()) == [0, 3000, 6000, 9000]


@pytest.mark.parametrize("flush", [False, True])
def test_spans_with_dictionary_columns(make_store, flush):
    store = make_store(signals=[TRACES])
    batches = [span_rows(200, seed=s, services=(f"svc{s}", "shared")) for s in range(3)]
    for b in batches:
        store.append("t1", "traces", b)
    if flush:
        store.flush()
    everything = list(store.scan(ScanRequest("t1", "traces")))
    assert all(t.schema == SPAN_SCHEMA for t in everything)
    assert sum(t.num_rows for t in everything) == 600
    tid = batches[1].column("trace_id")[5].as_py()
    lookup = pc.field("trace_id") == pa.scalar(tid, pa.binary(16))
    hits = pa.concat_tables(store.scan(ScanRequest("t1", "traces", filter=lookup)))
    assert hits.num_rows == 8 and set(hits.column("trace_id").to_pylist()) == {tid}
    assert hits.schema == SPAN_SCHEMA
    svc = pa.concat_tables(
        store.scan(ScanRequest("t1", "traces", filter=pc.field("service_name") == "shared"))
    )
    assert svc.num_rows == 300 and svc.schema == SPAN_SCHEMA
    assert svc.combine_chunks().column("service_name").unique().to_pylist() == ["shared"]


BAD = [
    ("wrong type", lambda: toy_rows([1]).set_column(1, "n", pa.array([1.5]))),
    ("missing column", lambda: toy_rows([1]).drop_columns(["value"])),
    ("extra column", lambda: toy_rows([1]).append_column("x", pa.array([1]))),
    ("plain instead of dictionary", lambda: toy_rows([1]).set_column(2, "host", pa.array(["h"]))),
    ("null time", lambda: toy_rows([1]).set_column(0, "time_ns", pa.array([None], pa.int64()))),
    ("not arrow", lambda: {"time_ns": [1]}),
]


@pytest.mark.parametrize("why,make", BAD, ids=[b[0] for b in BAD])
def test_bad_batches_store_nothing(make_store, why, make):
    store = make_store()
    with pytest.raises(BadInput):
        store.append("t1", "toy", make())
    assert scan_all(store) is None and store.stats()["wal_records"] == 0


def test_columns_in_another_order_are_accepted(make_store):
    store = make_store()
    t = toy_rows([1, 2])
    store.append("t1", "toy", t.select(["value", "host", "n", "time_ns"]))
    assert scan_all(store).equals(t)


@pytest.mark.parametrize(
    "req",
    [
        ScanRequest("t1", "nope"),
        ScanRequest("bad/tenant", "toy"),
        ScanRequest("t1", "toy", columns=("nope",)),
        ScanRequest("t1", "toy", filter=pc.field("nope") == 1),
        ScanRequest("t1", "toy", filter=pc.field("host") > pa.scalar(1.5)),
    ],
)
def test_bad_scans_fail_at_call_time(make_store, req):
    store = make_store()
    with pytest.raises(BadInput):
        store.scan(req)


@pytest.mark.parametrize(
    "tenant,ok",
    [
        ("anonymous", True),
        ("team-a_1.(x)*'!", True),
        ("a" * 150, True),
        ("a" * 151, False),
        (".", False),
        ("..", False),
        ("", False),
        ("a/b", False),
        ("a b", False),
        ("ü", False),
        ("..a", True),
    ],
)
def test_validate_tenant(tenant, ok):
    if ok:
        assert validate_tenant(tenant) == tenant
    else:
        with pytest.raises(BadInput):
            validate_tenant(tenant)


def test_tenants_are_kept_apart(make_store, tmp_path):
    store = make_store()
    store.append("alpha", "toy", toy_rows(range(0, 5)))
    store.append("beta", "toy", toy_rows(range(100, 103)))
    store.flush()
    store.append("alpha", "toy", toy_rows(range(5, 7)))
    assert numbers(store.scan(ScanRequest("alpha", "toy"))) == list(range(7))
    assert numbers(store.scan(ScanRequest("beta", "toy"))) == [100, 101, 102]
    assert list(store.scan(ScanRequest("gamma", "toy"))) == []
    keys = LocalObjectStore(tmp_path / "data" / "blocks").list("")
    assert {k.split("/")[0] for k in keys} == {"alpha", "beta"}
    with pytest.raises(BadInput):
        store.append("../beta", "toy", toy_rows([1]))


def test_concurrent_appends_share_fsyncs(make_store, monkeypatch):
    real = walmod._fsync

    def slow_fsync(fd):  # a slow disk makes group commit visible
        threading.Event().wait(0.01)
        real(fd)

    monkeypatch.setattr(walmod, "_fsync", slow_fsync)
    store = make_store()

    def writer(w):
        for i in range(25):
            store.append("t1", "toy", toy_rows([w * 1000 + i]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert numbers(store.scan(ScanRequest("t1", "toy"))) == sorted(
        w * 1000 + i for w in range(8) for i in range(25)
    )
    s = store.stats()
    assert s["wal_records"] == 200 and s["wal_fsyncs"] + s["wal_coalesced_syncs"] == 200
    assert s["wal_fsyncs"] < 150, s


def test_stats_figures(make_store):
    store = make_store()
    store.append("t1", "toy", toy_rows(range(10)))
    store.append("t2", "toy", toy_rows(range(5)))
    store.flush()
    store.append("t1", "toy", toy_rows(range(10, 13)))
    s = store.stats()
    assert s["head_rows"] == {"t1/toy": 3, "t2/toy": 0} and s["blocks"] == {"t1/toy": 1, "t2/toy": 1}
    assert s["block_rows"] == {"t1/toy": 10, "t2/toy": 5} and s["block_bytes"]["t1/toy"] > 0
    assert s["series_appended_rows"] == {"t1/toy": 13, "t2/toy": 5}
    assert s["appended_rows"] == 18 and s["appended_bytes"] > 0 and s["wal_bytes"] > 0
    assert s["cuts"] == 1 and s["blocks_written"] == 2 and s["flush_seconds_count"] == 1
    assert s["flush_seconds_sum"] == s["last_flush_seconds"] > 0
    assert {(p["tenant"], p["head_rows"]) for p in s["partitions"]} == {("t1", 3), ("t2", 0)}


def test_unknown_signal_on_append(make_store):
    with pytest.raises(BadInput):
        make_store().append("t1", "nope", toy_rows([1]))
    assert TOY.name == "toy"
