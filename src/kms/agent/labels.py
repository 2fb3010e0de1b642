"""External labels (``cluster``, …) on everything an agent forwards; a series' or resource's own
value always wins, as with Prometheus's external labels."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from kms.metrics.samples import SampleBatch

__all__ = ["with_labels", "label_otlp"]


def with_labels(batch: SampleBatch, labels: dict[str, str]) -> SampleBatch:
    """The batch with ``labels`` added to every series that lacks them."""
    if not labels:
        return batch
    series = [tuple(sorted({**labels, **dict(ls)}.items())) for ls in batch.series]
    return SampleBatch(series, batch.series_idx, batch.ts_ms, batch.values, batch.exemplars, batch.metadata)


def _add(kvs, labels: dict[str, str]) -> None:
    have = {kv.key for kv in kvs}
    kvs.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items() if k not in have)


def label_otlp(signal: str, payload: bytes, labels: dict[str, str]) -> bytes:
    """Metrics: on every data point (the central translation makes them series labels; resource
    attributes would only reach ``target_info``). Traces and logs: on every resource."""
    if not labels:
        return payload
    if signal == "metrics":
        req = ExportMetricsServiceRequest.FromString(payload)
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    for dp in getattr(m, kind).data_points if kind else ():
                        _add(dp.attributes, labels)
        return req.SerializeToString()
    req = (ExportTraceServiceRequest if signal == "traces" else ExportLogsServiceRequest).FromString(payload)
    for top in (req.resource_spans if signal == "traces" else req.resource_logs):
        _add(top.resource.attributes, labels)
    return req.SerializeToString()
