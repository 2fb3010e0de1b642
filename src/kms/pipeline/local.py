"""The ``kms`` exporter inside ``kms up`` without an endpoint: this process's own store, through
the same doors as its receivers (limits, validation, WAL before the acknowledgement), so a
refusal reaches the sender as it would without a pipeline."""

from __future__ import annotations

from kms.logs.batch import LogBatch, LogStream
from kms.pipeline.exporters import line_streams
from kms.pipeline.items import Item

__all__ = ["LocalExporter"]


class LocalExporter:
    def __init__(self, cid: str, settings: dict, receiver):
        self.cid = cid
        self.receiver = receiver  # kms.receive.Receiver
        headers = {str(k).lower(): str(v) for k, v in (settings.get("headers") or {}).items()}
        self.tenant = headers.get("x-scope-orgid")
        self.line_labels = {str(k): str(v) for k, v in (settings.get("line_labels") or {}).items()}

    def consume(self, item: Item):
        tenant = self.tenant or item.tenant
        if item.otlp is not None:
            return self.receiver.export(item.signal, tenant, item.otlp)
        if item.samples is not None:
            return self.receiver.export_samples(tenant, item.samples)
        batch = LogBatch()
        nbytes = 0
        for key, group in line_streams(item.lines or [], {**self.line_labels, **item.resource}).items():
            stream = LogStream(dict(key))
            for ln in group:
                stream.add(ln.time_ns or ln.ts_ns, ln.line)
                nbytes += len(ln.line)
            batch.streams.append(stream)
        return self.receiver.export_logs(tenant, batch, nbytes)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
