"""Bad input on every receiver: a clear error with the right status, and nothing stored."""

from __future__ import annotations

import gzip

import grpc
import httpx
import orjson
import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from kms.otlp.body import REQUEST_TYPES
from kms.otlp.lite import RpcStatus
from kms.testing import KmsProcess

pytestmark = pytest.mark.slow

MAX = 100_000
SIGNAL_PATHS = [("traces", "/v1/traces"), ("metrics", "/v1/metrics"), ("logs", "/v1/logs"),
                ("traces", "/otlp/v1/traces"), ("metrics", "/otlp/v1/metrics"), ("logs", "/otlp/v1/logs"),
                ("metrics", "/api/v1/otlp/v1/metrics")]


@pytest.fixture(scope="module")
def small_kms(tmp_path_factory):
    proc = KmsProcess(tmp_path_factory.mktemp("refuse") / "data", ["--max-request-bytes", str(MAX)]).start()
    yield proc
    proc.kill()


def valid_traces() -> bytes:
    req = trace_service_pb2.ExportTraceServiceRequest()
    for i in range(20):
        s = req.resource_spans.add().scope_spans.add().spans.add()
        s.trace_id, s.span_id, s.name = bytes([i + 1]) * 16, b"\x01" * 8, "x" * 30
    return req.SerializeToString()


def valid_body(signal: str) -> bytes:
    if signal == "traces":
        return valid_traces()
    req = REQUEST_TYPES[signal]()
    if signal == "logs":
        for i in range(20):
            req.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=i + 1).body.string_value = "x" * 30
    else:
        for i in range(20):
            m = req.resource_metrics.add().scope_metrics.add().metrics.add(name=f"m{i}")
            m.gauge.data_points.add(as_double=1.5, time_unix_nano=i + 1)
    return req.SerializeToString()


def truncated(signal: str) -> bytes:
    """The longest prefix of a valid request that the real protobuf classes refuse."""
    body = valid_body(signal)
    for cut in range(len(body) - 1, 0, -1):
        try:
            REQUEST_TYPES[signal].FromString(body[:cut])
        except DecodeError:
            return body[:cut]
    raise AssertionError("no truncation fails to parse")


PB = {"Content-Type": "application/x-protobuf"}
CASES = [
    ("malformed protobuf", b"\xff\xff\xff\xff", PB, 400, "malformed"),
    ("truncated protobuf", truncated, PB, 400, "malformed"),
    ("truncated gzip", gzip.compress(valid_traces())[:-20], {**PB, "Content-Encoding": "gzip"}, 400, "truncated"),
    ("oversize", b"\x0a" * (MAX + 1), PB, 413, "exceeds the limit"),
    ("gzip bomb", gzip.compress(b"\0" * (MAX * 20)), {**PB, "Content-Encoding": "gzip"}, 413, "exceeds the limit"),
    ("wrong content type", valid_traces(), {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
    ("unknown encoding", valid_traces(), {**PB, "Content-Encoding": "br"}, 400, "Content-Encoding"),
    ("malformed json", b'{"resourceSpans": [', {"Content-Type": "application/json"}, 400, "malformed OTLP/JSON"),
]


@pytest.mark.parametrize("signal, path", SIGNAL_PATHS)
@pytest.mark.parametrize("name, body, headers, status, words", CASES, ids=[c[0] for c in CASES])
def test_http_refusals(small_kms, signal, path, name, body, headers, status, words):
    if callable(body):
        body = body(signal)
    for port in (small_kms.port, small_kms.otlp_http_port):
        r = httpx.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers, timeout=10)
        assert r.status_code == status, (port, r.text)
        if "json" in headers.get("Content-Type", ""):
            msg = orjson.loads(r.content)["message"]
        else:
            msg = RpcStatus.FromString(r.content).message
        assert words in msg


@pytest.mark.parametrize("signal, service", [("traces", "trace.v1.TraceService"), ("metrics", "metrics.v1.MetricsService"),
                                             ("logs", "logs.v1.LogsService")])
def test_grpc_refusals(small_kms, signal, service):
    with grpc.insecure_channel(small_kms.grpc_target) as ch:
        call = ch.unary_unary(f"/opentelemetry.proto.collector.{service}/Export")
        for body in (b"\xff\xff\xff\xff", truncated(signal)):
            with pytest.raises(grpc.RpcError) as e:
                call(body, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            call(b"\x0a" * (MAX + 1), timeout=10)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_nothing_was_stored(small_kms):
    # Runs after the refusals above (same module-scoped process): none of them stored anything.
    metrics = httpx.get(small_kms.url + "/metrics").text
    assert "kms_received_items_total{" not in metrics
    assert 'kms_refused_requests_total{reason="bad_input",signal="traces"}' in metrics
    assert httpx.get(small_kms.url + "/api/search", params={"q": "{}"}).json()["traces"] == []


def test_partial_success_for_spans_with_bad_ids(small_kms):
    req = trace_service_pb2.ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok")
    spans.add(trace_id=b"\x01" * 5, span_id=b"\x02" * 8, name="bad")
    r = httpx.post(small_kms.url + "/v1/traces", content=req.SerializeToString(), headers=PB)
    assert r.status_code == 200
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1 and "trace_id" in resp.partial_success.error_message
    rj = httpx.post(small_kms.url + "/v1/traces", content=b'{"resourceSpans": []}',
                    headers={"Content-Type": "application/json"})
    assert rj.status_code == 200 and rj.json() == {}
