"""The log table: one row per log record (OTLP or Loki push), times in unix nanoseconds.

``line`` holds the body when it is a plain string; any other body, the attributes, flags and
event name stay in ``attrs`` as a serialized ``opentelemetry.proto.logs.v1.LogRecord`` holding
only those fields. ``resource``/``scope`` are serialized messages, dictionary-encoded.
"""

from __future__ import annotations

import pyarrow as pa

from kms.storage.types import SignalSpec

__all__ = ["LOG_SCHEMA", "LOGS"]

LOG_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),  # time_unix_nano, or the observed time when the record has none
        ("observed_ns", pa.int64()),
        ("severity_number", pa.int8()),
        ("severity_text", pa.dictionary(pa.int32(), pa.string())),
        ("line", pa.string()),
        ("trace_id", pa.binary()),  # b"" or 16 bytes
        ("span_id", pa.binary()),  # b"" or 8 bytes
        ("service_name", pa.dictionary(pa.int32(), pa.string())),
        ("resource", pa.dictionary(pa.int32(), pa.binary())),
        ("scope", pa.dictionary(pa.int32(), pa.binary())),
        ("attrs", pa.binary()),
    ]
)

LOGS = SignalSpec(name="logs", schema=LOG_SCHEMA, sort_by=("service_name", "time_ns"), row_group_rows=65_536)
