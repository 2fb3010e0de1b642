"""Pipelines inside ``kms up`` (``--config`` in the OpenTelemetry Collector's layout): the ``otlp``
receiver is kms up's own OTLP listeners (its endpoints choose their addresses), a ``kms``
exporter without an endpoint is this process's store, and the other exporters forward elsewhere
through their disk queues. OTLP that no pipeline takes is stored directly, as without pipelines."""

from __future__ import annotations

from pathlib import Path

from kms.otlp.peer import PEER
from kms.pipeline.config import load_pipeline_config
from kms.pipeline.items import Item
from kms.pipeline.receivers import Receivers, endpoint
from kms.pipeline.runtime import Pipelines

__all__ = ["StackPipelines"]


class StackPipelines:
    def __init__(self, file: str, doc: dict, data_dir: Path, receiver, default_tenant: str,
                 max_queue_bytes: int = 1 << 30):
        self.receiver = receiver
        cfg = load_pipeline_config(file, doc)
        self.cfg = cfg
        self.pipelines = Pipelines(cfg, data_dir / "pipelines", max_queue_bytes, {}, local=receiver)
        self.receivers = Receivers(self.pipelines, data_dir / "pipelines", default_tenant)
        self.otlp_id = self.receivers.otlp[0] if self.receivers.otlp else None

    def listen_addresses(self) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        """(gRPC, HTTP) addresses the otlp receiver names, each None when it names none."""
        if self.receivers.otlp is None:
            return None, None
        cid, protocols = self.receivers.otlp
        return tuple(endpoint(cid, (protocols.get(p) or {}).get("endpoint")) for p in ("grpc", "http"))  # type: ignore[return-value]

    def export(self, signal: str, tenant: str, payload: bytes):
        """kms up's OTLP listeners: through the pipelines that carry ``signal``, else straight to the store."""
        if self.otlp_id is None or not any(s == signal for s, _, _ in self.pipelines.routes.get(self.otlp_id, [])):
            return self.receiver.export(signal, tenant, payload)
        results = self.pipelines.receive(self.otlp_id, Item(signal, tenant, otlp=payload, peer=PEER.get()))
        if results:
            return results[-1]
        from kms.receive import ExportResult

        return ExportResult(accepted=1)

    def start(self) -> None:
        self.pipelines.start()
        self.receivers.start()

    def stop(self) -> None:
        self.receivers.stop()
        self.pipelines.stop()
