"""The series index (postings) and the decoded-block sample cache against brute force."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kms.metrics.promql.model import Matcher as M
from kms.metrics.storage.cache import BlockSamples, RowSamples, SampleCache, build_samples, decode_block
from kms.metrics.storage.index import SeriesIndex
from kms.metrics.storage.labels import labels_text
from kms.metrics.storage.tables import SAMPLE_SCHEMA

RNG = np.random.default_rng(11)
LABELS = [
    {"__name__": f"m{i % 3}", "job": f"j{i % 4}", **({"env": "prod"} if i % 5 else {}), "pod": f"p{i}"}
    for i in range(60)
]
MATCHER_SETS = [
    [M("__name__", "=", "m1")],
    [M("env", "=", "")],
    [M("env", "!=", "prod")],
    [M("env", "!=", "")],
    [M("job", "=~", "j[12]"), M("__name__", "!=", "m0")],
    [M("job", "!~", "j.*")],
    [M("pod", "=~", ".*"), M("env", "=~", "prod|")],
    [M("nope", "=", "")],
    [M("nope", "=", "x")],
    [M("pod", "=~", "p1.*"), M("env", "!~", "prod")],
]


def _brute(labels: list[dict[str, str]], ms: list[M]) -> list[int]:
    return [i for i, ls in enumerate(labels) if all(m.matches(ls.get(m.name, "")) for m in ms)]


@pytest.mark.parametrize("ms", MATCHER_SETS, ids=str)
def test_postings_match_brute_force(ms):
    idx = SeriesIndex()
    texts = [labels_text(sorted(ls.items())) for ls in LABELS]
    ids = idx.ids_of(texts)
    assert ids.tolist() == list(range(len(LABELS)))
    assert idx.ids_of(texts[::-1]).tolist() == list(range(len(LABELS)))[::-1]  # stable ids
    assert np.flatnonzero(idx.match(ms)).tolist() == _brute(LABELS, ms)


def _block_table(n_series: int, per: int, t0: int) -> tuple[pa.Table, list[str]]:
    texts = sorted(labels_text(sorted(ls.items())) for ls in LABELS[:n_series])
    sid = np.repeat(np.arange(n_series), per)
    t = np.concatenate([np.sort(RNG.choice(10_000, per, replace=False)) for _ in range(n_series)]) * 1000 + t0
    v = RNG.normal(size=len(t))
    table = pa.Table.from_arrays(
        [
            pa.array(t * 1_000_000, pa.int64()),
            pa.array([""] * len(t), pa.string()),
            pa.DictionaryArray.from_arrays(pa.array(sid, pa.int32()), pa.array(texts, pa.string())),
            pa.array(v, pa.float64()),
        ],
        schema=pa.schema(list(SAMPLE_SCHEMA)[:4]),  # as blocks written before ``value_int`` existed
    )
    return table, texts


@pytest.mark.parametrize("ms", MATCHER_SETS[:6], ids=str)
@pytest.mark.parametrize("window", [(0, 10**9), (2_000_000, 7_000_000), (9_999_000, 9_999_000), (-5, -1)])
def test_block_select_matches_brute_force(ms, window):
    t0 = 1_700_000_000_000
    table, texts = _block_table(40, 50, t0)
    idx = SeriesIndex()
    idx.ids_of(texts[::-1])  # ids need not follow the block's order
    block = decode_block(table, idx)
    assert isinstance(block, BlockSamples) and block.nbytes > 16 * table.num_rows - 1
    lo, hi = t0 + window[0], t0 + window[1]
    keep = idx.match(ms)
    ids, t, v = block.select(keep, lo, hi)
    by_search = block.select(keep, lo, hi, np.flatnonzero(keep)[:3])  # few ids: binary search
    few = np.isin(ids, np.flatnonzero(keep)[:3])
    assert [a.tolist() for a in by_search] == [ids[few].tolist(), t[few].tolist(), v[few].tolist()]
    t_ms = table.column("time_ns").to_numpy() // 1_000_000
    gid = idx.ids_of(texts)[table.column("series").chunks[0].indices.to_numpy()]
    keep = np.isin(gid, _brute(idx.labels, ms)) & (t_ms >= lo) & (t_ms <= hi)
    assert ids.tolist() == gid[keep].tolist()
    assert t.tolist() == t_ms[keep].tolist()
    assert v.tolist() == table.column("value").to_numpy()[keep].tolist()


def test_rows_in_any_order_select_like_sorted_ones_and_later_duplicates_win():
    gid = np.array([2, 0, 2, 1, 0, 2], np.int64)
    t = np.array([30, 10, 10, 20, 10, 20], np.int64)
    v = np.arange(6, dtype=np.float64)  # (0, 10) twice: the later row (value 4) must come last
    got = build_samples(gid, t, v)
    assert isinstance(got, BlockSamples)
    ids, ts, vs = got.select(np.ones(3, bool), 0, 100)
    assert list(zip(ids.tolist(), ts.tolist(), vs.tolist(), strict=True)) == [
        (0, 10, 1.0), (0, 10, 4.0), (1, 20, 3.0), (2, 10, 2.0), (2, 20, 5.0), (2, 30, 0.0)
    ]
    table, texts = _block_table(3, 5, 1_700_000_000_000)
    idx = SeriesIndex()
    shuffled = decode_block(table.take(pa.array(np.arange(table.num_rows)[::-1])), idx)
    in_order = decode_block(table, idx)
    for a, b in zip(shuffled.select(np.ones(3, bool), 0, 2**60), in_order.select(np.ones(3, bool), 0, 2**60), strict=True):
        assert a.tolist() == b.tolist()


def test_rows_spanning_centuries_fall_back_to_a_mask():
    gid = np.arange(4, dtype=np.int64) % 2
    t = np.array([-(2**61), 0, 2**61, 5], np.int64)
    got = build_samples(gid, t, np.ones(4))
    assert isinstance(got, RowSamples)
    ids, ts, _ = got.select(np.array([False, True]), -10, 10)
    assert ids.tolist() == [1, 1] and ts.tolist() == [0, 5]


def test_head_view_extends_and_merges_segments():
    class Entry:
        def __init__(self, pos, table):
            self.pos, self.table = pos, table

    cache = SampleCache()
    tables = [_block_table(5, 4, 1_700_000_000_000 + 100_000 * i)[0] for i in range(9)]
    entries = [Entry(i, tb) for i, tb in enumerate(tables)]
    for n in range(1, 10):
        view = cache.head("t", entries[:n])
        assert len(view.segments) <= 1 + n.bit_length()  # sizes shrink geometrically
        assert cache.head("t", entries[:n]) is view
        ids, ts, vs = (np.concatenate(c) for c in zip(*view.select(np.ones(len(cache.index("t")), bool), 0, 2**60), strict=True))
        assert len(ts) == sum(tb.num_rows for tb in tables[:n])
    rebuilt = cache.head("t", entries[3:])  # a cut removed the oldest entries
    assert rebuilt.positions == tuple(range(3, 9)) and len(rebuilt.rows[0]) == sum(tb.num_rows for tb in tables[3:])


class _FakeBlock:
    def __init__(self, bid: str, table: pa.Table):
        self.id = bid
        self._table = table

    def reader(self):
        return self

    def read_all(self) -> pa.Table:
        return self._table


def test_cache_keeps_blocks_within_budget_and_forgets_dead_ones():
    table, _ = _block_table(10, 100, 1_700_000_000_000)  # 1000 rows: ~16 kB decoded
    cache = SampleCache(budget_bytes=40_000)
    blocks = [_FakeBlock(f"b{i}", table) for i in range(4)]
    for b in blocks:
        assert cache.block("t", b) is not None
    st = cache.stats()
    assert st["bytes"] <= 40_000 and st["blocks"] == 2 and st["series"] == 10
    assert cache.block("t", blocks[3]) is cache.block("t", blocks[3])  # held: not decoded again
    cache.forget("t", {"b2"})
    assert cache.stats()["blocks"] == 1
    cache.forget("other", set())  # another tenant's forget leaves t alone
    assert cache.stats()["blocks"] == 1


def test_warm_decodes_new_blocks_newest_first_within_the_budget(tmp_path):
    from kms.metrics.samples import SampleBatch
    from kms.metrics.storage.tables import EXEMPLARS, SAMPLES, samples_table
    from kms.storage import LocalObjectStore, Store, StoreConfig

    store = Store(StoreConfig(data_dir=tmp_path, background_interval_s=3600), LocalObjectStore(tmp_path / "b"),
                  [SAMPLES, EXEMPLARS])  # fmt: skip
    store.open()
    try:
        series = [(("__name__", "m"), ("i", str(i))) for i in range(10)]
        for k in range(3):  # three blocks of 100 rows
            b = SampleBatch(series=series, series_idx=np.repeat(np.arange(10, dtype=np.int32), 10),
                            ts_ms=np.tile(1000 * np.arange(10) + 100_000 * k, 10), values=np.ones(100))  # fmt: skip
            store.append("t", "samples", samples_table(b))
            store.flush()
        cache = SampleCache(budget_bytes=4000)  # room for two of them (16 B a row plus run tables)
        assert cache.warm(store) == 2 and cache.stats()["blocks"] == 2
        assert cache.warm(store) == 0  # nothing new, nothing evicted
        _, blocks = store.snapshot("t", "samples")
        newest = sorted(blocks, key=lambda b: b.meta.max_time_ns)[1:]
        assert all(f"t/{b.id}" in cache._blocks for b in newest)
    finally:
        store.close()


def test_warm_keeps_a_head_decoded_only_while_queries_read_it(tmp_path):
    from kms.metrics.samples import SampleBatch
    from kms.metrics.storage.tables import EXEMPLARS, SAMPLES, samples_table
    from kms.storage import LocalObjectStore, Store, StoreConfig

    store = Store(StoreConfig(data_dir=tmp_path, background_interval_s=3600), LocalObjectStore(tmp_path / "b"),
                  [SAMPLES, EXEMPLARS])  # fmt: skip
    store.open()
    series = [(("__name__", "m"), ("i", str(i))) for i in range(10)]

    def append(k: int) -> None:
        store.append("t", "samples", samples_table(SampleBatch(
            series=series, series_idx=np.arange(10, dtype=np.int32), ts_ms=np.full(10, 1000 * k), values=np.ones(10))))

    def decoded() -> int:
        return len(cache._heads["t"].positions)

    try:
        cache = SampleCache(head_idle_s=60)
        append(0)
        cache.warm(store)
        assert decoded() == 1  # the first time (after a start: the replayed head)
        append(1)
        cache.warm(store)
        assert decoded() == 1  # nobody reads it: not decoded for nothing
        head, _ = store.snapshot("t", "samples")
        assert len(cache.head("t", head).positions) == 2  # a query brings it up to date
        append(2)
        cache.warm(store)
        assert decoded() == 3  # and from then on warm keeps it so
        cache._head_read["t"] -= 61
        append(3)
        cache.warm(store)
        assert decoded() == 3  # until queries stop for head_idle_s
    finally:
        store.close()
