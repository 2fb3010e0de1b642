"""Service-graph pairing on fixture traces (data/servicegraph_traces.yaml) and its edge rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from gen_helpers import key, latest
from gen_spans import table

from kms.generator.names import (
    DROPPED_SPANS_TOTAL,
    REQUEST_CLIENT_SECONDS,
    REQUEST_FAILED_TOTAL,
    REQUEST_SERVER_SECONDS,
    REQUEST_TOTAL,
    UNPAIRED_SPANS_TOTAL,
)
from kms.generator.registry import Registry
from kms.generator.servicegraphs import ServiceGraphs

SCENARIOS = yaml.safe_load((Path(__file__).parent / "data" / "servicegraph_traces.yaml").read_text())


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(**kw) -> tuple[ServiceGraphs, Registry, Clock]:
    reg, clock = Registry(), Clock()
    return ServiceGraphs(reg, clock=clock, **kw), reg, clock


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name):
    sc = SCENARIOS[name]
    sg, reg, clock = make()
    for s in sc["spans"]:  # one request per span: pairing across requests, as SDKs send them
        sg.consume(table([s]), 1_000)
    if sc.get("expire"):
        clock.t += 10.5
    sg.expire(1_000)
    got = latest(reg.collect(2_000))
    edges = {k: v for k, v in got.items() if k[0] == REQUEST_TOTAL}
    assert edges == {key(REQUEST_TOTAL, **e["labels"]): e["total"] for e in sc["edges"]}
    failed = {k: v for k, v in got.items() if k[0] == REQUEST_FAILED_TOTAL}
    assert failed == {key(REQUEST_FAILED_TOTAL, **e["labels"]): e["failed"] for e in sc["edges"] if e.get("failed")}
    unpaired = {k: v for k, v in got.items() if k[0] == UNPAIRED_SPANS_TOTAL}
    assert unpaired == {key(UNPAIRED_SPANS_TOTAL, **e["labels"]): e["total"] for e in sc.get("unpaired", [])}
    for e in sc["edges"]:
        for metric, field in ((REQUEST_SERVER_SECONDS, "server_sum"), (REQUEST_CLIENT_SECONDS, "client_sum")):
            assert got[key(metric + "_count", **e["labels"])] == e["total"]
            if field in e:
                assert got[key(metric + "_sum", **e["labels"])] == pytest.approx(e[field])
    assert sg.pending() == sc.get("pending", 0)


def test_pairs_inside_one_request_and_buckets_exemplars():
    sg, reg, _ = make()
    sg.consume(table([
        {"service": "web", "id": "a2", "parent": "a1", "kind": "client", "ms": 250},
        {"service": "api", "id": "b1", "parent": "a2", "kind": "server", "ms": 150},
    ], trace="abc"), 1_000)
    batch = reg.collect(2_000)
    got = latest(batch)
    lbl = {"client": "web", "server": "api"}
    assert got[key(REQUEST_SERVER_SECONDS + "_bucket", le="0.1", **lbl)] == 0
    assert got[key(REQUEST_SERVER_SECONDS + "_bucket", le="0.2", **lbl)] == 1
    assert got[key(REQUEST_CLIENT_SECONDS + "_bucket", le="0.2", **lbl)] == 0
    assert got[key(REQUEST_CLIENT_SECONDS + "_bucket", le="0.4", **lbl)] == 1
    ex = {dict(batch.series[e.series])["__name__"]: e for e in batch.exemplars}
    assert set(ex) == {REQUEST_SERVER_SECONDS + "_bucket", REQUEST_CLIENT_SECONDS + "_bucket"}
    assert ex[REQUEST_SERVER_SECONDS + "_bucket"].labels == (("traceID", "abc".rjust(32, "0")),)
    assert dict(batch.series[ex[REQUEST_SERVER_SECONDS + "_bucket"].series])["le"] == "0.2"
    assert ex[REQUEST_SERVER_SECONDS + "_bucket"].value == pytest.approx(0.15)


def test_max_items_drops_and_counts():
    sg, reg, _ = make(max_items=2)
    for i in range(5):
        sg.consume(table([{"service": "web", "id": f"a{i}", "parent": "1", "kind": "client"}]), 1_000)
    assert sg.pending() == 2
    got = latest(reg.collect(2_000))
    assert got[key(DROPPED_SPANS_TOTAL, client="web")] == 3


def test_dimensions_with_and_without_client_server_prefix():
    spans = [
        {"service": "web", "id": "a2", "parent": "a1", "kind": "client", "resource": {"service.namespace": "shop"}},
        {"service": "api", "id": "b1", "parent": "a2", "kind": "server", "resource": {"service.namespace": "core"}},
    ]
    sg, reg, _ = make(dimensions=["service.namespace"], client_server_prefix=True)
    sg.consume(table(spans), 1_000)
    got = latest(reg.collect(2_000))
    assert got[key(REQUEST_TOTAL, client="web", server="api", client_service_namespace="shop",
                   server_service_namespace="core")] == 1
    sg, reg, _ = make(dimensions=["service.namespace"])
    sg.consume(table(spans), 1_000)
    assert latest(reg.collect(2_000))[key(REQUEST_TOTAL, client="web", server="api", service_namespace="core")] == 1


def test_virtual_node_label():
    sg, reg, clock = make(virtual_node_label=True)
    sg.consume(table([{"service": "web", "id": "a1", "kind": "server"}]), 1_000)
    clock.t += 11
    sg.expire(1_000)
    got = latest(reg.collect(2_000))
    assert got[key(REQUEST_TOTAL, client="user", server="web", connection_type="virtual_node",
                   virtual_node="client")] == 1


def test_a_retried_half_replaces_the_waiting_one():
    sg, reg, clock = make()
    for ms in (5, 7):
        sg.consume(table([{"service": "web", "id": "a2", "parent": "a1", "kind": "client", "ms": ms}]), 1_000)
    assert sg.pending() == 1
    sg.consume(table([{"service": "api", "id": "b1", "parent": "a2", "kind": "server"}]), 1_000)
    clock.t += 11
    sg.expire(1_000)
    got = latest(reg.collect(2_000))
    assert got[key(REQUEST_CLIENT_SECONDS + "_sum", client="web", server="api")] == pytest.approx(0.007)
    assert not [k for k in got if k[0] == UNPAIRED_SPANS_TOTAL] and sg.pending() == 0
