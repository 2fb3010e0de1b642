"""Processors on every kind of item: filter (OTTL conditions, legacy metric names), attributes and
resource actions."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pipeline_helpers import kv

from kms.agent.tail import LogLine
from kms.errors import BadInput
from kms.metrics.samples import BatchBuilder
from kms.pipeline.items import Item
from kms.pipeline.processors import make_processor


def traces() -> bytes:
    spans = [Span(name="GET /health", kind=Span.SPAN_KIND_SERVER, attributes=[kv("http.route", "/health")]),
             Span(name="GET /pay", kind=Span.SPAN_KIND_SERVER, attributes=[kv("http.route", "/pay")]),
             Span(name="SELECT", kind=Span.SPAN_KIND_CLIENT)]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv("service.name", "web")]), scope_spans=[ScopeSpans(spans=spans)])]
    ).SerializeToString()


def span_names(payload: bytes) -> list[str]:
    req = ExportTraceServiceRequest.FromString(payload)
    return [s.name for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_filter_spans_by_attribute_and_kind():
    f = make_processor("filter/x", "filter", {"traces": {"span": [
        'attributes["http.route"] == "/health"', "kind == SPAN_KIND_CLIENT and name != \"keep\""]}})
    assert span_names(f(Item("traces", "t", otlp=traces())).otlp) == ["GET /pay"]


def test_filter_metrics_by_name_datapoint_and_legacy_names():
    pts = [NumberDataPoint(as_double=1, attributes=[kv("env", "dev")]), NumberDataPoint(as_double=2, attributes=[kv("env", "prod")])]
    req = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        Metric(name="keep.me", gauge=Gauge(data_points=pts)), Metric(name="go.gc", gauge=Gauge(data_points=pts[:1])),
        Metric(name="debug.only", gauge=Gauge(data_points=pts[:1]))])])]).SerializeToString()
    f = make_processor("filter", "filter", {"metrics": {"metric": ['IsMatch(name, "^go\\\\.")'],
                                                        "datapoint": ['attributes["env"] == "dev"'],
                                                        "exclude": {"match_type": "strict", "metric_names": ["debug.only"]}}})
    out = ExportMetricsServiceRequest.FromString(f(Item("metrics", "t", otlp=req)).otlp)
    ms = out.resource_metrics[0].scope_metrics[0].metrics
    assert [m.name for m in ms] == ["keep.me"]
    assert [p.as_double for p in ms[0].gauge.data_points] == [2.0]


def test_filter_samples_by_series():
    b = BatchBuilder()
    for i, (name, env) in enumerate([("up", "dev"), ("up", "prod"), ("go_gc_seconds", "prod")]):
        b.add(b.series_index((("__name__", name), ("env", env))), 1000, float(i))
    f = make_processor("filter", "filter", {"metrics": {"include": {"match_type": "regexp", "metric_names": ["up"]},
                                                        "datapoint": ['attributes["env"] == "dev"']}})
    out = f(Item("metrics", "t", samples=b.build())).samples
    assert out.values.tolist() == [1.0]


def test_filter_logs_by_severity_and_lines_by_body():
    recs = [LogRecord(severity_number=5, body=kv("x", "debug noise").value),
            LogRecord(severity_number=17, body=kv("x", "boom").value)]
    req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=recs)])])
    f = make_processor("filter", "filter", {"logs": {"log_record": ["severity_number < SEVERITY_NUMBER_WARN",
                                                                    'IsMatch(body, "^healthz")']}})
    out = ExportLogsServiceRequest.FromString(f(Item("logs", "t", otlp=req.SerializeToString())).otlp)
    assert [r.body.string_value for r in out.resource_logs[0].scope_logs[0].log_records] == ["boom"]
    lines = [LogLine(1, "/a.log", "healthz ok"), LogLine(2, "/a.log", "real work")]
    assert [ln.line for ln in f(Item("logs", "t", lines=lines)).lines] == ["real work"]


def test_a_bad_condition_fails_at_load_naming_the_processor():
    with pytest.raises(BadInput, match="processor 'filter/x': traces.span: condition"):
        make_processor("filter/x", "filter", {"traces": {"span": ["attributes[http.route] == 1"]}})


def test_attribute_actions():
    a = make_processor("attributes/a", "attributes", {"actions": [
        {"key": "env", "value": "prod", "action": "insert"}, {"key": "http.route", "value": "/x", "action": "update"},
        {"key": "team", "from_attribute": "owner", "action": "upsert"}, {"key": "secret", "action": "delete"}]})
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(
        name="s", attributes=[kv("http.route", "/pay"), kv("owner", "payments"), kv("secret", "x"), kv("env", "dev")])])])])
    out = ExportTraceServiceRequest.FromString(a(Item("traces", "t", otlp=req.SerializeToString())).otlp)
    attrs = {x.key: x.value.string_value for x in out.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert attrs == {"http.route": "/x", "owner": "payments", "env": "dev", "team": "payments"}
    r = make_processor("resource/r", "resource", {"actions": [{"key": "cluster", "value": "c1", "action": "upsert"}]})
    out = ExportTraceServiceRequest.FromString(r(Item("traces", "t", otlp=req.SerializeToString())).otlp)
    assert {x.key: x.value.string_value for x in out.resource_spans[0].resource.attributes} == {"cluster": "c1"}
    with pytest.raises(BadInput, match="action 'hash' is not supported"):
        make_processor("attributes/b", "attributes", {"actions": [{"key": "k", "action": "hash"}]})
