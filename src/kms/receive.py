"""The write door every receiver calls: admission, decoding, durable append, accounting.

Receivers (OTLP gRPC and HTTP) hand over the serialized protobuf request; ``export`` returns
only after the data is in the WAL (fsynced) and visible, so an acknowledgement is a promise.
It blocks: call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from kms.errors import KmsError, Unavailable
from kms.limits import MemoryLimiter, RateLimiter
from kms.logs.ingest import decode_logs
from kms.logs.schema import LOGS
from kms.metrics.ingest import decode_metrics
from kms.metrics.schema import OTLP_METRICS
from kms.telemetry import Telemetry
from kms.traces.ingest import decode_spans
from kms.traces.schema import TRACES

__all__ = ["ExportResult", "Receiver", "SIGNALS"]

SIGNALS = ("traces", "metrics", "logs")


@dataclass
class ExportResult:
    accepted: int
    rejected: int = 0
    message: str = ""


class Receiver:
    def __init__(self, store, rate: RateLimiter, memory: MemoryLimiter, telemetry: Telemetry):
        self.store = store
        self.rate = rate
        self.memory = memory
        self.telemetry = telemetry
        self.ready = False

    def export(self, signal: str, tenant: str, payload: bytes) -> ExportResult:
        t = self.telemetry
        try:
            if not self.ready:
                raise Unavailable("not ready: starting up or shutting down; retry later", retry_after_s=1.0)
            self.memory.check()
            self.rate.take(tenant, len(payload))
            if signal == "traces":
                d = decode_spans(payload)
                table, store_signal, rejected, msg = d.table, TRACES.name, d.rejected, d.message
            elif signal == "logs":
                d = decode_logs(payload)
                table, store_signal, rejected, msg = d.table, LOGS.name, d.rejected, d.message
            elif signal == "metrics":
                d = decode_metrics(payload)
                table, store_signal, rejected, msg = d.table, OTLP_METRICS.name, d.rejected, d.message
            else:
                raise RuntimeError(f"BUG: unknown signal {signal!r}")
            if table.num_rows:
                self.store.append(tenant, store_signal, table)
        except KmsError as e:
            t.refused_requests.labels(signal, e.reason).inc()
            raise
        t.received_items.labels(signal, tenant).inc(table.num_rows)
        t.received_bytes.labels(signal, tenant).inc(len(payload))
        if rejected:
            t.refused_items.labels(signal, "invalid").inc(rejected)
        return ExportResult(table.num_rows, rejected, msg)
