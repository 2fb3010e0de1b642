"""OTLP ExportMetricsServiceRequest (protobuf bytes) -> OTLP metrics landing table."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
from google.protobuf.message import DecodeError

from kms.errors import BadInput
from kms.metrics.schema import OTLP_METRIC_SCHEMA
from kms.otlp.grouping import Grouping
from kms.otlp.lite import MetricName, MetricsRequest

__all__ = ["DecodedMetrics", "decode_metrics"]


@dataclass
class DecodedMetrics:
    table: pa.Table
    data_points: int  # what OTLP counts in partial success
    rejected: int = 0
    message: str = ""


def decode_metrics(body: bytes, now_ns: int | None = None) -> DecodedMetrics:
    try:
        req = MetricsRequest.FromString(body)
        now_ns = now_ns or time.time_ns()
        names: list[str] = []
        raw: list[bytes] = []
        g = Grouping()
        rejected = 0
        for rm in req.resource_metrics:
            r = g.resource(rm.resource)
            for sm in rm.scope_metrics:
                sc = g.scope(sm.scope)
                for m in sm.metrics:
                    name = MetricName.FromString(m).name
                    if not name:
                        rejected += 1
                        continue
                    names.append(name)
                    raw.append(m)
                    g.row(r, sc)
    except (DecodeError, RuntimeError) as e:
        raise BadInput(f"malformed OTLP metrics protobuf: {e}") from e
    table = pa.Table.from_arrays(
        [
            pa.array([now_ns] * len(raw), pa.int64()),
            pa.array(names, pa.string()),
            *g.columns(),
            pa.array(raw, pa.binary()),
        ],
        schema=OTLP_METRIC_SCHEMA,
    )
    return DecodedMetrics(table, len(raw), rejected, "metrics without a name were rejected" if rejected else "")
