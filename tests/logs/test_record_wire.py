"""OTLP log records decoded as columns (``kms.logs.record_wire``) give the rows, structured
metadata and validation figures of the record-by-record mapping, and every other record shape
falls back to it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from kms.logs import ingest
from kms.logs.enrich import enrich
from kms.logs.recordids import id_matrix, joined

NOW = 1_763_800_000_123_456_789
TEXTS = ["INFO", "WARN", "error", 'odd "level"\\', "Fatal\nsecond line", "ünïcode", ""]
BODIES = ["GET /api/cart 200", "", 'quoted "body"', "multi\nline", "é" * 300, "x" * 20_000]


def request(rnd: random.Random, shape: str = "columns") -> bytes:
    req = ExportLogsServiceRequest()
    for r in range(3):
        rl = req.resource_logs.add()
        rl.resource.attributes.add(key="service.name").value.string_value = f"svc-{r % 2}"  # two share a stream
        rl.resource.attributes.add(key="host.name").value.string_value = f"host-{r}"
        for k in range(2):
            sl = rl.scope_logs.add()
            sl.scope.name, sl.scope.version = f"scope-{k}", "1.2" if k else ""
            sl.scope.attributes.add(key="lib.kind").value.string_value = "logging"
            for _ in range(rnd.randrange(0, 40)):
                rec = sl.log_records.add()
                if rnd.random() < 0.9:
                    rec.time_unix_nano = NOW + rnd.randrange(10**9)
                if rnd.random() < 0.7:
                    rec.observed_time_unix_nano = NOW + rnd.randrange(10**9)
                number = rnd.choice([0, 1, 5, 9, 13, 17, 21, 24, 30])
                rec.severity_number = number
                rec.severity_text = rnd.choice(TEXTS if number else TEXTS[:-1])
                body = rnd.choice(BODIES)
                if body or rnd.random() < 0.5:
                    rec.body.string_value = body
                if rnd.random() < 0.5:
                    rec.trace_id = rnd.randbytes(16)
                    rec.span_id = rnd.randbytes(8)
                if rnd.random() < 0.3:
                    rec.flags = rnd.choice([1, 257])
                for name in rnd.sample(["user.id", "code.function", "http.route", "quote\"d"], rnd.randrange(3)):
                    rec.attributes.add(key=name).value.string_value = rnd.choice(["42", 'a "b"\\', "é\n"])
                if rnd.random() < 0.5:
                    rec.attributes.add(key="code.lineno").value.int_value = rnd.choice([0, 7, 2**40, -5, -2**63])
                if rnd.random() < 0.2:
                    rec.attributes.add(key="retry").value.bool_value = rnd.random() < 0.5
                if rnd.random() < 0.1:
                    rec.attributes.add(key="empty")  # no value: the empty string
                if rnd.random() < 0.2:
                    rec.event_name = rnd.choice(["login", 'say "hi"'])
                if rnd.random() < 0.2:
                    rec.dropped_attributes_count = rnd.choice([1, 70000])
                if shape == "attributes":
                    rec.attributes.add(key="ratio").value.double_value = 0.5
                elif shape == "int body":
                    rec.body.int_value = 5
                elif shape == "no severity":
                    rec.severity_number, rec.severity_text = 0, ""
                elif shape == "bad trace id":
                    rec.trace_id = b"\x01" * 5
                elif shape == "bytes attribute":
                    rec.attributes.add(key="blob").value.bytes_value = b"\x00\x01"
                elif shape == "one name twice":  # two keys of one label name
                    rec.attributes.add(key="user_id").value.string_value = "7"
                    rec.attributes.add(key="user.id").value.string_value = "8"
                elif shape == "negative severity":
                    rec.severity_number = -3
                elif shape == "scope key":  # an attribute named like a scope attribute
                    rec.attributes.add(key="lib.kind").value.string_value = "mine"
    return req.SerializeToString()


def decoded(body: bytes, columns: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not columns:
            m.setattr(ingest, "_decode_columns", lambda body, now_ns: None)
        d = ingest.decode_logs(body, NOW)
    enrich(d.batch)
    return d


def same_rows(fast, slow) -> bool:
    """The two decodings give the same rows once their record ids are in their metadata texts
    (the columns keep them apart, the record-by-record mapping in the texts)."""
    return joined(fast.batch.table()).equals(joined(slow.batch.table()))


@pytest.mark.parametrize("seed", range(4))
def test_columns_match_records(seed, monkeypatch):
    body = request(random.Random(seed))
    assert ingest._decode_columns(body, NOW) is not None  # every record of the handled shape
    fast, slow = decoded(body, True, monkeypatch), decoded(body, False, monkeypatch)
    assert fast.rejected == slow.rejected == 0
    assert same_rows(fast, slow)
    t = fast.batch.table()  # the record ids as bytes, not in the texts
    assert not any("trace_id=" in m or "observed_timestamp=" in m for m in t.column("metadata").to_pylist())
    ids = id_matrix(t.column("ids"))
    assert ids[:, :16].any(axis=1).sum() == sum("trace_id" in m for s in slow.batch.streams for m in s.metadata) > 0
    for f, s in zip(fast.batch.streams, slow.batch.streams, strict=True):
        assert f.labels == s.labels
        md = [m for m in s.metadata]
        assert f.meta_counts.tolist() == [len(m) for m in md]
        assert f.meta_sizes.tolist() == [sum(map(len, m)) + sum(map(len, m.values())) for m in md]


@pytest.mark.parametrize("shape", ["attributes", "int body", "no severity", "bad trace id", "bytes attribute",
                                   "scope key", "negative severity", "one name twice"])
def test_other_shapes_fall_back(shape, monkeypatch):
    body = request(random.Random(9), shape)
    assert ingest._decode_columns(body, NOW) is None
    d = ingest.decode_logs(body, NOW)
    if shape == "bad trace id":
        assert d.rejected > 0 and d.batch.entries == 0
    else:
        assert d.batch.entries > 0 and all(s.texts is None for s in d.batch.streams)


def test_fields_in_any_order(monkeypatch):
    """Protobuf fields may come in any order (and a scalar twice: the last one counts); a
    record written field by field in reverse decodes to the same rows as columns."""
    from google.protobuf.internal.encoder import _VarintBytes
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs

    rnd = random.Random(5)
    req = ExportLogsServiceRequest.FromString(request(rnd))
    parts = []
    for rl in req.resource_logs:
        scopes = []
        for sl in rl.scope_logs:
            records = []
            for rec in sl.log_records:
                fields = []
                for fd, value in rec.ListFields():
                    one = LogRecord()
                    if fd.name == "attributes":  # the one repeated field
                        getattr(one, fd.name).extend(value)
                    elif fd.message_type is not None:
                        getattr(one, fd.name).CopyFrom(value)
                    else:
                        setattr(one, fd.name, value)
                    fields.append(one.SerializeToString())
                stale = LogRecord(severity_number=1 if rec.severity_number else 0,  # overridden
                                  time_unix_nano=5 if rec.time_unix_nano else 0).SerializeToString()
                records.append(stale + b"".join(reversed(fields)))
            head = ScopeLogs(scope=sl.scope).SerializeToString()
            scopes.append(head + b"".join(b"\x12" + _VarintBytes(len(r)) + r for r in records))
        rest = type(rl)(resource=rl.resource).SerializeToString()
        body = rest + b"".join(b"\x12" + _VarintBytes(len(s)) + s for s in scopes)
        parts.append(b"\x0a" + _VarintBytes(len(body)) + body)
    body = b"".join(parts)
    assert ExportLogsServiceRequest.FromString(body) == req
    assert ingest._decode_columns(body, NOW) is not None
    fast, slow = decoded(body, True, monkeypatch), decoded(body, False, monkeypatch)
    assert fast.batch.entries > 50
    assert same_rows(fast, slow)


def test_records_with_many_attributes(monkeypatch):
    """More attributes than the first guess of room (4 a record) are read all the same."""
    req = ExportLogsServiceRequest.FromString(request(random.Random(2)))
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for i, rec in enumerate(sl.log_records):
                for k in range(12):
                    rec.attributes.add(key=f"extra.{k}").value.string_value = f"v{i * k}"
    body = req.SerializeToString()
    assert ingest._decode_columns(body, NOW) is not None
    fast, slow = decoded(body, True, monkeypatch), decoded(body, False, monkeypatch)
    assert "extra_11=" in fast.batch.table().column("metadata")[0].as_py()
    assert same_rows(fast, slow)


def test_malformed_requests_fall_back():
    body = request(random.Random(3))
    for cut in (1, 7, len(body) // 2, len(body) - 1):
        assert ingest._decode_columns(body[:cut], NOW) is None
    bad_utf8 = body.replace(b"GET /api/cart", b"GET /api/\xffart")
    assert bad_utf8 != body and ingest._decode_columns(bad_utf8, NOW) is None


def test_the_sdk_records_take_the_columns(monkeypatch):
    """What the OpenTelemetry SDK's logging handler sends (code attributes, an integer line
    number, trace context, observed time) is decoded as columns, to the same rows."""
    import logging

    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logging.getLogger("record-wire-test")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(LoggingHandler(logger_provider=provider))
    with TracerProvider().get_tracer("t").start_as_current_span("work"):
        for i in range(20):
            log.info('served "%s" %d', "/api/cart", i)
            log.warning("slow\nsecond line")
    log.error("outside a span")
    body = encode_logs(exporter.get_finished_logs()).SerializeToString()
    assert ingest._decode_columns(body, NOW) is not None
    fast, slow = decoded(body, True, monkeypatch), decoded(body, False, monkeypatch)
    assert fast.batch.entries == 41
    assert same_rows(fast, slow)


def test_a_request_table_shares_the_decoded_buffers(monkeypatch):
    """The streams of a request decoded as columns are consecutive slices of one array of lines
    and one of texts: the request's table takes them whole, without a copy, and equals the
    record-by-record table."""
    body = request(random.Random(1))
    fast = ingest.decode_logs(body, NOW)
    enrich(fast.batch)
    t = fast.batch.table()
    line_bufs = {s.line_array().buffers()[2].address for s in fast.batch.streams if s.times}
    assert t.column("line").num_chunks == 1 and t.column("line").chunk(0).buffers()[2].address in line_bufs
    assert same_rows(fast, decoded(body, False, monkeypatch))


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_damaged_requests_never_crash_the_kernels(data):
    """The compiled walk reads lengths from the bytes without bounds checks of numba's own: flipped
    bytes and cuts anywhere must give None or rows, never a crash or a read past the end; and
    what it accepts, the record-by-record mapping maps to the same rows."""
    body = bytearray(request(random.Random(data.draw(st.integers(0, 3)))))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(body)))
    damaged = bytes(body[:cut])
    fast = ingest._decode_columns(damaged, NOW)
    if fast is None:
        return
    columns, ingest._decode_columns = ingest._decode_columns, lambda body, now_ns: None
    try:
        slow = ingest.decode_logs(damaged, NOW)
    finally:
        ingest._decode_columns = columns
    enrich(fast.batch)
    enrich(slow.batch)
    assert slow.rejected == 0 and same_rows(fast, slow)
