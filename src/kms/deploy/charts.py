"""Every upstream chart the stack uses, pinned by version and repository, in one place.

Versions and keys are those of shared/specs/k8s-charts.md (late 2026); the umbrella chart's
Chart.yaml is written from this table and a test keeps the committed one equal to it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChartPin", "CHARTS", "CRD_ONLY", "UMBRELLA", "UMBRELLA_VERSION"]

UMBRELLA = "kms-stack"
UMBRELLA_VERSION = "0.1.0"

_PROM = "https://prometheus-community.github.io/helm-charts"
_GRAFANA = "https://grafana.github.io/helm-charts"
_COMMUNITY = "https://grafana-community.github.io/helm-charts"  # grafana, loki, tempo moved here in 2026
_OTEL = "https://open-telemetry.github.io/opentelemetry-helm-charts"


# Charts that install only CustomResourceDefinitions: no images, nothing to mirror.
CRD_ONLY = frozenset({"prometheus-crds"})


@dataclass(frozen=True)
class ChartPin:
    alias: str  # key of the chart's values in the umbrella chart, and suffix of its release names
    chart: str
    version: str
    repository: str


CHARTS: dict[str, ChartPin] = {
    p.alias: p
    for p in (
        ChartPin("prometheus", "kube-prometheus-stack", "88.5.3", _PROM),
        # The Prometheus Operator's CRDs alone (31.0.1 carries operator v0.93.1, kps 88.5.3's): the
        # small profile's PrometheusRule objects need the kind, not the operator (kms reads them).
        ChartPin("prometheus-crds", "prometheus-operator-crds", "31.0.1", _PROM),
        ChartPin("mimir", "mimir-distributed", "6.2.0", _GRAFANA),
        ChartPin("loki", "loki", "18.11.0", _COMMUNITY),
        ChartPin("tempo", "tempo", "2.2.4", _COMMUNITY),
        ChartPin("collector", "opentelemetry-collector", "0.170.0", _OTEL),
        ChartPin("operator", "opentelemetry-operator", "0.122.0", _OTEL),
        ChartPin("grafana", "grafana", "12.11.1", _COMMUNITY),
        # MinIO is archived upstream (2026-04); SeaweedFS is the maintained in-cluster store.
        ChartPin("seaweedfs", "seaweedfs", "4.0.385", "https://seaweedfs.github.io/seaweedfs/helm"),
        ChartPin("minio", "minio", "5.4.0", "https://charts.min.io/"),
        ChartPin("kube-state-metrics", "kube-state-metrics", "8.4.0", _PROM),
        ChartPin("postgres-exporter", "prometheus-postgres-exporter", "8.2.0", _PROM),
        ChartPin("redis-exporter", "prometheus-redis-exporter", "6.29.0", _PROM),
    )
}
