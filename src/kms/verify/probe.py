"""The tagged telemetry ``kms verify`` sends: one trace across two services (a frontend server span,
its client call, the backend's server span), a log line per service carrying the span context,
and a latency histogram whose exemplar points at the trace."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Exemplar,
    Histogram,
    HistogramDataPoint,
    Metric,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

__all__ = ["Probe", "FRONTEND", "BACKEND", "NAMESPACE", "RUN_ATTRIBUTE", "METRIC_NAME"]

FRONTEND = "kms-verify-frontend"
BACKEND = "kms-verify-backend"
NAMESPACE = "kms-verify"
RUN_ATTRIBUTE = "kms.verify.run"
METRIC_NAME = "kms.verify.duration"  # unit s: kms_verify_duration_seconds_* (kms_verify_duration_* without suffixes)
BUCKETS = [0.05, 0.1, 0.25, 0.5, 1.0]
_SCOPE = "kms.verify"


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(service: str) -> Resource:
    return Resource(attributes=[_kv("service.name", service), _kv("service.namespace", NAMESPACE),
                                _kv("service.instance.id", f"{service}-{os.getpid()}")])


@dataclass
class Probe:
    """One verification run: ids and timestamps fixed at construction, requests built from them."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    trace_id: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    start_ns: int = field(default_factory=time.time_ns)
    span_ids: dict[str, bytes] = field(default_factory=lambda: {k: os.urandom(8) for k in ("root", "client", "server")})

    @property
    def trace_id_hex(self) -> str:
        return self.trace_id.hex()

    @property
    def root_span_name(self) -> str:
        return "GET /verify"

    @property
    def backend_span_name(self) -> str:
        return "GET /verify/backend"

    def _span(self, key: str, parent: str | None, name: str, kind: int, offset_ms: int, duration_ms: int) -> Span:
        start = self.start_ns + offset_ms * 1_000_000
        return Span(
            trace_id=self.trace_id, span_id=self.span_ids[key],
            parent_span_id=self.span_ids[parent] if parent else b"", name=name, kind=kind,
            start_time_unix_nano=start, end_time_unix_nano=start + duration_ms * 1_000_000,
            attributes=[_kv(RUN_ATTRIBUTE, self.run_id), _kv("http.request.method", "GET"),
                        _kv("http.response.status_code", 200)],
            status=Status(code=Status.STATUS_CODE_OK),
        )

    def traces(self) -> ExportTraceServiceRequest:
        client = self._span("client", "root", self.backend_span_name, Span.SPAN_KIND_CLIENT, 10, 100)
        client.attributes.append(_kv("server.address", BACKEND))
        return ExportTraceServiceRequest(resource_spans=[
            ResourceSpans(resource=_resource(FRONTEND), scope_spans=[ScopeSpans(spans=[
                self._span("root", None, self.root_span_name, Span.SPAN_KIND_SERVER, 0, 120), client])]),
            ResourceSpans(resource=_resource(BACKEND), scope_spans=[ScopeSpans(spans=[
                self._span("server", "client", self.backend_span_name, Span.SPAN_KIND_SERVER, 20, 80)])]),
        ])

    def log_lines(self) -> dict[str, str]:
        """The body of each service's log line, by service."""
        return {FRONTEND: f"kms verify {self.run_id}: checkout requested",
                BACKEND: f"kms verify {self.run_id}: price computed"}

    def logs(self) -> ExportLogsServiceRequest:
        lines = self.log_lines()

        def record(service: str, key: str, offset_ms: int) -> ResourceLogs:
            return ResourceLogs(resource=_resource(service), scope_logs=[ScopeLogs(log_records=[LogRecord(
                time_unix_nano=self.start_ns + offset_ms * 1_000_000, observed_time_unix_nano=time.time_ns(),
                severity_number=SeverityNumber.SEVERITY_NUMBER_INFO, severity_text="INFO",
                body=AnyValue(string_value=lines[service]), attributes=[_kv(RUN_ATTRIBUTE, self.run_id)],
                trace_id=self.trace_id, span_id=self.span_ids[key], flags=1)])])

        return ExportLogsServiceRequest(resource_logs=[record(FRONTEND, "root", 5), record(BACKEND, "server", 30)])

    def metrics(self) -> ExportMetricsServiceRequest:
        """A cumulative latency histogram of the frontend with one observation (0.12 s) whose exemplar
        carries the root span's context."""
        value = 0.12
        counts = [int(value <= b) for b in BUCKETS]
        bucket_counts = [counts[0]] + [counts[i] - counts[i - 1] for i in range(1, len(BUCKETS))] + [0]
        point = HistogramDataPoint(
            start_time_unix_nano=self.start_ns - 1_000_000_000, time_unix_nano=self.start_ns + 120_000_000,
            count=1, sum=value, bucket_counts=bucket_counts, explicit_bounds=BUCKETS,
            exemplars=[Exemplar(time_unix_nano=self.start_ns + 120_000_000, as_double=value,
                                trace_id=self.trace_id, span_id=self.span_ids["root"])],
        )
        metric = Metric(name=METRIC_NAME, unit="s", description="kms verify request latency",
                        histogram=Histogram(data_points=[point],
                                            aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE))
        return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
            resource=_resource(FRONTEND), scope_metrics=[ScopeMetrics(metrics=[metric])])])
