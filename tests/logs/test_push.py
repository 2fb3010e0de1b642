"""Loki push decoding (JSON, protobuf + snappy, gzip), OTLP mapping, enrichment, and Loki's
validation: a refused request stores nothing."""

from __future__ import annotations

import gzip
import time
import zlib

import cramjam
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from kms.errors import BadInput, LimitExceeded, TooLarge
from kms.limits import RateLimiter
from kms.logs.batch import LogBatch, LogStream
from kms.logs.enrich import detect_level
from kms.logs.ingest import decode_logs
from kms.logs.logproto import PushRequest
from kms.logs.loki_push import decode_push, encode_push, parse_stream_labels
from kms.storage import ScanRequest

NOW = time.time_ns()
JSON = "application/json"


def rows(store, tenant="anonymous") -> list[dict]:
    t = list(store.scan(ScanRequest(tenant, "logs")))
    return pa.concat_tables(t).sort_by("time_ns").to_pylist() if t else []


def push_json(streams) -> bytes:
    return orjson.dumps({"streams": streams})


def test_json_push_with_metadata_gzip_and_deflate():
    body = push_json([{"stream": {"app": "api"}, "values": [[str(NOW), "a"], [str(NOW + 1), "b", {"trace_id": "ab"}]]}])
    for enc, data in ((None, body), ("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        b = decode_push(data, JSON, enc, 1 << 20)
        [s] = b.streams
        assert s.labels == {"app": "api"} and s.times == [NOW, NOW + 1] and s.lines == ["a", "b"]
        assert s.metadata == [{}, {"trace_id": "ab"}]


def test_protobuf_push_round_trips_with_structured_metadata():
    s = LogStream({"app": 'we"b', "env": "prod"})
    s.add(NOW, "hello", {"user": "u1"})
    s.add(NOW + 7, "bye")
    got = decode_push(encode_push(LogBatch([s])), "application/x-protobuf", None, 1 << 20)
    assert got.streams[0].labels == s.labels and got.streams[0].times == s.times
    assert got.streams[0].metadata == [{"user": "u1"}, {}]
    assert decode_push(encode_push(LogBatch([s])), None, "snappy", 1 << 20).streams[0].lines == ["hello", "bye"]


def test_legacy_json_entries_form():
    body = push_json([{"labels": '{app="old"}', "entries": [{"ts": "2026-01-02T03:04:05.5Z", "line": "x"}]}])
    [s] = decode_push(body, JSON, None, 1 << 20).streams
    assert s.labels == {"app": "old"} and s.times == [1767323045_500_000_000]


@pytest.mark.parametrize("body, ct, enc, err", [
    (push_json([{"stream": {"a": "b"}, "values": [[123, "x"]]}]), JSON, None, "timestamp must be a string"),
    (b"{not json", JSON, None, "invalid JSON"),
    (push_json([{"stream": {"a": 1}, "values": []}]), JSON, None, "string values"),
    (b"\x05\xff\xff", None, None, "snappy"),
    (bytes(cramjam.snappy.compress_raw(b"\x0a\x05abc")), None, None, "malformed logproto"),
    (push_json([]), JSON, "br", "Content-Encoding"),
])
def test_bad_bodies_are_bad_input(body, ct, enc, err):
    with pytest.raises(BadInput, match=err):
        decode_push(body, ct, enc, 1 << 20)


def test_uncompressed_size_over_the_limit_is_too_large():
    req = PushRequest()
    req.streams.add(labels='{a="b"}').entries.add(line="x" * 5000)
    with pytest.raises(TooLarge):
        decode_push(bytes(cramjam.snappy.compress_raw(req.SerializeToString())), None, None, 1000)


@pytest.mark.parametrize("text, want", [
    ('{a="b"}', {"a": "b"}), ('{ a = "x\\"y" , b=`raw\\n` }', {"a": 'x"y', "b": "raw\\n"}), ("{}", {}),
])
def test_stream_labels(text, want):
    assert parse_stream_labels(text) == want


@pytest.mark.parametrize("text", ['{a=b}', 'a="b"', '{a="b",a="c"}', '{a="b"} x', '{1a="b"}'])
def test_bad_stream_labels(text):
    with pytest.raises(BadInput):
        parse_stream_labels(text)


@pytest.mark.parametrize("line, md, want", [
    ("level=warn msg=x", {}, "warn"), ('{"level":"ERROR"}', {}, "error"), ("all good", {"severity": "debug"}, "debug"),
    ("connection refused: error", {}, "error"), ("nothing here", {}, "unknown"), ("INFO started", {}, "info"),
])
def test_detected_level(line, md, want):
    assert detect_level(line, md, {}) == want


def test_push_stores_enriched_entries(receiver, store):
    s = LogStream({"app": "api"})
    s.add(NOW, "level=error boom", {"trace_id": "t1"})
    receiver.export_logs("anonymous", LogBatch([s]), 10)
    [row] = rows(store)
    assert row["stream"] == '{app="api",service_name="api"}'
    assert row["metadata"] == '{detected_level="error",trace_id="t1"}' and row["line"] == "level=error boom"


def _one(labels=None, line="ok", t=NOW, md=None) -> LogBatch:
    good = LogStream({"app": "fine"})
    good.add(NOW, "stored only if the whole request is")
    bad = LogStream(labels if labels is not None else {"app": "x"})
    bad.add(t, line, md)
    return LogBatch([good, bad])


@pytest.mark.parametrize("batch, reason, msg", [
    (_one(line="x" * 101), "line_too_long", "Max entry size '100' bytes exceeded for stream"),
    (_one(labels={f"l{i}": "v" for i in range(5)}), "max_label_names_per_series", "has 6 label names; limit 4"),
    (_one(labels={"a" * 1025: "v"}), "label_name_too_long", "has label name too long"),
    (_one(labels={"a": "v" * 2049}), "label_value_too_long", "has label value too long"),
    (_one(labels={"bad-name": "v"}), "invalid_labels", "error parsing labels"),
    (_one(md={f"k{i}": "v" for i in range(4)}), "structured_metadata_too_many", "too many structured metadata"),
    (_one(md={"k": "v" * 70_000}), "structured_metadata_too_large", "structured metadata too large"),
    (_one(t=NOW - 8 * 86400 * 10**9), "greater_than_max_sample_age", "timestamp too old"),
    (_one(t=NOW + 3600 * 10**9), "too_far_in_future", "timestamp too new"),
])
def test_each_limit_refuses_the_whole_request(receiver, store, batch, reason, msg):
    with pytest.raises(BadInput, match=msg) as e:
        receiver.export_logs("anonymous", batch, 10)
    assert e.value.reason == reason
    assert rows(store) == []


def test_out_of_order_window(receiver, store):
    receiver.log_validator.limits.out_of_order_window_s = 60
    s = LogStream({"app": "a"})
    s.add(NOW, "new")
    receiver.export_logs("anonymous", LogBatch([s]), 1)
    late = LogStream({"app": "a"})
    late.add(NOW - 30 * 10**9, "30s behind: fine")
    receiver.export_logs("anonymous", LogBatch([late]), 1)
    later = LogStream({"app": "a"})
    later.add(NOW - 120 * 10**9, "too far behind")
    with pytest.raises(BadInput, match="entry too far behind"):
        receiver.export_logs("anonymous", LogBatch([later]), 1)
    other = LogStream({"app": "b"})  # the window is per stream
    other.add(NOW - 120 * 10**9, "another stream")
    receiver.export_logs("anonymous", LogBatch([other]), 1)
    assert [r["line"] for r in rows(store)] == ["another stream", "30s behind: fine", "new"]


def test_log_ingestion_rate_is_429_with_lokis_message(receiver, store):
    receiver.log_rate = RateLimiter(100, 100)
    s = LogStream({"app": "a"})
    s.add(NOW, "x" * 60)  # + detected_level="unknown" metadata: 81 bytes
    receiver.export_logs("t1", LogBatch([s]), 1)
    with pytest.raises(LimitExceeded, match="Ingestion rate limit exceeded for user t1 .limit: 100 bytes/sec"):
        receiver.export_logs("t1", LogBatch([s]), 1)
    assert len(rows(store, "t1")) == 1


def otlp_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    for k, v in (("service.name", "checkout"), ("k8s.pod.name", "p-1"), ("host.name", "h1")):
        rl.resource.attributes.add(key=k).value.string_value = v
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = "app.logger", "1.0"
    a = sl.log_records.add(time_unix_nano=NOW, observed_time_unix_nano=NOW + 5, severity_number=13,
                           severity_text="WARN", trace_id=bytes(range(16)), span_id=b"\x01" * 8)
    a.body.string_value = "payment declined"
    a.attributes.add(key="http.status").value.int_value = 402
    m = a.attributes.add(key="user").value.kvlist_value.values.add(key="id")
    m.value.string_value = "u1"
    b = sl.log_records.add(observed_time_unix_nano=NOW + 9)
    b.body.kvlist_value.values.add(key="msg").value.string_value = "structured"
    sl.log_records.add(trace_id=b"short")  # rejected: bad id length
    return req


def test_otlp_logs_are_mapped_like_loki(receiver, store):
    d = decode_logs(otlp_request().SerializeToString())
    assert d.rejected == 1 and "trace_id" in d.message
    [s] = d.batch.streams
    assert s.labels == {"service_name": "checkout", "k8s_pod_name": "p-1"}
    assert s.lines == ["payment declined", '{"msg":"structured"}'] and s.times == [NOW, NOW + 9]
    assert s.metadata[0] == {
        "host_name": "h1", "scope_name": "app.logger", "scope_version": "1.0", "http_status": "402",
        "user_id": "u1", "trace_id": bytes(range(16)).hex(), "span_id": "01" * 8, "severity_number": "13",
        "severity_text": "WARN", "observed_timestamp": str(NOW + 5), "detected_level": "warn",
    }
    receiver.log_validator.limits.max_structured_metadata_entries = 128
    result = receiver.export("logs", "anonymous", otlp_request().SerializeToString())
    assert (result.accepted, result.rejected) == (2, 1)
    assert [r["stream"] for r in rows(store)] == ['{k8s_pod_name="p-1",service_name="checkout"}'] * 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([JSON, None]))
def test_push_decoder_never_crashes_on_arbitrary_bytes(data, ct):
    for body in (data, bytes(cramjam.snappy.compress_raw(data))):
        try:
            decode_push(body, ct, None, 1 << 16)
        except BadInput:
            pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True), st.text(max_size=12),
                       min_size=1, max_size=5))
def test_stream_labels_round_trip_through_protobuf(labels):
    s = LogStream(dict(labels))
    s.add(NOW, "x")
    # (an empty value is no label, as in Loki)
    assert decode_push(encode_push(LogBatch([s])), None, None, 1 << 20).streams[0].labels == {
        k: v for k, v in labels.items() if v}


def test_per_stream_rate_is_429_and_per_stream(receiver, store):
    receiver.log_stream_rate = RateLimiter(100, 100)

    def push(app: str) -> None:
        s = LogStream({"app": app})
        s.add(NOW, "y" * 80)
        receiver.export_logs("t1", LogBatch([s]), 1)

    push("a")
    push("b")  # another stream has its own budget
    with pytest.raises(LimitExceeded, match="Per stream rate limit exceeded .limit: 100 bytes/sec.") as e:
        push("a")
    assert e.value.reason == "per_stream_rate_limit"
    assert len(rows(store, "t1")) == 2


def test_quiet_streams_are_forgotten_once_many_are_tracked(receiver, monkeypatch):
    from kms.logs import validate

    monkeypatch.setattr(validate, "MAX_TRACKED_STREAMS", 3)
    receiver.log_validator.limits.out_of_order_window_s = 60
    for i, t in enumerate((NOW - 500 * 10**9, NOW, NOW, NOW)):
        s = LogStream({"app": f"s{i}"})
        s.add(t, "x")
        receiver.export_logs("anonymous", LogBatch([s]), 1)
    assert len(receiver.log_validator._newest) == 3  # s0 was quiet for longer than twice the window


def test_gzip_around_snappy_protobuf():
    s = LogStream({"app": "a"})
    s.add(NOW, "zipped")
    got = decode_push(gzip.compress(encode_push(LogBatch([s]))), "application/x-protobuf", "gzip", 1 << 20)
    assert got.streams[0].lines == ["zipped"]


@pytest.mark.parametrize("labels, want", [
    ({"service_name": "x", "app": "y"}, "x"), ({"app": "y", "job": "j"}, "y"), ({"container": "c", "job": "j"}, "c"),
    ({"env": "prod"}, "unknown_service"),
])
def test_service_name_discovery(receiver, store, labels, want):
    s = LogStream(dict(labels))
    s.add(NOW, "x")
    receiver.export_logs("anonymous", LogBatch([s]), 1)
    [row] = rows(store)
    assert f'service_name="{want}"' in row["stream"]
