"""Remote write of the generated series to another Prometheus/Mimir (remote write 1.0).

Each collection of a tenant is sent as one snappy-compressed ``WriteRequest`` with the tenant in
``X-Scope-OrgID``; exemplars only with ``send_exemplars`` (as Tempo's ``send_exemplars``). The
local metrics store is written first and is not affected by a failed send (logged, counted).
"""

from __future__ import annotations

import httpx

from kms.metrics.remote_write import encode_batch
from kms.metrics.samples import SampleBatch

__all__ = ["RemoteWriter"]


class RemoteWriter:
    def __init__(self, url: str, send_exemplars: bool = False, timeout_s: float = 10.0):
        self.url = url
        self.send_exemplars = send_exemplars
        self.client = httpx.Client(timeout=timeout_s)

    def send(self, tenant: str, batch: SampleBatch) -> None:
        """POST one collection; raises on a transport error or a non-2xx answer."""
        r = self.client.post(self.url, content=encode_batch(batch, self.send_exemplars), headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0", "X-Scope-OrgID": tenant,
            "User-Agent": "kms-metrics-generator"})
        r.raise_for_status()

    def close(self) -> None:
        self.client.close()
