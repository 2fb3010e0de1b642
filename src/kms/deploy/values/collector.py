"""OpenTelemetry Collector (deployment mode): OTLP and Prometheus in, Mimir /otlp, Loki /otlp and
Tempo out, with the tenant header on every exporter."""

from __future__ import annotations

from kms.deploy.endpoints import TENANT_HEADER, Endpoints
from kms.deploy.model import Stack

__all__ = ["collector_config", "collector_values"]


def collector_config(stack: Stack) -> dict:
    """The collector's own config (receivers / processors / exporters / service), snake_case names."""
    ep = Endpoints.of(stack)
    tenant = {TENANT_HEADER: stack.tenant}
    pod = "${env:MY_POD_IP}"
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": f"{pod}:4317"}, "http": {"endpoint": f"{pod}:4318"}}},
            "prometheus": {"config": {"scrape_configs": [{
                "job_name": "opentelemetry-collector", "scrape_interval": "30s",
                "static_configs": [{"targets": [f"{pod}:8888"]}],
            }]}},  # fmt: skip
        },
        "processors": {
            # memory_limiter first: it refuses data before anything else buffers it.
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "batch": {},
            "resource/cluster": {"attributes": [{"key": "k8s.cluster.name", "value": stack.cluster,
                                                 "action": "upsert"}]},  # fmt: skip
        },
        "exporters": {
            # otlp_http appends /v1/metrics and /v1/logs to these bases.
            "otlp_http/mimir": {"endpoint": f"{ep.mimir}/otlp", "headers": dict(tenant)},
            "otlp_http/loki": {"endpoint": f"{ep.loki}/otlp", "headers": dict(tenant)},
            "otlp_grpc/tempo": {"endpoint": ep.tempo_otlp_grpc, "tls": {"insecure": True}, "headers": dict(tenant)},
        },
        "extensions": {"health_check": {"endpoint": f"{pod}:13133"}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "resource/cluster", "batch"],
                           "exporters": ["otlp_grpc/tempo"]},
                "metrics": {"receivers": ["otlp", "prometheus"],
                            "processors": ["memory_limiter", "resource/cluster", "batch"],
                            "exporters": ["otlp_http/mimir"]},
                "logs": {"receivers": ["otlp"], "processors": ["memory_limiter", "resource/cluster", "batch"],
                         "exporters": ["otlp_http/loki"]},
            },  # fmt: skip
        },
    }


def collector_values(stack: Stack) -> dict:
    values: dict = {
        "mode": "deployment",
        "image": {"repository": "otel/opentelemetry-collector-k8s"},  # the core image lacks k8s receivers
        "command": {"name": "otelcol-k8s"},
        "presets": {
            "kubernetesEvents": {"enabled": True},
            "kubernetesAttributes": {"enabled": True},
        },
        # As a subchart, `config` would merge into the chart's default pipelines (debug exporter,
        # jaeger and zipkin receivers); alternateConfig replaces them.
        "alternateConfig": collector_config(stack),
    }
    if stack.registry:
        values["global"] = {"imageRegistry": stack.registry}
    return values
