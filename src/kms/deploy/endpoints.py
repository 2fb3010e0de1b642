"""Service addresses of a rendered stack, derived from the release name and namespace.

Names follow the charts' fullname rule for a dependency with an alias: ``<release>-<alias>``."""

from __future__ import annotations

from dataclasses import dataclass

from kms.deploy.model import Stack

__all__ = ["TENANT_HEADER", "Endpoints"]

TENANT_HEADER = "X-Scope-OrgID"


@dataclass(frozen=True)
class Endpoints:
    release: str
    namespace: str

    @classmethod
    def of(cls, stack: Stack) -> Endpoints:
        return cls(stack.name, stack.namespace)

    def host(self, component: str) -> str:
        return f"{self.release}-{component}.{self.namespace}.svc"

    # Mimir 6 serves every path through its gateway (`-mimir-nginx` is the pre-6.0 name).
    @property
    def mimir(self) -> str:
        return f"http://{self.host('mimir-gateway')}:80"

    @property
    def prometheus(self) -> str:
        """kube-prometheus-stack's Prometheus (<fullname>-prometheus): remote write and OTLP
        receiver of the Thanos central side."""
        return f"http://{self.host('prometheus-prometheus')}:9090"

    @property
    def loki(self) -> str:
        return f"http://{self.host('loki-gateway')}:80"

    @property
    def tempo_query(self) -> str:
        return f"http://{self.host('tempo')}:3200"

    @property
    def tempo_otlp_grpc(self) -> str:
        return f"{self.host('tempo')}:4317"  # gRPC target: host:port, no scheme

    @property
    def collector_otlp_http(self) -> str:
        return f"http://{self.host('collector')}:4318"

    @property
    def kms(self) -> str:
        """The embedded stack of the ``small`` profile: every API on one port."""
        return f"http://{self.release}.{self.namespace}.svc:3200"

    @property
    def kube_state_metrics(self) -> str:
        return f"{self.host('kube-state-metrics')}:8080"

    def store(self, stack: Stack) -> str:
        """The S3 endpoint as host:port: Tempo and Mimir refuse a scheme, Loki accepts this form too."""
        kind = stack.storage.type
        if kind == "seaweedfs":
            return f"{self.host('seaweedfs-all-in-one')}:8333"
        if kind == "minio":
            return f"{self.host('minio')}:9000"
        return stack.storage.endpoint
