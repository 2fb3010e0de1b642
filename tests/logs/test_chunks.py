"""Log blocks of format 2 (``kms.logs.storage.chunks``): round trips, scans, the line-filter read
with trigram signatures, and blocks of format 1 (Parquet rows) read and compacted next to them."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kms.logs.logql.ast import FilterValue, LineFilter
from kms.logs.logql.linefilter import filter_mask, required_literals
from kms.logs.recordids import joined, no_ids
from kms.logs.schema import LOG_SCHEMA, LOGS
from kms.logs.storage import StoreLogSource, chunks
from kms.logs.storage.chunks import Literal, LogChunkReader, ReadCounter, exact_groups
from kms.logs.storage.grams import chunk_signatures, may_contain, needle_buckets
from kms.metrics.promql.model import Matcher
from kms.storage import LocalObjectStore, Store, StoreConfig
from kms.storage.block import write_block
from kms.storage.sort import sort_table

WORDS = ["upstream", "timeout", "Refused", "GET", "/api/cart", "ok", "", "é", "ſtream", "\u212aelvin", "a\nb",
         "0x1f", "deadbeef",
         # variable parts of split chunks (linevars): numbers, hex ids, and a control byte that keeps a chunk whole
         "status=500", "12345", "4bf92f3577b34da6a3ce929d0e0e4736", "id=cafe0123456789ab,", "7", "\x01"]


def random_ids(rnd: random.Random) -> bytes:
    """Record ids (``recordids``): none, or a trace id, span id and observed time, each maybe zeros (none)."""
    if rnd.random() < 0.4:
        return b""
    parts = [rnd.randbytes(16), rnd.randbytes(8), rnd.randrange(-2, 1 << 63).to_bytes(8, "little", signed=True)]
    return b"".join(p if rnd.random() < 0.8 else bytes(len(p)) for p in parts)


def random_table(rnd: random.Random, n: int, newlines: bool = True) -> pa.Table:
    words = WORDS if newlines else [w for w in WORDS if "\n" not in w]
    streams = [f'{{app="s{k}"}}' for k in range(5)]
    meta = [rnd.choice(["{}", '{detected_level="info"}', '{trace_id="ab"}', '{a="x",z="\\\\"}']) for _ in range(n)]
    return pa.table({
        "time_ns": [rnd.randrange(1000) for _ in range(n)],
        "stream": [rnd.choice(streams) for _ in range(n)],
        "line": [" ".join(rnd.choice(words) for _ in range(rnd.randrange(6))) for _ in range(n)],
        "metadata": meta,
        "ids": [b"" if "trace_id" in m else random_ids(rnd) for m in meta],
    }, schema=LOG_SCHEMA)


def as_read(table: pa.Table) -> pa.Table:
    """``table`` as reads answer it: plain texts, record ids in the metadata texts."""
    return joined(table)


def block_of(tmp_path, table: pa.Table):
    b = write_block(LocalObjectStore(tmp_path / "blocks"), LOGS, "t", table)
    assert b.meta.format_version == 2
    return b


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64)  # many chunks, some of one line
    monkeypatch.setattr(chunks, "_DIR_ROW_GROUP", 4)
    monkeypatch.setattr(chunks, "_ENCODE_CHUNKS", 5)  # encoded a few chunks at a time, streams across runs


@pytest.mark.parametrize("newlines", [True, False])
def test_round_trip(tmp_path, small_chunks, newlines):
    table = random_table(random.Random(1), 500, newlines)
    b = block_of(tmp_path, table)
    r = b.reader()
    assert (r.dict_of >= 0).any() and (r.dict_of < 0).sum() == len(r.stream_texts)  # a dictionary chunk a stream
    assert (r.vlen > 0).any() and (r.vlen == 0).any()  # chunks split (linevars) and whole
    assert joined(r.read_all()).equals(as_read(sort_table(table, LOGS.sort_by)))


def test_time_deltas_take_each_chunks_own_width(tmp_path, small_chunks):
    """One long gap widens the deltas of its chunk alone; times read back exactly, whole and picked."""
    table = random_table(random.Random(4), 400)
    times = np.sort(np.array(table.column("time_ns").to_pylist()))
    times[len(times) // 2:] += 10**12  # a gap past 4 bytes in one chunk of each stream
    table = table.set_column(0, "time_ns", pa.array(times))
    r = block_of(tmp_path, table).reader()
    path = next((tmp_path / "blocks").rglob("data.parquet"))
    data = path.read_bytes()
    off, n, _ = chunks.TRAILER.unpack(data[-chunks.TRAILER.size:])
    d = pq.read_table(pa.BufferReader(data[off:off + n]))
    widths = {len(b) // k for b, k in zip(d.column("deltas").to_pylist(), d.column("rows").to_pylist(), strict=True)}
    assert widths == {1, 8}
    want = as_read(sort_table(table, LOGS.sort_by))
    assert joined(r.read_all()).equals(want)
    holds = pc.match_substring(pc.field("line"), "upstream")
    got = pa.concat_tables(r.select_lines(lambda s: True, 0, 10**13, [[Literal("upstream")]])).filter(holds)
    assert got.equals(want.filter(holds))


def test_blocks_without_dictionaries_stay_readable(tmp_path, monkeypatch):
    """A block as written before chunk dictionaries: ``offset`` and ``first_ns`` columns, no
    ``dict`` column, a code per entry in every chunk."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 1 << 20)  # one chunk a stream: no frame needs a dictionary
    table = random_table(random.Random(3), 300)
    b = block_of(tmp_path, table)
    path = next((tmp_path / "blocks").rglob("data.parquet"))
    data = path.read_bytes()
    off, n, magic = chunks.TRAILER.unpack(data[-chunks.TRAILER.size:])
    d = pq.read_table(pa.BufferReader(data[off:off + n]))
    rows = d.column("rows").to_numpy()
    lengths = d.column("length").to_numpy()
    old = d.drop_columns(["dict"]).append_column("offset", pa.array(len(magic) + np.cumsum(lengths) - lengths))
    times = sort_table(table, LOGS.sort_by).column("time_ns").to_numpy()
    old = old.append_column("first_ns", pa.array(times[np.cumsum(rows) - rows]))
    meta = sort_table(table, LOGS.sort_by).column("metadata").to_pylist()
    codes, at = [], 0
    for k, values in enumerate(d.column("meta_values").to_pylist()):
        codes.append(bytes(values.index(m) for m in meta[at:at + rows[k]]))
        at += rows[k]
    old = old.set_column(old.schema.get_field_index("meta_codes"), "meta_codes", pa.array(codes, pa.binary()))
    sink = pa.BufferOutputStream()
    pq.write_table(old, sink)
    buf = sink.getvalue().to_pybytes()
    path.write_bytes(data[:off] + buf + chunks.TRAILER.pack(off, len(buf), magic))
    r = LogChunkReader(b.objstore, b.meta, LOGS)
    assert (r.dict_of == -1).all()
    assert joined(r.read_all()).equals(as_read(sort_table(table, LOGS.sort_by)))
    holds = pc.match_substring(pc.field("line"), "upstream")
    got = pa.concat_tables(r.select_lines(lambda s: True, 0, 10**6, [[Literal("upstream")]])).filter(holds)
    want = as_read(sort_table(table, LOGS.sort_by)).filter(holds)
    assert want.num_rows and got.equals(want)


def test_scan_filters_and_projects_like_arrow(tmp_path, small_chunks):
    table = random_table(random.Random(2), 400)
    want_all = as_read(sort_table(table, LOGS.sort_by)).append_column("ids", no_ids(table.num_rows))
    r = block_of(tmp_path, table).reader()
    t = pc.field("time_ns")
    for expr in (None, (t >= 100) & (t <= 300), pc.field("stream").isin(["{app=\"s1\"}", "{app=\"s3\"}"]) & (t < 500),
                 pc.field("line") == "ok", t > 5000):
        for columns in (["time_ns", "stream"], ["stream", "line", "metadata", "time_ns"], ["line", "time_ns"],
                        ["metadata", "ids", "time_ns"]):
            want = (want_all if expr is None else want_all.filter(expr)).select(columns)
            got = list(r.scan(expr, columns, True))
            got = pa.concat_tables(got) if got else want.schema.empty_table()
            assert got.equals(want), (expr, columns)


@pytest.mark.parametrize("seed", range(5))
def test_select_lines_keeps_every_hit(tmp_path, small_chunks, seed):
    rnd = random.Random(seed)
    table = random_table(rnd, 600)
    r = block_of(tmp_path, table).reader()
    assert isinstance(r, LogChunkReader)
    filters = [("|=", "upstream time"), ("|=", "pstream"), ("|~", "(?i)timeout|refused"), ("|~", "(?i)KELVIN"),
               ("|~", "(?i)stream"), ("|=", "Refused"), ("|=", "dead"), ("|~", "a.b"), ("!=", "ok"), ("|=", "é"),
               ("|=", "500"), ("|=", "cafe"), ("|=", "ab, time"), ("|=", "=cafe"), ("|=", "0e4736 "), ("|~", "id=.*ok"),
               ("|=", "status"), ("|=", "f2")]
    for op, value in filters:
        f = LineFilter(op, (FilterValue(value),))
        lits = required_literals(f)
        groups = [[Literal(x, cs) for x, cs in lits]] if lits else []
        keep = {'{app="s1"}', '{app="s2"}'}
        counter = ReadCounter()
        got = list(r.select_lines(lambda s, keep=keep: s in keep, 200, 700, groups, counter))
        got = pa.concat_tables(got) if got else None
        got_hits = [] if got is None else got.filter(filter_mask(f, got.column("line").combine_chunks())).to_pylist()
        base = as_read(sort_table(table, LOGS.sort_by))
        base = base.filter(pc.field("stream").isin(list(keep)) & (pc.field("time_ns") >= 200) & (pc.field("time_ns") <= 700))
        want = base.filter(filter_mask(f, base.column("line").combine_chunks())).to_pylist()
        assert got_hits == want, (op, value)
        assert counter.lines == base.num_rows
        if groups and exact_groups(groups):  # without lines: exactly the hits, nothing to filter again
            bare = list(r.select_lines(lambda s, keep=keep: s in keep, 200, 700, groups, ReadCounter(), lines=False))
            bare = pa.concat_tables(bare).to_pylist() if bare else []
            assert [{**x, "line": ""} for x in want] == bare, (op, value)
        # chunks partly in the range count their bytes by the share of their entries in it
        assert counter.bytes == pytest.approx(sum(len(x.encode()) for x in base.column("line").to_pylist()), rel=0.1)


def test_signatures_never_drop_a_chunk_holding_the_needle():
    rnd = random.Random(3)
    alphabet = "abcdefkKsSxyzABC \u212a\u017f-0"
    for _ in range(300):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(40)))
        data = np.frombuffer(text.encode() + b"\n", dtype=np.uint8)  # a chunk's last line ends with "\n"
        sig = chunk_signatures(data, np.array([0, len(data)]))
        for _ in range(5):
            lo = rnd.randrange(len(text) + 1)
            needle = text[lo:lo + rnd.randrange(1, 8)]
            assert may_contain(sig, needle_buckets(needle, True))[0], (text, needle)
            flipped = needle.swapcase()
            assert may_contain(sig, needle_buckets(flipped, False))[0], (text, flipped)
        # RE2's (?i)k also matches the Kelvin sign
        assert may_contain(sig, needle_buckets("kelvin", False))[0] or "\u212aelvin".lower() not in text.lower()


def test_signatures_skip_chunks_without_the_needle():
    data = np.frombuffer(b"GET /api/cart 200 deadbeef\n" * 10 + b"upstream timeout\n", dtype=np.uint8)
    bounds = np.array([0, 270, len(data)])
    sig = chunk_signatures(data, bounds)
    assert may_contain(sig, needle_buckets("upstream timeout", True)).tolist() == [False, True]
    assert may_contain(sig, needle_buckets("UPSTREAM", False)).tolist() == [False, True]
    assert may_contain(sig, needle_buckets("beef", True)).tolist() == [True, True]  # hex letters: not indexed


def test_required_literals():
    def lits(op, *values):
        return required_literals(LineFilter(op, tuple(FilterValue(v) for v in values)))

    assert lits("|=", "a", "b") == [("a", True), ("b", True)]
    assert lits("|~", "timeout|refused") == [("timeout", True), ("refused", True)]
    assert lits("|~", "(?i)timeout|refused") == [("timeout", False), ("refused", False)]
    assert lits("|~", "time.ut") is None
    assert lits("!=", "a") is None
    assert lits("|=", "") is None
    assert lits("|>", "<_> x") is None
    assert required_literals(LineFilter("|=", (FilterValue("1.2.3.4", is_ip=True),))) is None


def test_old_format_blocks_read_and_compact_with_new_ones(tmp_path):
    objstore = LocalObjectStore(tmp_path / "blocks")
    old = random_table(random.Random(4), 300)
    b1 = write_block(objstore, dataclasses.replace(LOGS, block_format=None), "t", old)
    assert b1.meta.format_version == 1
    store = Store(StoreConfig(data_dir=tmp_path, compaction_min_blocks=2), objstore, [LOGS])
    store.open()
    try:
        new = random_table(random.Random(5), 300)
        store.append("t", "logs", new)
        store.flush()
        versions = sorted(b.meta.format_version for b in store.snapshot("t", "logs")[1])
        assert versions == [1, 2]
        src = StoreLogSource(store, ["t"])
        both = sort_table(pa.concat_tables([old, new]), ("time_ns",))

        def count(filters):
            return sum(t.num_rows for t in src.select([Matcher("app", "=~", "s.*")], 0, 2000, "forward",
                                                      line_filters=filters))

        f = (LineFilter("|=", (FilterValue("upstream"),)),)
        want = both.filter(filter_mask(f[0], both.column("line").combine_chunks())).num_rows
        assert count(f) == want and count(()) == both.num_rows
        store.compact()
        blocks = store.snapshot("t", "logs")[1]
        assert [b.meta.format_version for b in blocks] == [2] and blocks[0].meta.rows == 600
        assert count(f) == want and count(()) == both.num_rows
    finally:
        store.close()


def test_compaction_merges_format_2_blocks_without_decoding(tmp_path, small_chunks, monkeypatch):
    store = Store(StoreConfig(data_dir=tmp_path, compaction_min_blocks=2), LocalObjectStore(tmp_path / "blocks"),
                  [LOGS])
    store.open()
    try:
        tables = [random_table(random.Random(10 + k), 200) for k in range(3)]
        for k, t in enumerate(tables):
            if k == 2:  # another block unit and width: ms times
                t = t.set_column(0, "time_ns", pc.multiply(t.column("time_ns"), 1_000_000))
                tables[2] = t
            store.append("t", "logs", t)
            store.flush()
        monkeypatch.setattr(LogChunkReader, "read_all", lambda self: pytest.fail("merged by decoding"))
        store.compact()
        blocks = store.snapshot("t", "logs")[1]
        assert len(blocks) == 1 and blocks[0].meta.rows == 600 and blocks[0].meta.format_version == 2
        keys = [("stream", "ascending"), ("time_ns", "ascending"), ("line", "ascending"), ("metadata", "ascending")]
        got = joined(pa.concat_tables(blocks[0].reader().scan(None, list(LOG_SCHEMA.names), False))).sort_by(keys)
        assert got.equals(as_read(pa.concat_tables(tables)).sort_by(keys))
        f = LineFilter("|=", (FilterValue("upstream"),))
        hits = pa.concat_tables(blocks[0].reader().select_lines(lambda s: True, 0, 10**12, [[Literal("upstream")]]))
        want = got.filter(filter_mask(f, got.column("line").combine_chunks()))
        assert hits.filter(filter_mask(f, hits.column("line").combine_chunks())).sort_by(keys).equals(want)
    finally:
        store.close()


def test_select_lines_with_several_filters(tmp_path, small_chunks):
    table = random_table(random.Random(7), 800, newlines=False)
    r = block_of(tmp_path, table).reader()
    filters = [LineFilter("|=", (FilterValue("upstream"),)), LineFilter("|~", (FilterValue("timeout|Refused"),)),
               LineFilter("!=", (FilterValue("ok"),))]
    groups = [[Literal(x, cs) for x, cs in lits] for f in filters if (lits := required_literals(f))]
    assert len(groups) == 2
    got = pa.concat_tables(r.select_lines(lambda s: True, 0, 10**6, groups))
    base = as_read(sort_table(table, LOGS.sort_by))
    for f in filters:
        got = got.filter(filter_mask(f, got.column("line").combine_chunks()))
        base = base.filter(filter_mask(f, base.column("line").combine_chunks()))
    assert got.num_rows and got.equals(base)


@pytest.mark.parametrize("repeated_first", [0, 5000])
def test_round_trip_with_distinct_metadata_per_entry(tmp_path, small_chunks, repeated_first):
    # many distinct texts (ids in structured metadata): taken as distinct when the first rows
    # say so, else dictionary-encoded, the per-chunk dictionaries built by sorting
    rnd = random.Random(8)
    table = random_table(rnd, 10_000, newlines=False)
    table = table.set_column(3, "metadata", pa.array(['{trace_id="0"}'] * repeated_first + [
        f'{{trace_id="{rnd.getrandbits(64):016x}"}}' for _ in range(table.num_rows - repeated_first)]))
    table = table.set_column(4, "ids", no_ids(table.num_rows))
    b = block_of(tmp_path, table)
    assert len(b.reader().rows) * table.num_rows > 1 << 24
    assert joined(b.reader().read_all()).equals(as_read(sort_table(table, LOGS.sort_by)))


@pytest.mark.parametrize("small", [True, False])
def test_directory_columns_of_picked_entries(tmp_path, monkeypatch, small):
    # a few entries (sums of deltas in place) or many (every entry, then taken): the same answer
    if small:
        monkeypatch.setattr(chunks, "CHUNK_BYTES", 256)
        monkeypatch.setattr(chunks, "_DIR_ROW_GROUP", 3)
    rnd = random.Random(11)
    table = random_table(rnd, 3000, newlines=False)
    table = table.set_column(0, "time_ns", pa.array(sorted(rnd.randrange(10**12) * 1000 for _ in range(3000))))
    r = block_of(tmp_path, table).reader()
    base = as_read(sort_table(table, LOGS.sort_by))
    with r._open() as f:
        d = chunks.Directory(r, f)
        for ids in (np.arange(len(r.rows)), np.arange(0, len(r.rows), 3), np.array([len(r.rows) - 1])):
            times, meta = d.columns(ids, True)
            entries = np.concatenate([np.arange(r.row_start[i], r.row_start[i + 1]) for i in ids])
            assert times.tolist() == base.column("time_ns").to_numpy()[entries].tolist()
            assert meta.to_pylist() == base.column("metadata").take(pa.array(entries)).to_pylist()
            for share in (0.01, 0.5, 1.0):
                pick = np.flatnonzero(np.array([rnd.random() < share for _ in entries]))
                pick = np.unique(np.concatenate([pick, [len(entries) - 1]]))
                t2, m2 = d.columns(ids, True, pick)
                assert t2.tolist() == times[pick].tolist()
                assert m2.to_pylist() == meta.take(pa.array(pick)).to_pylist()
                assert d.columns(ids, False, pick)[0].tolist() == times[pick].tolist()
            assert d.columns(ids, True, np.empty(0, np.int64))[1].to_pylist() == []
