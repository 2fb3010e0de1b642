"""OTLP ExportMetricsServiceRequest (protobuf bytes) -> OTLP metrics landing table."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
from google.protobuf.message import DecodeError

from kms.errors import BadInput
from kms.metrics.schema import OTLP_METRIC_SCHEMA
from kms.otlp.lite import MetricName, MetricsRequest
from kms.otlp.resource import service_name_of

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
        res_idx: list[int] = []
        scope_idx: list[int] = []
        res_dict: list[bytes] = []
        svc_dict: list[str] = []
        scope_dict: list[bytes] = []
        rejected = 0
        for rm in req.resource_metrics:
            r = len(res_dict)
            res_dict.append(rm.resource)
            svc_dict.append(service_name_of(rm.resource))
            for sm in rm.scope_metrics:
                sc = len(scope_dict)
                scope_dict.append(sm.scope)
                for m in sm.metrics:
                    name = MetricName.FromString(m).name
                    if not name:
                        rejected += 1
                        continue
                    names.append(name)
                    raw.append(m)
                    res_idx.append(r)
                    scope_idx.append(sc)
    except (DecodeError, RuntimeError) as e:
        raise BadInput(f"malformed OTLP metrics protobuf: {e}") from e
    idx_r = pa.array(res_idx, pa.int32())
    table = pa.Table.from_arrays(
        [
            pa.array([now_ns] * len(raw), pa.int64()),
            pa.array(names, pa.string()),
            pa.DictionaryArray.from_arrays(idx_r, pa.array(svc_dict, pa.string())),
            pa.DictionaryArray.from_arrays(idx_r, pa.array(res_dict, pa.binary())),
            pa.DictionaryArray.from_arrays(pa.array(scope_idx, pa.int32()), pa.array(scope_dict, pa.binary())),
            pa.array(raw, pa.binary()),
        ],
        schema=OTLP_METRIC_SCHEMA,
    )
    return DecodedMetrics(table, len(raw), rejected, "metrics without a name were rejected" if rejected else "")
