"""The generator inside the Stack: spans written through the Receiver become series of the same
tenant, read back through the Prometheus API; the flush loop; failures never fail a span write."""

from __future__ import annotations

import threading

import pytest
from gen_spans import request, table
from starlette.testclient import TestClient

from kms.config import load_config
from kms.generator import Generator, GeneratorSettings
from kms.server import Stack

TRACE = [
    {"service": "web", "id": "a2", "parent": "a1", "kind": "client", "name": "GET /api"},
    {"service": "api", "id": "b1", "parent": "a2", "kind": "server", "name": "GET /api"},
]


@pytest.fixture
def stack(tmp_path, request):
    overrides = {"data_dir": str(tmp_path / "d"), **getattr(request, "param", {})}
    s = Stack(load_config(None, overrides, {}))
    s.store.open()
    s.receiver.ready = True
    yield s
    s.store.close()


def instant(c: TestClient, q: str, tenant: str) -> list[dict]:
    r = c.get("/prometheus/api/v1/query", params={"query": q}, headers={"X-Scope-OrgID": tenant})
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def test_spans_become_series_of_their_own_tenant(stack):
    assert stack.receiver.export("traces", "team-a", request(TRACE)).accepted == 2
    assert stack.generator.flush() > 0
    with TestClient(stack.app) as c:
        edge = instant(c, "traces_service_graph_request_total", "team-a")
        assert [(r["metric"]["client"], r["metric"]["server"], r["value"][1]) for r in edge] == [("web", "api", "1")]
        assert len(instant(c, "traces_spanmetrics_calls_total", "team-a")) == 2
        assert instant(c, "traces_spanmetrics_calls_total", "team-b") == []


@pytest.mark.parametrize("stack", [{"generator.enabled": "false"}], indirect=True)
def test_disabled(stack):
    assert stack.generator is None and stack.receiver.on_spans is None
    assert stack.receiver.export("traces", "t", request(TRACE)).accepted == 2


def test_a_generator_failure_never_fails_the_write(stack, monkeypatch):
    def boom(*_):
        raise RuntimeError("generator bug")

    monkeypatch.setattr(stack.generator.tenant("t").span_metrics, "consume", boom)
    assert stack.receiver.export("traces", "t", request(TRACE)).accepted == 2
    stack.generator.flush()  # spans are processed in batches: here, at the flush
    assert stack.generator.errors == 1


def test_flush_loop_and_last_flush_on_stop():
    got: list[tuple[str, int]] = []
    flushed = threading.Event()

    def sink(tenant, batch):
        got.append((tenant, len(batch)))
        flushed.set()

    g = Generator(GeneratorSettings(collection_interval_s=0.05), sink)
    g.start()
    g.consume("x", table(TRACE))
    assert flushed.wait(5)
    g.consume("y", table(TRACE))
    g.stop()  # the last flush writes what came after the previous one
    assert {t for t, _ in got} == {"x", "y"}
