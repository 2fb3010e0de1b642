"""The OTLP metrics landing table: one row per received OTLP Metric, kept whole.

OTLP metrics are stored durably exactly as received (``metric`` is a serialized
``opentelemetry.proto.metrics.v1.Metric`` with all its data points); ``time_ns`` is the
receive time. Translation into Prometheus series reads from here.
"""

from __future__ import annotations

import pyarrow as pa

from kms.storage.types import SignalSpec

__all__ = ["OTLP_METRIC_SCHEMA", "OTLP_METRICS"]

OTLP_METRIC_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("name", pa.string()),
        ("service_name", pa.dictionary(pa.int32(), pa.string())),
        ("resource", pa.dictionary(pa.int32(), pa.binary())),
        ("scope", pa.dictionary(pa.int32(), pa.binary())),
        ("metric", pa.binary()),
    ]
)

OTLP_METRICS = SignalSpec(name="otlp_metrics", schema=OTLP_METRIC_SCHEMA, sort_by=("name", "time_ns"))
