"""Record ids (``kms.logs.recordids``): OTLP trace and span ids and observed times kept as bytes
read back as the metadata text the record-by-record mapping writes, from the head, from blocks
and after a restart; WAL records of the schema before them still replay."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from kms.logs import ingest
from kms.logs.enrich import enrich
from kms.logs.recordids import IDS_BYTES, id_chars, id_matrix, ids_array, join_texts, joined
from kms.logs.schema import LOG_SCHEMA, LOGS
from kms.logs.storage import StoreLogSource
from kms.metrics.promql.model import Matcher
from kms.metrics.storage.labels import labels_text, parse_labels_text
from kms.storage import LocalObjectStore, Store, StoreConfig

NAMES = ["a", "detected_level", "observed", "observed_timestamp_x", "p", "span", "span_id_x", "spam", "t",
         "trace", "trace_id0", "traced", "z", "zz_last"]
VALUES = ["", "x", 'q"uote', "back\\slash", "new\nline", "é", "a,b", "k=v"]


def random_ids(rnd: random.Random) -> bytes:
    parts = [rnd.randbytes(16), rnd.randbytes(8), rnd.randrange(-2**63, 2**63).to_bytes(8, "little", signed=True)]
    return b"".join(p if rnd.random() < 0.7 else bytes(len(p)) for p in parts)


def id_pairs(ids: bytes) -> dict[str, str]:
    out = {}
    if any(ids[:16]):
        out["trace_id"] = ids[:16].hex()
    if any(ids[16:24]):
        out["span_id"] = ids[16:24].hex()
    observed = int.from_bytes(ids[24:], "little", signed=True)
    if observed:
        out["observed_timestamp"] = str(observed)
    return out


def test_texts_joined_as_labels_text_writes_them():
    rnd = random.Random(1)
    rest, ids, want = [], [], []
    for _ in range(3000):
        md = {k: rnd.choice(VALUES) for k in rnd.sample(NAMES, rnd.randrange(len(NAMES)))}
        b = random_ids(rnd) if rnd.random() < 0.8 else b""
        rest.append(labels_text(sorted(md.items())))
        ids.append(b)
        want.append(labels_text(sorted({**md, **id_pairs(b)}.items())))
    m = id_matrix(pa.array(ids, pa.binary()))
    got = join_texts(pa.array(rest), m).to_pylist()
    assert got == want
    assert [parse_labels_text(x) for x in got[:50]] == [parse_labels_text(x) for x in want[:50]]
    assert id_chars(m).tolist() == [sum(len(k) + len(v) for k, v in id_pairs(b).items()) for b in ids]
    # as a dictionary column, and through ids_array (empty where all zeros)
    assert join_texts(pa.array(rest).dictionary_encode(), m).to_pylist() == want
    assert np.array_equal(id_matrix(ids_array(m)), m)
    assert sum(len(x) == IDS_BYTES for x in ids_array(m).to_pylist()) == int(m.any(axis=1).sum())


def test_a_text_not_of_labels_text_is_never_read_past():
    m = np.zeros((3, IDS_BYTES), np.uint8)
    m[:, 0] = 1
    got = join_texts(pa.array(['{a="unterminated}', "{b", "{}"]), m).to_pylist()
    assert got[2] == '{trace_id="01000000000000000000000000000000"}' and all(x.endswith("}") for x in got)


def otlp_request(rnd: random.Random) -> bytes:
    req = ExportLogsServiceRequest()
    for svc in ("api", "web"):
        rl = req.resource_logs.add()
        rl.resource.attributes.add(key="service.name").value.string_value = svc
        sl = rl.scope_logs.add()
        sl.scope.name = "app"
        for i in range(300):
            rec = sl.log_records.add(time_unix_nano=10**18 + i * 1000, severity_number=9, severity_text="INFO")
            if i % 3:
                rec.trace_id, rec.span_id = rnd.randbytes(16), rnd.randbytes(8)
            if i % 5:
                rec.observed_time_unix_nano = 10**18 + i * 1000 + rnd.randrange(-10**6, 10**6)
            rec.body.string_value = f"{svc} request {i}"
            rec.attributes.add(key="code.line.number").value.int_value = i % 4
    return req.SerializeToString()


def decoded(body: bytes, columns: bool) -> pa.Table:
    fn = ingest._decode_columns
    if not columns:
        ingest._decode_columns = lambda body, now_ns: None
    try:
        d = ingest.decode_logs(body, 10**18)
    finally:
        ingest._decode_columns = fn
    enrich(d.batch)
    return d.batch.table()


def read(store: Store) -> list[tuple]:
    src = StoreLogSource(store, ["t"])
    rows = [r for t in src.select([Matcher("service_name", "=~", ".+")], 0, 2 * 10**18, "forward")
            for r in zip(t.column("time_ns").to_pylist(), t.column("line").to_pylist(),
                         t.column("metadata").to_pylist(), strict=True)]
    return sorted(rows)


def test_ids_read_back_from_the_head_blocks_and_the_wal(tmp_path):
    body = otlp_request(random.Random(2))
    table = decoded(body, True)
    assert table.schema.equals(LOG_SCHEMA) and (id_matrix(table.column("ids")).any(axis=1)).sum() == 560
    assert len(table.column("metadata").combine_chunks().dictionary) <= 8  # texts shared by the records
    slow = joined(decoded(body, False))
    want = sorted(zip(slow.column("time_ns").to_pylist(), slow.column("line").to_pylist(),
                      slow.column("metadata").to_pylist(), strict=True))
    assert any("trace_id=" in m and "observed_timestamp=" in m for *_, m in want)

    def make():
        s = Store(StoreConfig(data_dir=tmp_path / "d", background_interval_s=3600),
                  LocalObjectStore(tmp_path / "d" / "blocks"), [LOGS])
        s.open()
        return s

    store = make()
    store.append("t", "logs", table)
    assert read(store) == want  # the head
    store.close(flush=False)
    store = make()  # the WAL
    assert read(store) == want
    store.flush()
    assert read(store) == want  # a block
    store.close()


def test_a_wal_of_the_schema_before_record_ids_replays(tmp_path):
    """WAL records written before ``ids`` existed (plain-string texts, no ``ids``) replay."""
    old = pa.schema([pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
                     for f in LOG_SCHEMA if f.name != "ids"])
    rows = pa.table({"time_ns": [5, 6], "stream": ['{service_name="api"}'] * 2, "line": ["a", "b"],
                     "metadata": ['{trace_id="ab"}', "{}"]}, schema=old)
    cfg = StoreConfig(data_dir=tmp_path / "d", background_interval_s=3600)
    store = Store(cfg, LocalObjectStore(tmp_path / "d" / "blocks"),
                  [dataclasses.replace(LOGS, schema=old, block_format=None)])
    store.open()
    store.append("t", "logs", rows)
    store.close(flush=False)
    store = Store(cfg, LocalObjectStore(tmp_path / "d" / "blocks"), [LOGS])
    store.open()
    try:
        want = [(5, "a", '{trace_id="ab"}'), (6, "b", "{}")]
        assert read(store) == want
        store.flush()
        assert read(store) == want
    finally:
        store.close()
