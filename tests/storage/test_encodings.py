"""Per-column Parquet encodings (``SignalSpec.column_encoding`` / ``dictionary_columns``): a writer
choice that leaves blocks readable as before, round-trips every value bit for bit, and shows in
the Parquet metadata. Without them the written bytes are exactly what they always were."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kms.storage import ScanRequest, SignalSpec
from kms.storage.block import FORMAT_VERSION, encode_parquet, sort_table

from .toy import TOY, TOY_SCHEMA

DICT_ENCODINGS = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
ENC = {"time_ns": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"}
TOY_ENC = dataclasses.replace(TOY, column_encoding=ENC, dictionary_columns=("host",))
STALE_NAN_BITS = 0x7FF0000000000002  # Prometheus's stale marker: a NaN with a payload


def odd_values(n: int, seed: int = 0) -> np.ndarray:
    """Noisy floats plus every special bit pattern a sample may carry."""
    rng = np.random.default_rng(seed)
    v = np.cumsum(rng.normal(10, 1, n))
    special = np.array(
        [STALE_NAN_BITS, 0x7FF8000000000000, 0xFFF8000000000001, 0x8000000000000000, 0x7FF0000000000000,
         0xFFF0000000000000, 0x0000000000000001, 0x7FEFFFFFFFFFFFFF],
        dtype=np.uint64,
    ).view(np.float64)
    v[rng.choice(n, len(special) * 4, replace=False)] = np.tile(special, 4)
    return v


def enc_rows(ns, seed: int = 0) -> pa.Table:
    ns = np.asarray(list(ns), dtype=np.int64)
    return pa.table(
        {
            "time_ns": pa.array(1000 * ns + (ns % 7), pa.int64()),  # irregular steps
            "n": pa.array(ns, pa.int64()),
            "host": pa.array([f"h{n % 3}" for n in ns.tolist()], pa.string()).dictionary_encode(),
            "value": pa.array(odd_values(len(ns), seed), pa.float64()),
        }
    )


def live_metas(root) -> list:
    """meta.json paths of the blocks not replaced by a compaction (sources linger for a grace period)."""
    metas = {p: json.loads(p.read_text()) for p in sorted(root.rglob("meta.json"))}
    gone = {s for m in metas.values() for s in m["sources"]}
    return [p for p, m in metas.items() if m["block_id"] not in gone]


def bits(col) -> list[int]:
    return col.to_numpy(zero_copy_only=False).view(np.uint64).tolist()


def by_n(tables) -> dict[int, tuple]:
    t = pa.concat_tables(tables)
    return {
        n: (ts, h, b)
        for n, ts, h, b in zip(
            t.column("n").to_pylist(), t.column("time_ns").to_pylist(), t.column("host").to_pylist(),
            bits(t.column("value")), strict=True,
        )
    }


def encodings(path) -> dict[str, set[str]]:
    md = pq.ParquetFile(path).metadata
    out: dict[str, set[str]] = {}
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            col = md.row_group(rg).column(c)
            out.setdefault(col.path_in_schema, set()).update(col.encodings)
    return out


def test_spec_validation():
    assert TOY.parquet_options() == {} and dict(TOY.column_encoding) == {} and TOY.dictionary_columns is None
    assert TOY_ENC.parquet_options() == {"use_dictionary": ["host"], "column_encoding": ENC}
    spec = SignalSpec("x", TOY_SCHEMA, column_encoding={"value": "byte_stream_split"}, dictionary_columns=["host"])
    assert spec.column_encoding == {"value": "BYTE_STREAM_SPLIT"} and spec.dictionary_columns == ("host",)
    with pytest.raises(TypeError):
        spec.column_encoding["n"] = "PLAIN"  # read-only
    hash(spec)
    bad = [
        dict(column_encoding={"nope": "PLAIN"}, dictionary_columns=()),
        dict(column_encoding={}, dictionary_columns=("nope",)),
        dict(column_encoding={"value": "SNAPPY"}, dictionary_columns=()),
        dict(column_encoding={"value": "BYTE_STREAM_SPLIT"}),  # dictionary_columns None = all
        dict(column_encoding={"value": "BYTE_STREAM_SPLIT"}, dictionary_columns=("value",)),
        dict(column_encoding={"host": "PLAIN"}, dictionary_columns=()),  # an Arrow dictionary column
    ]
    for kw in bad:
        with pytest.raises(ValueError):
            SignalSpec("x", TOY_SCHEMA, **kw)


def test_default_path_keeps_pyarrows_encodings_and_row_group_dictionaries_hold_what_they_use():
    table = sort_table(enc_rows(range(500)), TOY.sort_by)  # sorted by host: most row groups see one host
    buf = encode_parquet(table, TOY)
    enc = encodings(pa.BufferReader(buf))
    assert all(enc[c] & DICT_ENCODINGS for c in ("time_ns", "n", "host", "value"))  # pyarrow's default
    pf = pq.ParquetFile(pa.BufferReader(buf))
    assert pf.metadata.num_row_groups == -(-500 // TOY.row_group_rows)
    for rg in range(pf.metadata.num_row_groups):
        host = pf.read_row_group(rg).column("host").combine_chunks()
        assert len(host.dictionary) == len(set(host.to_pylist()))  # not the block's whole dictionary
    back = pf.read()
    assert back.drop_columns(["value"]).to_pylist() == table.drop_columns(["value"]).to_pylist()
    bits = [back.column("value").to_numpy().view(np.uint64), table.column("value").to_numpy().view(np.uint64)]
    assert bits[0].tolist() == bits[1].tolist()


@pytest.mark.parametrize("compact", [False, True])
def test_encoded_block_round_trips_bit_exact(make_store, tmp_path, compact):
    store = make_store(signals=[TOY_ENC], compaction_min_blocks=2)
    parts = [enc_rows(range(i * 300, i * 300 + 300), seed=i) for i in range(3)]
    for p in parts:
        store.append("t1", "toy", p)
        store.flush()
    if compact:
        store.compact()
    metas = live_metas(tmp_path / "data" / "blocks")
    assert len(metas) == (1 if compact else 3)
    for m in metas:
        assert json.loads(m.read_text())["format_version"] == FORMAT_VERSION  # unchanged
        enc = encodings(m.parent / "data.parquet")
        assert "DELTA_BINARY_PACKED" in enc["time_ns"] and not enc["time_ns"] & DICT_ENCODINGS
        assert "BYTE_STREAM_SPLIT" in enc["value"] and not enc["value"] & DICT_ENCODINGS
        assert enc["host"] & DICT_ENCODINGS and "PLAIN" in enc["n"] and not enc["n"] & DICT_ENCODINGS
        assert pq.read_schema(m.parent / "data.parquet").field("host").type == TOY_SCHEMA.field("host").type
    want = by_n(parts)
    assert by_n(store.scan(ScanRequest("t1", "toy"))) == want
    assert STALE_NAN_BITS in {b for _, _, b in want.values()}
    # pruned and filtered reads too (row-group statistics on the encoded columns)
    got = by_n(store.scan(ScanRequest("t1", "toy", start_ns=100_000, end_ns=200_006, filter=pc.field("host") == "h1")))
    assert got == {n: v for n, v in want.items() if v[1] == "h1" and 100_000 <= v[0] <= 200_006}


def test_blocks_with_and_without_encodings_mix(make_store, tmp_path):
    """Old (default-encoded) blocks stay readable next to new ones, and compact into an encoded one."""
    data = tmp_path / "data"
    old = make_store(data_dir=data, signals=[TOY])
    a = enc_rows(range(0, 200), seed=1)
    old.append("t1", "toy", a)
    old.close()
    new = make_store(data_dir=data, signals=[TOY_ENC], compaction_min_blocks=2)
    b = enc_rows(range(200, 400), seed=2)
    new.append("t1", "toy", b)
    new.flush()
    assert by_n(new.scan(ScanRequest("t1", "toy"))) == by_n([a, b])
    new.compact()
    (m,) = live_metas(data / "blocks")
    assert "BYTE_STREAM_SPLIT" in encodings(m.parent / "data.parquet")["value"]
    assert by_n(new.scan(ScanRequest("t1", "toy"))) == by_n([a, b])
