"""The transform processor: OTTL statements over spans, log records, data points (OTLP and
scraped samples), tailed lines and resources; load-time refusals; error modes."""

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
from kms.pipeline.config import load_pipeline_config
from kms.pipeline.items import Item
from kms.pipeline.processors import make_processor


def attrs(kvs) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in kvs}


def spans_request() -> bytes:
    spans = [
        Span(name="GET /pay", kind=Span.SPAN_KIND_SERVER,
             attributes=[kv("http.route", "/pay"), kv("http.request.header.authorization", "Bearer x"),
                         kv("user.email", "a@b.c")]),
        Span(name="SELECT", kind=Span.SPAN_KIND_CLIENT, attributes=[kv("db.statement", "SELECT * FROM t WHERE id=42")]),
    ]  # fmt: skip
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv("service.name", "web"), kv("k8s.namespace.name", "shop")]),
        scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString()  # fmt: skip


def test_span_statements_with_conditions_and_resource_context():
    p = make_processor("transform", "transform", {"trace_statements": [
        {"context": "resource", "statements": ['set(attributes["env"], "prod") where attributes["k8s.namespace.name"] == "shop"',
                                               'delete_key(attributes, "k8s.namespace.name")']},
        {"context": "span", "statements": [
            'delete_matching_keys(attributes, "^http\\\\.request\\\\.header\\\\..*")',
            'replace_pattern(attributes["db.statement"], "id=\\\\d+", "id=?")',
            'set(attributes["route.upper"], ToUpperCase(attributes["http.route"])) where kind == SPAN_KIND_SERVER',
            'set(name, Concat(["svc", resource.attributes["env"], name], ":")) where kind == SPAN_KIND_CLIENT',
            'replace_all_patterns(attributes, "value", "[a-z]+@[a-z.]+", "<email>")',
        ]},
    ]})  # fmt: skip
    out = ExportTraceServiceRequest.FromString(p(Item("traces", "t", otlp=spans_request())).otlp)
    rs = out.resource_spans[0]
    assert attrs(rs.resource.attributes) == {"service.name": "web", "env": "prod"}
    pay, select = rs.scope_spans[0].spans
    assert attrs(pay.attributes) == {"http.route": "/pay", "user.email": "<email>", "route.upper": "/PAY"}
    assert select.name == "svc:prod:SELECT"
    assert attrs(select.attributes) == {"db.statement": "SELECT * FROM t WHERE id=?"}


def test_flat_statements_with_context_prefixes_on_logs():
    recs = [LogRecord(severity_number=13, severity_text="", body=kv("x", "disk almost full").value,
                      attributes=[kv("a", "1"), kv("b", "2"), kv("c", "3")])]  # fmt: skip
    req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=recs)])])
    p = make_processor("transform/logs", "transform", {"log_statements": [
        'set(log.severity_text, "WARN") where log.severity_number == 13',
        'keep_keys(log.attributes, ["a", "c"])',
        'set(log.body, Concat(["[", log.severity_text, "] ", log.body], ""))',
        'set(resource.attributes["team"], "infra")',
    ]})  # fmt: skip
    out = ExportLogsServiceRequest.FromString(p(Item("logs", "t", otlp=req.SerializeToString())).otlp)
    rec = out.resource_logs[0].scope_logs[0].log_records[0]
    assert rec.severity_text == "WARN" and rec.body.string_value == "[WARN] disk almost full"
    assert attrs(rec.attributes) == {"a": "1", "c": "3"}
    assert attrs(out.resource_logs[0].resource.attributes) == {"team": "infra"}


def test_metric_and_datapoint_contexts_and_scraped_samples():
    pts = [NumberDataPoint(as_double=1, attributes=[kv("path", "/p/123"), kv("id", "x" * 40)])]
    req = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        Metric(name="http.requests", gauge=Gauge(data_points=pts))])])]).SerializeToString()  # fmt: skip
    p = make_processor("transform", "transform", {"metric_statements": [
        {"context": "metric", "statements": ['set(description, "requests") where name == "http.requests"']},
        {"context": "datapoint", "statements": ['replace_pattern(attributes["path"], "/\\\\d+", "/{id}")',
                                                "truncate_all(attributes, 8)", 'limit(attributes, 1, ["path"])']},
    ]})  # fmt: skip
    out = ExportMetricsServiceRequest.FromString(p(Item("metrics", "t", otlp=req)).otlp)
    m = out.resource_metrics[0].scope_metrics[0].metrics[0]
    assert m.description == "requests"
    assert attrs(m.gauge.data_points[0].attributes) == {"path": "/p/{id}"}

    b = BatchBuilder()
    b.add(b.series_index((("__name__", "up"), ("instance", "10.0.0.1:9100"), ("secret", "s"))), 1000, 1.0)
    q = make_processor("transform", "transform", {"metric_statements": [
        'set(attributes["host"], attributes["instance"])', 'delete_key(attributes, "secret")']})  # fmt: skip
    got = q(Item("metrics", "t", samples=b.build())).samples
    assert got.series == [(("__name__", "up"), ("host", "10.0.0.1:9100"), ("instance", "10.0.0.1:9100"))]


def test_tailed_lines():
    lines = [
        LogLine(1, "/var/log/app.log", "password=hunter2 login ok", attributes=(("filename", "app.log"),))
    ]
    p = make_processor(
        "transform",
        "transform",
        {
            "log_statements": [
                'replace_pattern(body, "password=\\\\S+", "password=***")',
                'set(attributes["source"], "file")',
            ]
        },
    )
    out = p(Item("logs", "t", lines=lines)).lines[0]
    assert out.line == "password=*** login ok" and dict(out.attributes) == {
        "filename": "app.log",
        "source": "file",
    }


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (['set(attributes["a"])'], "set takes 2 arguments"),
        (["frobnicate(attributes)"], "unsupported function 'frobnicate'"),
        (['set(attributes["a"], "b") where nonsense ~ 1'], "condition"),
        (['delete_key(name, "x")'], "first argument must be attributes"),
        (['replace_pattern(attributes["n"], "(", "x")'], "bad regular expression"),
        (['limit(attributes, "many")'], "must be a non-negative integer"),
        (
            [{"context": "datapoint", "statements": ['set(name, "x")']}],
            "context 'datapoint' is not supported",
        ),
    ],
)
def test_bad_statements_are_refused_at_load(statements, message):
    with pytest.raises(BadInput, match=message):
        make_processor("transform", "transform", {"trace_statements": statements})


def test_error_modes():
    b = BatchBuilder()
    b.add(b.series_index((("__name__", "up"), ("n", "abc"))), 1000, 1.0)
    # Concat of a missing attribute (not a list) fails when it runs
    stmts = ['set(attributes["joined"], Concat(attributes["missing"], "-"))', 'set(attributes["ok"], "1")']
    p = make_processor("transform", "transform", {"error_mode": "ignore", "metric_statements": stmts})
    got = dict(p(Item("metrics", "t", samples=b.build())).samples.series[0])
    assert got["ok"] == "1" and "joined" not in got
    strict = make_processor("transform", "transform", {"metric_statements": stmts})
    with pytest.raises(BadInput, match="processor 'transform'"):
        strict(Item("metrics", "t", samples=b.build()))


def test_transform_in_a_collector_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "receivers: {otlp: {protocols: {http: {}}}}\n"
        "processors:\n"
        "  transform:\n"
        '    trace_statements: [\'set(attributes["x"], "y")\']\n'
        "exporters: {debug: {}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], processors: [transform], exporters: [debug]}}}\n"
    )
    comp = load_pipeline_config(cfg).get("processors", "transform")
    assert comp.type == "transform"
    out = make_processor(comp.id, comp.type, comp.settings)(Item("traces", "t", otlp=spans_request()))
    spans = ExportTraceServiceRequest.FromString(out.otlp).resource_spans[0].scope_spans[0].spans
    assert all(attrs(s.attributes)["x"] == "y" for s in spans)
