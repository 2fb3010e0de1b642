"""Span table rows -> OTLP ``TracesData`` (one ResourceSpans per resource, one ScopeSpans per scope)."""

from __future__ import annotations

import pyarrow as pa
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = ["to_traces_data", "span_from_row"]


def span_from_row(row: dict) -> trace_pb2.Span:
    """Rebuild the full OTLP span from one row (the dict of ``Table.to_pylist``)."""
    span = trace_pb2.Span.FromString(row["attrs"])
    span.trace_id = row["trace_id"]
    span.span_id = row["span_id"]
    span.parent_span_id = row["parent_span_id"]
    span.name = row["name"]
    span.kind = row["kind"]
    span.start_time_unix_nano = row["time_ns"]
    span.end_time_unix_nano = row["time_ns"] + row["duration_ns"]
    if row["status_code"] or row["status_message"]:
        span.status.code = row["status_code"]
        span.status.message = row["status_message"]
    return span


def to_traces_data(table: pa.Table) -> trace_pb2.TracesData:
    data = trace_pb2.TracesData()
    by_resource: dict[bytes, trace_pb2.ResourceSpans] = {}
    by_scope: dict[tuple[bytes, bytes], trace_pb2.ScopeSpans] = {}
    rows = table.sort_by([("time_ns", "ascending")]).to_pylist()
    for row in rows:
        rkey, skey = row["resource"] or b"", row["scope"] or b""
        rs = by_resource.get(rkey)
        if rs is None:
            rs = data.resource_spans.add()
            rs.resource.CopyFrom(resource_pb2.Resource.FromString(rkey))
            by_resource[rkey] = rs
        ss = by_scope.get((rkey, skey))
        if ss is None:
            ss = rs.scope_spans.add()
            ss.scope.CopyFrom(common_pb2.InstrumentationScope.FromString(skey))
            by_scope[(rkey, skey)] = ss
        ss.spans.append(span_from_row(row))
    return data
