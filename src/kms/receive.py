"""The write door every receiver calls: admission, decoding, durable append, accounting.

Receivers (OTLP gRPC and HTTP, remote write) hand over the serialized request or decoded
samples; ``export`` / ``export_samples`` return only after the data is in the WAL (fsynced)
and visible, so an acknowledgement is a promise. They block: call them from a worker thread,
never from the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kms.errors import KmsError, LimitExceeded, Unavailable
from kms.limits import MemoryLimiter, RateLimiter, SeriesLimits
from kms.logs.batch import LogBatch, line_bytes
from kms.logs.enrich import enrich
from kms.logs.ingest import decode_logs
from kms.logs.schema import LOGS
from kms.logs.validate import Validator
from kms.metrics.admission import SampleAdmission
from kms.metrics.samples import SampleBatch
from kms.metrics.store import EXEMPLARS, HISTOGRAMS, SAMPLES, exemplars_table, histograms_table, samples_table
from kms.metrics.translate import translate_request
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
    rejected_by: dict[str, int] = field(default_factory=dict)  # reason -> items, for the discarded counter


class Receiver:
    def __init__(self, store, rate: RateLimiter, memory: MemoryLimiter, telemetry: Telemetry,
                 otlp_metric_suffixes: bool = True, series_limits: SeriesLimits | None = None,
                 admission: SampleAdmission | None = None,
                 log_validator: Validator | None = None, log_rate: RateLimiter | None = None,
                 log_stream_rate: RateLimiter | None = None, on_spans=None):
        self.store = store
        self.on_spans = on_spans  # (tenant, span table) after the spans are stored: the metrics generator
        self.log_validator = log_validator or Validator()
        self.log_rate = log_rate  # Loki's per-tenant ingestion rate (line bytes), on top of ``rate``
        self.log_stream_rate = log_stream_rate  # Loki's per-stream rate, keyed by tenant and stream
        self.series_limits = series_limits or SeriesLimits()
        self.admission = admission or SampleAdmission()
        self.rate = rate
        self.memory = memory
        self.telemetry = telemetry
        self.otlp_metric_suffixes = otlp_metric_suffixes
        self.ready = False

    def export(self, signal: str, tenant: str, payload: bytes) -> ExportResult:
        """Decode and store one OTLP request (serialized protobuf) of ``signal``."""
        try:
            self._admit(tenant, len(payload))
            if signal == "metrics":
                result = self.store_samples(tenant, translate_request(payload, add_suffixes=self.otlp_metric_suffixes))
            elif signal == "traces":
                d = decode_spans(payload)
                result = self._store_table(tenant, TRACES.name, d.table, d.rejected, d.message)
                if self.on_spans is not None and d.table.num_rows:
                    self.on_spans(tenant, d.table)
            elif signal == "logs":
                d = decode_logs(payload)
                result = self._store_logs(tenant, d.batch, d.rejected, d.message)
            else:
                raise RuntimeError(f"BUG: unknown signal {signal!r}")
        except KmsError as e:
            self.telemetry.refused_requests.labels(signal, e.reason).inc()
            raise
        self._account(signal, tenant, len(payload), result)
        return result

    def export_samples(self, tenant: str, batch: SampleBatch, nbytes: int = 0) -> ExportResult:
        """Store samples already decoded (remote write)."""
        try:
            self._admit(tenant, nbytes or 16 * len(batch))
            result = self.store_samples(tenant, batch)
        except KmsError as e:
            self.telemetry.refused_requests.labels("metrics", e.reason).inc()
            raise
        self._account("metrics", tenant, nbytes, result)
        return result

    def export_logs(self, tenant: str, batch: LogBatch, nbytes: int) -> ExportResult:
        """Store a decoded Loki push: all of it or, refused (Loki's validation), none of it."""
        try:
            self._admit(tenant, nbytes)
            result = self._store_logs(tenant, batch)
        except KmsError as e:
            self.telemetry.refused_requests.labels("logs", e.reason).inc()
            raise
        self._account("logs", tenant, nbytes, result)
        return result

    def _store_logs(self, tenant: str, batch: LogBatch, rejected: int = 0, message: str = "") -> ExportResult:
        enrich(batch, levels=False)  # service_name is a stream label: validated like the others
        self.log_validator.check(tenant, batch, time.time_ns())
        enrich(batch, service_name=False)
        if self.log_stream_rate is not None:
            self._take_stream_rates(tenant, batch)
        table = batch.table()
        if self.log_rate is not None:
            nbytes = line_bytes(table)
            try:
                self.log_rate.take(tenant, nbytes)
            except LimitExceeded as e:
                raise LimitExceeded(
                    f"Ingestion rate limit exceeded for user {tenant} (limit: {int(self.log_rate.rate)} bytes/sec) "
                    f"while attempting to ingest '{batch.entries}' lines totaling '{nbytes}' bytes, reduce log "
                    "volume or contact your Loki administrator to see if the limit can be increased",
                    reason="rate_limited", retry_after_s=e.retry_after_s) from None
        if table.num_rows:
            self.store.append(tenant, LOGS.name, table)
            self.log_validator.accepted(tenant, batch)
        return ExportResult(table.num_rows, rejected, message, {"invalid": rejected} if rejected else {})

    def _take_stream_rates(self, tenant: str, batch: LogBatch) -> None:
        lim = self.log_stream_rate
        for s in batch.streams:
            text = s.text
            n = int(s.line_bytes().sum())
            try:
                lim.take(f"{tenant}\x00{text}", n)
            except LimitExceeded as e:
                raise LimitExceeded(
                    f"Per stream rate limit exceeded (limit: {int(lim.rate)} bytes/sec) while attempting to ingest "
                    f"for stream '{text}' totaling {n} bytes, consider splitting a stream via additional labels or "
                    "contact your Loki administrator to see if the limit can be increased",
                    reason="per_stream_rate_limit", retry_after_s=e.retry_after_s) from None

    def _admit(self, tenant: str, nbytes: int) -> None:
        if not self.ready:
            raise Unavailable("not ready: starting up or shutting down; retry later", retry_after_s=1.0)
        self.memory.check()
        self.rate.take(tenant, nbytes)

    def _store_table(self, tenant: str, signal: str, table, rejected: int, message: str) -> ExportResult:
        if table.num_rows:
            self.store.append(tenant, signal, table)
        return ExportResult(table.num_rows, rejected, message, {"invalid": rejected} if rejected else {})

    def store_samples(self, tenant: str, batch: SampleBatch) -> ExportResult:
        """Store decoded samples under the metric write rules (also the door for samples the
        stack makes itself: the ruler's recordings and alerts, the metrics generator)."""
        # label limits are checked there, once per label set (the tenant's series refs remember)
        admitted = self.admission.admit(tenant, batch, self.series_limits)
        batch = admitted.batch
        if len(batch):
            self.store.append(tenant, SAMPLES.name, samples_table(batch, admitted.columns()))
        if batch.histograms:
            self.store.append(tenant, HISTOGRAMS.name, histograms_table(batch.series, batch.histograms))
        ex = exemplars_table(batch)
        if ex is not None and ex.num_rows:
            self.store.append(tenant, EXEMPLARS.name, ex)
        admitted.commit()  # only now: a batch refused by the store leaves its retry unjudged
        stored = len(batch) + len(batch.histograms)
        return ExportResult(stored, batch.rejected_total, "; ".join(batch.errors), dict(batch.rejected))

    def _account(self, signal: str, tenant: str, nbytes: int, result: ExportResult) -> None:
        t = self.telemetry
        t.received_items.labels(signal, tenant).inc(result.accepted)
        t.received_bytes.labels(signal, tenant).inc(nbytes)
        for reason, n in result.rejected_by.items():
            t.refused_items.labels(signal, reason).inc(n)
