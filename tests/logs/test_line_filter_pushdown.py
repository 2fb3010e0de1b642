"""Line filters pushed into the read: the buffer-wide substring search agrees with Arrow's
per-line kernel, and a source applying the filters answers exactly what the engine alone would."""

from __future__ import annotations

import dataclasses
import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kms.logs.logql import linefilter
from kms.logs.logql.ast import FilterValue, LineFilter
from kms.logs.logql.linefilter import filter_mask, substring_mask
from kms.logs.schema import LOG_SCHEMA, LOGS
from kms.logs.source import QueryStats
from kms.logs.storage import StoreLogSource, streamset
from kms.logs.storage import source as source_mod
from kms.logs.storage.chunks import LogChunkReader
from kms.metrics.promql.model import Matcher
from kms.storage import LocalObjectStore, Store, StoreConfig
from kms.storage.block import ParquetBlockReaderV1, write_block

from .test_log_source import T0, filled, put  # noqa: F401 - the fixture is used by name


@pytest.mark.parametrize("share", [1.0, 1e-9])  # the hit loop, and the fall back to Arrow's kernel
def test_substring_mask_matches_arrow(monkeypatch, share):
    monkeypatch.setattr(linefilter, "_MAX_HIT_SHARE", share)
    rnd = random.Random(7)
    for _ in range(500):
        lines = ["".join(rnd.choice("ab\u00e9") for _ in range(rnd.randrange(6))) for _ in range(rnd.randrange(1, 25))]
        arr = pa.array(lines).slice(rnd.randrange(len(lines)))  # a sliced array starts inside its buffers
        for needle in ("a", "ab", "ba", "aba", "bb", "\u00e9a", "abab"):
            want = pc.match_substring(arr, needle).to_pylist()
            assert substring_mask(arr, needle).to_pylist() == want, (lines, needle)


@pytest.mark.parametrize("op,value", [("|~", "ab|ba"), ("!~", "ab|ba"), ("|~", "a.b"), ("!=", "ab")])
def test_literal_alternation_regex_and_negation(op, value):
    arr = pa.array(["xaby", "xbay", "xaxby", "", "ab"])
    got = filter_mask(LineFilter(op, (FilterValue(value),)), arr).to_pylist()
    pattern = value if "~" in op else value.replace(".", r"\.")
    want = pc.match_substring_regex(arr, pattern).to_pylist()
    assert got == ([not w for w in want] if op.startswith("!") else want)


def collect(src, filters, direction, stats=None):
    return [r["line"] for t in src.select([Matcher("env", "=~", "prod|dev")], T0, T0 + 100, direction,
                                          line_filters=filters, stats=stats) for r in t.to_pylist()]


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("max_rows", [1000, 2])  # forward: one pass, or the windows above max_rows hits
def test_pushed_filters_answer_like_the_engine(filled, monkeypatch, direction, max_rows):  # noqa: F811
    src = StoreLogSource(filled, ["a"])
    filters = (LineFilter("|=", (FilterValue("-1"),)), LineFilter("!~", (FilterValue("api-1[02]"),)))
    everything = collect(src, (), direction)
    want = [x for x in everything if "-1" in x and x not in ("api-10", "api-12")]
    monkeypatch.setattr(source_mod, "MAX_WINDOW_ROWS", max_rows)
    stats = QueryStats()
    assert collect(src, filters, direction, stats) == want
    assert len(want) > 2
    # either way (one pass, or the windows) every line read is counted once
    assert stats.lines_processed == len(everything)
    assert stats.bytes_processed == sum(len(x) for x in everything)


def test_pushed_filters_keep_tenant_label_and_stream_matching(filled):  # noqa: F811
    src = StoreLogSource(filled, ["a", "b"])

    def got(*matchers):
        return [(r["stream"], r["line"]) for t in src.select(list(matchers), T0, T0 + 100, "forward",
                                                             line_filters=(LineFilter("|=", (FilterValue("-3"),)),))
                for r in t.to_pylist()]

    assert got(Matcher("app", "=", "api"), Matcher("__tenant_id__", "=", "b")) == [
        ('{__tenant_id__="b",app="api",env="prod"}', "tenant-b api-3")]
    a = '{__tenant_id__="a",app="api",env="prod"}'
    assert got(Matcher("app", "=", "api"), Matcher("__tenant_id__", "=", "a")) == [
        (a, f"api-{t}") for t in range(30, 40, 2)]  # web-31... are another stream


def test_one_pass_reads_only_the_selected_streams(filled, monkeypatch):  # noqa: F811
    src = StoreLogSource(filled, ["a"])
    filled.flush()
    read = []
    frames = LogChunkReader._compressed
    monkeypatch.setattr(LogChunkReader, "_compressed", lambda self, f, ids: read.extend(
        self.stream_texts[c] for c in self.stream_codes[ids]) or frames(self, f, ids))
    for _ in range(2):
        got = [r["line"] for t in src.select([Matcher("app", "=", "web")], T0, T0 + 100, "forward",
                                             line_filters=(LineFilter("|=", (FilterValue("-1"),)),))
               for r in t.to_pylist()]
        assert got == ["web-1", *(f"web-{t}" for t in range(11, 20, 2))]
    assert read and all('app="web"' in x for x in read)  # the api chunks were never decompressed


def test_one_pass_over_format_1_blocks_reads_only_the_selected_streams(tmp_path, monkeypatch):
    store = old_format_store(tmp_path)
    src = StoreLogSource(store, ["a"])
    read, block_reads = [], []
    scan, block_streams = ParquetBlockReaderV1.scan, streamset._block_streams
    monkeypatch.setattr(ParquetBlockReaderV1, "scan", lambda self, expr, columns, *a: (  # reads of lines only
        ("line" in columns and read.extend(t.column("stream").to_pylist())) or t for t in scan(self, expr, columns, *a)))
    monkeypatch.setattr(streamset, "_block_streams", lambda b: block_reads.append(b) or block_streams(b))
    streamset._CACHE.clear()
    try:
        for _ in range(2):
            got = [r["line"] for t in src.select([Matcher("app", "=", "web")], 0, 100, "forward",
                                                 line_filters=(LineFilter("|=", (FilterValue("-1"),)),))
                   for r in t.to_pylist()]
            assert got == ["web-1", *(f"web-{t}" for t in range(11, 20, 2))]
    finally:
        store.close()
    assert read and all('app="web"' in x for x in read)  # the api rows were never read
    assert len(block_reads) == 1  # the block's streams were read once, then remembered


def old_format_store(tmp_path):
    """A store holding one format-1 (Parquet rows) block of streams web and api, as older builds wrote."""
    objstore = LocalObjectStore(tmp_path / "blocks")
    rows = [(t, '{app="web",env="prod"}' if t % 2 else '{app="api",env="prod"}', f"{'web' if t % 2 else 'api'}-{t}")
            for t in range(40)]
    old_schema = pa.schema([f for f in LOG_SCHEMA if f.name != "ids"])  # before record ids
    table = pa.table({"time_ns": [r[0] for r in rows], "stream": [r[1] for r in rows], "line": [r[2] for r in rows],
                      "metadata": ["{}"] * len(rows)}, schema=old_schema)
    block = write_block(objstore, dataclasses.replace(LOGS, block_format=None, schema=old_schema), "a", table)
    assert block.meta.format_version == 1
    store = Store(StoreConfig(data_dir=tmp_path), objstore, [LOGS])
    store.open()
    return store
