"""``StoreLogSource`` over a real store: the ``LogSource`` contract (direction order across
windows, blocks and head, stream matching, half-open ranges) and the index queries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kms.logs.batch import LogBatch, LogStream
from kms.logs.source import LOG_BATCH_SCHEMA
from kms.logs.storage import StoreLogSource
from kms.logs.storage import source as source_mod
from kms.metrics.promql.model import Matcher

T0 = 1_800_000_000 * 10**9


def put(store, tenant, labels, times, prefix="") -> None:
    s = LogStream(dict(labels))
    for t in times:
        s.add(T0 + t, f"{prefix}{labels.get('app')}-{t}", {"i": str(t)})
    store.append(tenant, "logs", LogBatch([s]).table())


@pytest.fixture
def filled(store, monkeypatch):
    monkeypatch.setattr(source_mod, "WINDOW_ROWS", 3)  # many windows even on small data
    monkeypatch.setattr(source_mod, "MAX_WINDOW_ROWS", 7)
    put(store, "a", {"app": "api", "env": "prod"}, range(0, 40, 2))
    put(store, "a", {"app": "web", "env": "dev"}, range(1, 40, 2))
    store.flush()  # into a block
    put(store, "a", {"app": "api", "env": "prod"}, [40, 41, 45])  # head
    put(store, "b", {"app": "api", "env": "prod"}, [3], prefix="tenant-b ")
    return store


def lines(src, matchers, lo, hi, direction):
    out = []
    for t in src.select(matchers, T0 + lo, T0 + hi, direction):
        assert t.schema.equals(LOG_BATCH_SCHEMA)
        assert t.num_rows <= 3
        out += t.column("line").to_pylist()
    return out


def test_backward_is_newest_first_across_windows_blocks_and_head(filled):
    src = StoreLogSource(filled, ["a"])
    got = lines(src, [Matcher("app", "=", "api")], 0, 100, "backward")
    assert got == [f"api-{t}" for t in [45, 41, 40, *range(38, -1, -2)]]


def test_forward_range_is_half_open_and_streams_interleave(filled):
    src = StoreLogSource(filled, ["a"])
    assert lines(src, [Matcher("env", "=~", "prod|dev")], 10, 15, "forward") == [
        "api-10", "web-11", "api-12", "web-13", "api-14"]
    assert lines(src, [Matcher("app", "=", "nope")], 0, 100, "forward") == []


def test_stream_column_and_metadata(filled):
    [t] = list(StoreLogSource(filled, ["a"]).select([Matcher("app", "=", "web")], T0 + 1, T0 + 2, "forward"))
    assert pa.types.is_dictionary(t.schema.field("stream").type)
    assert t.to_pylist() == [{"time_ns": T0 + 1, "stream": '{app="web",env="dev"}', "line": "web-1",
                              "metadata": '{i="1"}'}]


def test_tenants_are_isolated_and_unioned_on_request(filled):
    m = [Matcher("app", "=", "api")]
    assert lines(StoreLogSource(filled, ["b"]), m, 0, 100, "forward") == ["tenant-b api-3"]
    both = StoreLogSource(filled, ["a", "b"])
    assert lines(both, m, 0, 5, "forward") == ["api-0", "api-2", "tenant-b api-3", "api-4"]
    # Read together, each stream names its tenant, so equal streams stay apart and can be picked.
    [t] = list(both.select([*m, Matcher("__tenant_id__", "=", "b")], T0, T0 + 100, "forward"))
    assert t.column("stream").to_pylist() == ['{__tenant_id__="b",app="api",env="prod"}']
    assert both.label_values("__tenant_id__", [], T0, T0 + 100) == ["a", "b"]
    assert len(both.series([m], T0, T0 + 100)) == 2
    assert {k[0] for k in both.stream_stats(m, T0, T0 + 100)} == {
        '{__tenant_id__="a",app="api",env="prod"}', '{__tenant_id__="b",app="api",env="prod"}'}


def test_index_queries(filled):
    src = StoreLogSource(filled, ["a"])
    assert src.streams([], T0, T0 + 100) == [{"app": "api", "env": "prod"}, {"app": "web", "env": "dev"}]
    assert src.streams([Matcher("env", "!=", "prod")], T0, T0 + 100) == [{"app": "web", "env": "dev"}]
    assert src.streams([], T0 + 42, T0 + 45) == []  # no entries in range
    assert src.label_names([], T0, T0 + 100) == ["app", "env"]
    assert src.label_values("app", [[Matcher("env", "=", "dev")]], T0, T0 + 100) == ["web"]
    stats = src.stream_stats([Matcher("app", "=", "api")], T0, T0 + 100, step_ns=20)
    assert {k[1] - T0: v[0] for k, v in stats.items()} == {0: 10, 20: 10, 40: 3}
    assert sum(v[1] for v in stats.values()) == sum(len(f"api-{t}") for t in [*range(0, 40, 2), 40, 41, 45])


@pytest.mark.parametrize("times, direction, want", [
    ([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], "forward", [(0, 20), (20, 60), (60, 100)]),
    ([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], "backward", [(80, 100), (40, 80), (0, 40)]),
    ([5, 5, 5, 5, 5, 7], "forward", [(5, 100)]),  # equal times never straddle a window
    ([], "forward", []),
])
def test_window_bounds(monkeypatch, times, direction, want):
    monkeypatch.setattr(source_mod, "WINDOW_ROWS", 2)
    monkeypatch.setattr(source_mod, "MAX_WINDOW_ROWS", 4)
    assert source_mod.window_bounds(np.array(times, dtype=np.int64), 100, direction) == want
