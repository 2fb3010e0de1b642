"""The span table: how spans are held in the head, the WAL and blocks (one row per span).

Ids are raw bytes (trace 16, span 8); times are unix nanoseconds. Everything of a span that is
not a column here (attributes, events, links, trace_state, flags, dropped counts) is kept in
``attrs`` as a serialized ``opentelemetry.proto.trace.v1.Span`` holding only those fields, so
ingest never touches individual attributes; query engines decode it when they need it.
``resource`` and ``scope`` are serialized ``Resource`` / ``InstrumentationScope`` messages,
dictionary-encoded because every span of one ResourceSpans/ScopeSpans shares them.
"""

from __future__ import annotations

import pyarrow as pa

from kms.storage.types import SignalSpec

__all__ = ["SPAN_SCHEMA", "TRACES"]

SPAN_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),  # span start time
        ("trace_id", pa.binary(16)),
        ("span_id", pa.binary(8)),
        ("parent_span_id", pa.binary()),  # b"" for a root span
        ("name", pa.string()),
        ("kind", pa.int8()),  # OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer
        ("duration_ns", pa.int64()),
        ("status_code", pa.int8()),  # OTLP StatusCode: 0 unset, 1 ok, 2 error
        ("status_message", pa.string()),
        ("service_name", pa.dictionary(pa.int32(), pa.string())),
        ("resource", pa.dictionary(pa.int32(), pa.binary())),
        ("scope", pa.dictionary(pa.int32(), pa.binary())),
        ("attrs", pa.binary()),
    ]
)

# Blocks are sorted by trace id so a lookup by id touches one row group per block.
TRACES = SignalSpec(name="traces", schema=SPAN_SCHEMA, sort_by=("trace_id", "time_ns"), row_group_rows=8192, bloom_column="trace_id")
