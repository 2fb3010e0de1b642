"""OTLP request decoding: span/log/metric tables, JSON, compression, and refusal of bad bytes."""

from __future__ import annotations

import base64
import gzip
import os
import zlib

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from kms.errors import BadInput, TooLarge
from kms.logs.ingest import decode_logs
from kms.otlp.body import content_kind, decompress, json_to_protobuf
from kms.traces.assemble import to_traces_data
from kms.traces.ingest import decode_spans


def traces_request(n_resources=2, n_spans=3) -> trace_service_pb2.ExportTraceServiceRequest:
    req = trace_service_pb2.ExportTraceServiceRequest()
    for r in range(n_resources):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = f"svc-{r}"
        rs.resource.attributes.add(key="host.name").value.string_value = "h1"
        ss = rs.scope_spans.add()
        ss.scope.name = "lib"
        ss.scope.version = "1.0"
        for i in range(n_spans):
            s = ss.spans.add()
            s.trace_id = bytes([r + 1]) * 16
            s.span_id = bytes([r + 1, i + 1]) * 4
            if i:
                s.parent_span_id = bytes([r + 1, 1]) * 4
            s.name = f"op-{i}"
            s.kind = trace_pb2.Span.SPAN_KIND_SERVER
            s.start_time_unix_nano = 1_700_000_000_000_000_000 + i
            s.end_time_unix_nano = s.start_time_unix_nano + 5_000_000
            s.trace_state = "k=v"
            s.attributes.add(key="http.method").value.string_value = "GET"
            s.attributes.add(key="http.status_code").value.int_value = 200 + i
            ev = s.events.add(name="boom", time_unix_nano=s.start_time_unix_nano + 1)
            ev.attributes.add(key="x").value.bool_value = True
            s.links.add(trace_id=b"\x09" * 16, span_id=b"\x08" * 8)
            if i == 2:
                s.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                s.status.message = "bad"
    return req


def test_spans_round_trip_through_the_table():
    req = traces_request()
    d = decode_spans(req.SerializeToString())
    assert d.table.num_rows == 6 and d.rejected == 0
    assert d.table["service_name"].to_pylist() == ["svc-0"] * 3 + ["svc-1"] * 3
    assert d.table["duration_ns"].to_pylist() == [5_000_000] * 6
    back = to_traces_data(d.table)
    want = trace_pb2.TracesData(resource_spans=req.resource_spans)
    assert back == want


def test_spans_with_bad_ids_are_rejected_and_counted():
    req = traces_request(1, 2)
    req.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01" * 8
    d = decode_spans(req.SerializeToString())
    assert (d.table.num_rows, d.rejected) == (1, 1)
    assert "trace_id" in d.message


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05abc", b"\x0a\x80"])
def test_malformed_protobuf_is_bad_input(body):
    with pytest.raises(BadInput, match="malformed OTLP traces"):
        decode_spans(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoders_never_crash_on_arbitrary_bytes(data):
    for decode in (decode_spans, decode_logs):
        try:
            decode(data)
        except BadInput:
            pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "name", "attributes", "x"]), kids, max_size=4),
    max_leaves=20).map(orjson.dumps)))
def test_json_decoder_refuses_cleanly(data):
    for signal in ("traces", "metrics", "logs"):
        try:
            json_to_protobuf(signal, data)
        except BadInput:
            pass


def test_logs_keep_the_body_as_line_and_the_rest_as_structured_metadata():
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "api"
    sl = rl.scope_logs.add()
    a = sl.log_records.add(time_unix_nano=5, severity_number=9, severity_text="INFO", trace_id=b"\x01" * 16,
                           span_id=b"\x02" * 8)
    a.body.string_value = "hello"
    a.attributes.add(key="k").value.string_value = "v"
    b = sl.log_records.add(observed_time_unix_nano=7)
    b.body.kvlist_value.values.add(key="msg").value.string_value = "structured"
    [stream] = decode_logs(req.SerializeToString()).batch.streams
    assert stream.labels == {"service_name": "api"}
    assert stream.lines == ["hello", '{"msg":"structured"}']
    assert stream.times == [5, 7]
    md_a, md_b = stream.metadata
    assert md_a["trace_id"] == "01" * 16 and md_a["span_id"] == "02" * 8 and md_a["k"] == "v"
    assert md_a["severity_text"] == "INFO" and "trace_id" not in md_b


def test_json_with_hex_ids_becomes_the_same_protobuf():
    req = traces_request(1, 2)
    doc = json_format.MessageToDict(req)
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for k in ("traceId", "spanId", "parentSpanId"):
            if k in s:
                s[k] = base64.b64decode(s[k]).hex()
        for link in s.get("links", []):
            link["traceId"] = base64.b64decode(link["traceId"]).hex()
            link["spanId"] = base64.b64decode(link["spanId"]).hex()
    got = trace_service_pb2.ExportTraceServiceRequest.FromString(json_to_protobuf("traces", orjson.dumps(doc)))
    assert got == req


@pytest.mark.parametrize(
    "body, match",
    [(b"{not json", "malformed OTLP/JSON"), (b"[1]", "JSON object"),
     (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "not hex"),
     (b'{"resourceSpans": 5}', "invalid OTLP/JSON")],
)
def test_bad_json_is_bad_input(body, match):
    with pytest.raises(BadInput, match=match):
        json_to_protobuf("traces", body)


def test_decompress():
    data = os.urandom(1000)
    assert decompress(gzip.compress(data), "gzip", 10_000) == data
    assert decompress(zlib.compress(data), "deflate", 10_000) == data
    assert decompress(data, None, 10_000) == data
    with pytest.raises(TooLarge):
        decompress(gzip.compress(b"\0" * 100_000), "gzip", 10_000)  # a small bomb
    with pytest.raises(BadInput, match="truncated"):
        decompress(gzip.compress(data)[:-30], "gzip", 10_000)
    with pytest.raises(BadInput, match="invalid gzip"):
        decompress(b"not gzip at all", "gzip", 10_000)
    with pytest.raises(BadInput, match="Content-Encoding"):
        decompress(data, "br", 10_000)


@pytest.mark.parametrize("ct, kind", [("application/x-protobuf", "protobuf"), ("application/json; charset=utf-8", "json"),
                                      ("application/protobuf", "protobuf")])
def test_content_kind(ct, kind):
    assert content_kind(ct) == kind


@pytest.mark.parametrize("ct", ["text/plain", "", None, "application/xml"])
def test_content_kind_refuses_others(ct):
    with pytest.raises(BadInput) as e:
        content_kind(ct)
    assert e.value.reason == "unsupported_media_type"
