"""Fixture spans for the generator tests: compact dicts -> a real span table (through decode_spans)."""

from __future__ import annotations

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from kms.testing import anyvalue
from kms.traces.ingest import decode_spans

KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS = {"unset": 0, "ok": 1, "error": 2}
T0 = 1_700_000_000_000_000_000


def _id(text: str, size: int) -> bytes:
    """A trace id from hex; a span id from up to 8 characters (readable in fixtures)."""
    if not text:
        return b""
    return bytes.fromhex(text.rjust(2 * size, "0")) if size == 16 else text.encode().rjust(size, b"\0")


def request(spans: list[dict], trace: str = "1f") -> bytes:
    """One ExportTraceServiceRequest; each span dict: service (None: no service.name), id, parent,
    kind, status, name, ms (duration), attrs, resource (extra resource attributes), trace."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    for s in spans:
        rs = req.resource_spans.add()
        res = dict(s.get("resource") or {})
        if s.get("service", "svc") is not None:
            res["service.name"] = s.get("service", "svc")
        for k, v in res.items():
            rs.resource.attributes.add(key=k, value=anyvalue(v))
        sp = rs.scope_spans.add().spans.add()
        sp.trace_id = _id(str(s.get("trace", trace)), 16)
        sp.span_id = _id(str(s["id"]), 8)
        sp.parent_span_id = _id(str(s.get("parent", "")), 8)
        sp.name = s.get("name", "op")
        sp.kind = KINDS[s.get("kind", "internal")]
        sp.start_time_unix_nano = T0 + int(s.get("start_ms", 0) * 1e6)
        sp.end_time_unix_nano = sp.start_time_unix_nano + int(s.get("ms", 1) * 1e6)
        sp.status.code = STATUS[s.get("status", "unset")]
        for k, v in (s.get("attrs") or {}).items():
            sp.attributes.add(key=k, value=anyvalue(v))
    return req.SerializeToString()


def table(spans: list[dict], trace: str = "1f") -> pa.Table:
    return decode_spans(request(spans, trace)).table
