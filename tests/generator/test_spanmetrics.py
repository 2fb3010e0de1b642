"""Span metrics: labels, dimensions, buckets, sizes and exemplars; the registry's output rules."""

from __future__ import annotations

import numpy as np
import pytest
from gen_helpers import key, latest
from gen_spans import request, table
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from kms.generator.names import CALLS_TOTAL, DURATION_ALIAS, LATENCY, SIZE_TOTAL
from kms.generator.registry import Registry
from kms.generator.spanmetrics import SpanMetrics, group_rows, span_sizes
from kms.metrics.samples import is_stale

SPANS = [
    {"service": "web", "id": "1", "kind": "server", "name": "GET /", "ms": 3, "trace": "a1"},
    {"service": "web", "id": "2", "kind": "server", "name": "GET /", "ms": 5, "trace": "a2"},
    {"service": "web", "id": "3", "kind": "server", "name": "GET /", "ms": 100, "status": "error", "trace": "a3"},
    {"service": "db", "id": "4", "kind": "client", "name": "SELECT", "ms": 0.5, "trace": "a4",
     "attrs": {"http.method": "GET", "service": "x"}},
    {"service": "db", "id": "5", "kind": "client", "name": "SELECT", "ms": 0.5, "trace": "a5",
     "attrs": {"http.method": 7}, "resource": {"deployment.environment": "prod"}},
]
LBL = {"service": "web", "span_name": "GET /", "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET"}


def collect(spans, **kw):
    reg = Registry()
    SpanMetrics(reg, **kw).consume(table(spans), 1_000)
    batch = reg.collect(120_000)
    return latest(batch), batch


def test_calls_latency_buckets_and_exemplars():
    got, batch = collect(SPANS)
    assert got[key(CALLS_TOTAL, **LBL)] == 2
    assert got[key(CALLS_TOTAL, **{**LBL, "status_code": "STATUS_CODE_ERROR"})] == 1
    assert got[key(LATENCY + "_count", **LBL)] == 2
    assert got[key(LATENCY + "_sum", **LBL)] == pytest.approx(0.008)
    cum = {le: got[key(LATENCY + "_bucket", le=le, **LBL)] for le in ("0.002", "0.004", "0.008", "16.384", "+Inf")}
    assert cum == {"0.002": 0, "0.004": 1, "0.008": 2, "16.384": 2, "+Inf": 2}
    ex = {(dict(batch.series[e.series])["le"], dict(batch.series[e.series])["status_code"]): e for e in batch.exemplars}
    assert ex[("0.004", "STATUS_CODE_UNSET")].labels == (("traceID", "a1".rjust(32, "0")),)
    assert ex[("0.008", "STATUS_CODE_UNSET")].value == pytest.approx(0.005)
    assert ex[("0.128", "STATUS_CODE_ERROR")].labels == (("traceID", "a3".rjust(32, "0")),)
    assert len(batch.exemplars) == 4  # one per (series, bucket) observed: 0.004, 0.008, 0.128, 0.002 (db)
    # every counter and bucket starts with a 0 at the end of the previous minute, then its value
    series = batch.by_series()
    calls = next(v for ls, v in series.items() if dict(ls) == {"__name__": CALLS_TOTAL, **LBL})
    assert calls == [(119_999, 0.0), (120_000, 2.0)]


def test_dimensions_resource_then_span_and_collisions():
    got, _ = collect(SPANS, dimensions=["http.method", "deployment.environment", "service"])  # service -> __service
    db = {"service": "db", "span_name": "SELECT", "span_kind": "SPAN_KIND_CLIENT", "status_code": "STATUS_CODE_UNSET"}
    assert got[key(CALLS_TOTAL, **db, http_method="GET", __service="x")] == 1
    assert got[key(CALLS_TOTAL, **db, http_method="7", deployment_environment="prod")] == 1  # ints as text
    assert got[key(CALLS_TOTAL, **LBL)] == 2  # absent attributes add no label


def test_size_is_the_serialized_span():
    body = request([s | {"status": "error"} for s in SPANS])
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    want = [sp.ByteSize() for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    assert span_sizes(table([s | {"status": "error"} for s in SPANS])).tolist() == want
    got, _ = collect(SPANS[:1])
    assert got[key(SIZE_TOTAL, **LBL)] > 40


def test_custom_buckets_and_duration_alias():
    got, _ = collect(SPANS[:2], buckets=[0.004], duration_alias=True)
    for name in (LATENCY, DURATION_ALIAS):
        assert {k[1] for k in got if k[0] == name + "_bucket"} == {
            frozenset({**LBL, "le": le}.items()) for le in ("0.004", "+Inf")}
        assert got[key(name + "_bucket", le="0.004", **LBL)] == 1


def test_group_rows_never_overflows():
    big = np.arange(1000, dtype=np.int64) * (2**40)
    group, first = group_rows([big, big[::-1], np.zeros(1000, np.int64), big])
    assert len(first) == 1000 and len(np.unique(group)) == 1000
    group, first = group_rows([np.array([1, 2, 1]), np.array([5, 5, 5])])
    assert group[0] == group[2] != group[1]


def test_cumulative_across_collections_and_staleness():
    reg = Registry(stale_ms=60_000)
    sm = SpanMetrics(reg)
    sm.consume(table(SPANS[:1]), 1_000)
    b1 = latest(reg.collect(10_000))
    sm.consume(table(SPANS[:2]), 20_000)
    b2 = reg.collect(20_000)
    assert latest(b2)[key(CALLS_TOTAL, **LBL)] == 3 and b1[key(CALLS_TOTAL, **LBL)] == 1
    assert all(len(p) == 1 for p in b2.by_series().values())  # no second initial 0
    assert reg.collect(20_000).ts_ms.min() == 20_001  # never twice at one timestamp
    gone = reg.collect(90_000)  # idle 70 s > 60 s: one staleness marker per series, then nothing
    assert len(gone) and is_stale(gone.values).all()
    assert len(reg.collect(100_000)) == 0 and reg.active_series() == 0


def test_resource_attribute_wins_over_span_attribute():
    spans = [{"service": "web", "id": "1", "kind": "server", "name": "GET /", "attrs": {"region": "span"},
              "resource": {"region": "resource"}}]
    got, _ = collect(spans, dimensions=["region"])
    assert got[key(CALLS_TOTAL, **LBL, region="resource")] == 1
