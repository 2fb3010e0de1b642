"""Every image of a rendered stack, and the values that pull them from a private registry.

Charts with a global registry key (kube-prometheus-stack, loki, collector, grafana, tempo) are
rewritten by it; the others (mimir-distributed, the operator, the stores, the exporters) get
one override per image. Tags are those the pinned chart versions pull; confirm them with
``helm template`` when upgrading a pin (shared/specs/k8s-charts.md)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Image", "IMAGES", "chart_images", "rewrite", "registry_overrides", "own_images"]


@dataclass(frozen=True)
class Image:
    ref: str  # registry/repository:tag as pulled without a private registry
    key: str = ""  # values path of the full repository, for charts without a global registry key
    registry_key: str = ""  # or: values path of this image's registry part

    @property
    def repository(self) -> str:
        """The path below the registry, e.g. grafana/mimir."""
        return self.ref.split("/", 1)[1].rsplit(":", 1)[0]


_GLOBAL_REGISTRY = {"prometheus": "global.imageRegistry", "loki": "global.imageRegistry",
                    "collector": "global.imageRegistry", "grafana": "global.imageRegistry",
                    "tempo": "global.image.registry", "kube-state-metrics": "image.registry"}  # fmt: skip

IMAGES: dict[str, list[Image]] = {
    "prometheus": [
        Image("quay.io/prometheus-operator/prometheus-operator:v0.93.1"),
        Image("quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"),
        Image("quay.io/prometheus/prometheus:v3.14.0"),
        Image("quay.io/prometheus/alertmanager:v0.29.0"),
        Image("quay.io/prometheus/node-exporter:v1.10.2"),
        Image("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.18.0"),
        Image("registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.4"),
    ],
    "mimir": [
        Image("docker.io/grafana/mimir:3.2.0", key="image.repository"),
        Image("docker.io/library/memcached:1.6.39-alpine", key="memcached.image.repository"),
        Image("docker.io/prom/memcached-exporter:v0.15.3", key="memcachedExporter.image.repository"),
        Image("docker.io/nginxinc/nginx-unprivileged:1.29-alpine", key="gateway.nginx.image.repository",
              registry_key="gateway.nginx.image.registry"),
        Image("docker.io/grafana/rollout-operator:v0.32.0", key="rollout_operator.image.repository"),
    ],
    "loki": [
        Image("docker.io/grafana/loki:3.7.6"),
        Image("docker.io/nginxinc/nginx-unprivileged:1.29-alpine"),
        Image("docker.io/library/memcached:1.6.39-alpine"),
        Image("docker.io/prom/memcached-exporter:v0.15.3"),
        Image("docker.io/kiwigrid/k8s-sidecar:1.30.9"),
    ],
    "tempo": [Image("docker.io/grafana/tempo:2.10.8")],
    "collector": [Image("docker.io/otel/opentelemetry-collector-k8s:0.158.0")],
    "operator": [
        Image("ghcr.io/open-telemetry/opentelemetry-operator/opentelemetry-operator:0.158.0",
              key="manager.image.repository"),
        Image("docker.io/otel/opentelemetry-collector-k8s:0.158.0", key="manager.collectorImage.repository"),
        Image("ghcr.io/open-telemetry/opentelemetry-operator/autoinstrumentation-java:2.26.0",
              key="manager.autoInstrumentationImage.java.repository"),
        Image("ghcr.io/open-telemetry/opentelemetry-operator/autoinstrumentation-nodejs:0.69.0",
              key="manager.autoInstrumentationImage.nodejs.repository"),
        Image("ghcr.io/open-telemetry/opentelemetry-operator/autoinstrumentation-python:0.61b0",
              key="manager.autoInstrumentationImage.python.repository"),
        Image("ghcr.io/open-telemetry/opentelemetry-operator/autoinstrumentation-dotnet:1.14.0",
              key="manager.autoInstrumentationImage.dotnet.repository"),
        Image("ghcr.io/open-telemetry/opentelemetry-go-instrumentation/autoinstrumentation-go:v0.24.0",
              key="manager.autoInstrumentationImage.go.repository"),
    ],
    "grafana": [Image("docker.io/grafana/grafana:13.2.0")],
    "seaweedfs": [Image("docker.io/chrislusf/seaweedfs:3.85", registry_key="global.registry")],
    "minio": [
        Image("quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z", key="image.repository"),
        Image("quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z", key="mcImage.repository"),
    ],
    "kube-state-metrics": [Image("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.18.0")],
    "postgres-exporter": [Image("quay.io/prometheuscommunity/postgres-exporter:v0.18.1", registry_key="image.registry")],
    "redis-exporter": [Image("docker.io/oliver006/redis_exporter:v1.80.0", key="image.repository")],
}


def chart_images(alias: str) -> list[Image]:
    return IMAGES[alias]


def rewrite(ref: str, registry: str) -> str:
    """``quay.io/prometheus/prometheus:v3`` -> ``<registry>/prometheus/prometheus:v3``."""
    first, _, rest = ref.partition("/")
    if "." not in first and ":" not in first and first != "localhost":
        rest = ref  # no registry part: docker.io implied
    return f"{registry.rstrip('/')}/{rest}"


def _set(values: dict, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for p in parents:
        values = values.setdefault(p, {})
    values[last] = value


def registry_overrides(alias: str, registry: str) -> dict:
    """Values that make chart ``alias`` pull every image from ``registry``."""
    out: dict = {}
    if alias in _GLOBAL_REGISTRY:
        _set(out, _GLOBAL_REGISTRY[alias], registry)
        return out
    for img in IMAGES.get(alias, []):
        if img.registry_key and not img.key:
            _set(out, img.registry_key, registry)
        elif img.registry_key:  # split registry/repository keys: registry here, path in the repository key
            _set(out, img.registry_key, registry)
            _set(out, img.key, img.repository)
        elif img.key:
            _set(out, img.key, f"{registry.rstrip('/')}/{img.repository}")
    return out


def own_images(objects: list[dict]) -> list[str]:
    """Images of the umbrella chart's own objects (containers and init containers)."""
    found = []
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            found.append(c["image"])
    return found
