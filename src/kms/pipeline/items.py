"""What flows through a pipeline: an OTLP request of one signal, a batch of samples (scraped or
host metrics), or tailed log lines; each with the tenant it is sent as."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from kms.agent.tail import LogLine
from kms.metrics.samples import SampleBatch

__all__ = ["Item", "OTLP_REQUESTS", "data_points"]

#: the OTLP export request message of each signal
OTLP_REQUESTS = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest,
                 "metrics": ExportMetricsServiceRequest}  # fmt: skip


def data_points(metric):
    """The data points of an OTLP metric, whatever its type."""
    kind = metric.WhichOneof("data")
    return getattr(metric, kind).data_points if kind else ()


@dataclass
class Item:
    signal: str  # traces | metrics | logs
    tenant: str
    otlp: bytes | None = None
    samples: SampleBatch | None = None
    lines: list[LogLine] | None = None
    resource: dict[str, str] = field(default_factory=dict)  # of lines (samples carry theirs as labels)
    peer: str = ""  # the IP address OTLP came from, when known
