"""Conversions at the edges of a pipeline: samples (scraped, host metrics) and tailed log lines
into OTLP, for exporters that speak OTLP."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from kms.agent.tail import LogLine
from kms.metrics.samples import SampleBatch

__all__ = ["samples_to_otlp", "lines_to_otlp"]


def _kv(k: str, v: str) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v))


def samples_to_otlp(batch: SampleBatch) -> bytes:
    """Each series a data point of a metric named like the series: counters (``_total``, or typed
    counter in the batch's metadata) as monotonic cumulative sums, everything else as gauges; the
    labels (job and instance included) as data point attributes."""
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    sm.scope.name = "kms"
    counters = {m.family for m in batch.metadata if m.type == "counter"}
    metrics: dict[str, object] = {}
    idx, ts, vals = batch.series_idx.tolist(), batch.ts_ms.tolist(), batch.values.tolist()
    for i, t, v in zip(idx, ts, vals, strict=True):
        labels = dict(batch.series[i])
        name = labels.pop("__name__")
        m = metrics.get(name)
        if m is None:
            m = metrics[name] = sm.metrics.add(name=name)
            if name.endswith("_total") or name in counters:
                m.sum.is_monotonic = True
                m.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
        points = m.sum.data_points if m.HasField("sum") else m.gauge.data_points
        dp = points.add(time_unix_nano=t * 1_000_000, as_double=v)
        dp.attributes.extend(_kv(k, val) for k, val in labels.items())
    return req.SerializeToString()


def lines_to_otlp(lines: list[LogLine], resource: dict[str, str]) -> bytes:
    """Tailed lines as OTLP log records, their attributes kept; ``k8s.*`` attributes (the container
    operator's, from the pod's log path) go to the resource, as the collector puts them."""
    req = ExportLogsServiceRequest()
    by_resource: dict[tuple, object] = {}
    for ln in lines:
        own = tuple((k, v) for k, v in ln.attributes if k.startswith("k8s."))
        records = by_resource.get(own)
        if records is None:
            rl = req.resource_logs.add()
            rl.resource.attributes.extend(_kv(k, v) for k, v in {**resource, **dict(own)}.items())
            records = by_resource[own] = rl.scope_logs.add().log_records
        rec = LogRecord(observed_time_unix_nano=ln.ts_ns, body=AnyValue(string_value=ln.line))
        if ln.time_ns:
            rec.time_unix_nano = ln.time_ns
        rec.attributes.extend(_kv(k, v) for k, v in ln.attributes if not k.startswith("k8s."))
        records.append(rec)
    return req.SerializeToString()
