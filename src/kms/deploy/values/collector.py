"""OpenTelemetry Collector (deployment mode): OTLP and Prometheus in, Mimir /otlp, Loki /otlp and
Tempo out, with the tenant header on every exporter."""

from __future__ import annotations

from kms.deploy.endpoints import TENANT_HEADER, Endpoints
from kms.deploy.model import Stack

__all__ = ["cluster_processor", "collector_config", "collector_values", "workload_collector_values"]


def cluster_processor(cluster: str) -> dict:
    """The ``resource`` processor that stamps the cluster on everything: ``k8s.cluster.name`` (the
    semantic convention; Loki indexes it by default) and ``cluster`` (the metrics' label name)."""
    return {"attributes": [{"key": key, "value": cluster, "action": "upsert"} for key in ("k8s.cluster.name", "cluster")]}


def collector_config(stack: Stack, metrics: tuple[str, str] | None = None) -> dict:
    """The collector's own config (receivers / processors / exporters / service), snake_case names.
    ``metrics``: (exporter name, OTLP/HTTP base) of the metrics store; default Mimir's /otlp."""
    ep = Endpoints.of(stack)
    metrics_name, metrics_base = metrics or ("otlp_http/mimir", f"{ep.mimir}/otlp")
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
            "resource/cluster": cluster_processor(stack.cluster),
        },
        "exporters": {
            # otlp_http appends /v1/metrics and /v1/logs to these bases.
            metrics_name: {"endpoint": metrics_base, "headers": dict(tenant)},
            "otlp_http/loki": {"endpoint": f"{ep.loki}/otlp", "headers": dict(tenant)},
            "otlp_grpc/tempo": {"endpoint": ep.tempo_otlp_grpc, "tls": {"insecure": True}, "headers": dict(tenant)},
        },
        "extensions": {"health_check": {"endpoint": f"{pod}:13133"}},
        "service": {
            "extensions": ["health_check"],
            # The collector's own metrics on the pod IP (the default is localhost), where the prometheus
            # receiver above scrapes them; alternateConfig replaces the chart's setting of it.
            "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": pod, "port": 8888}}}}]}},
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "resource/cluster", "batch"],
                           "exporters": ["otlp_grpc/tempo"]},
                "metrics": {"receivers": ["otlp", "prometheus"],
                            "processors": ["memory_limiter", "resource/cluster", "batch"],
                            "exporters": [metrics_name]},
                "logs": {"receivers": ["otlp"], "processors": ["memory_limiter", "resource/cluster", "batch"],
                         "exporters": ["otlp_http/loki"]},
            },  # fmt: skip
        },
    }


def collector_values(stack: Stack, metrics: tuple[str, str] | None = None) -> dict:
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
        "alternateConfig": collector_config(stack, metrics),
    }
    if stack.registry:
        values["global"] = {"imageRegistry": stack.registry}
    return values


def workload_collector_values(stack: Stack, loki_url: str, tempo_url: str) -> dict:
    """A workload cluster's collector (multi-cluster): a DaemonSet that tails its node's pod logs
    and receives applications' OTLP, stamps the cluster and sends logs to the central Loki, traces
    to the central Tempo, both over OTLP/HTTP with the tenant header (metrics go through the
    Prometheus or kms agent)."""
    tenant = {TENANT_HEADER: stack.tenant}
    pod = "${env:MY_POD_IP}"
    steps = ["memory_limiter", "resource/cluster", "batch"]
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{pod}:4317"}, "http": {"endpoint": f"{pod}:4318"}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "batch": {},
            "resource/cluster": cluster_processor(stack.cluster),
        },
        "exporters": {
            # otlp_http appends /v1/logs and /v1/traces to these bases.
            "otlp_http/loki": {"endpoint": f"{loki_url.rstrip('/')}/otlp", "headers": dict(tenant)},
            "otlp_http/tempo": {"endpoint": tempo_url.rstrip("/"), "headers": dict(tenant)},
        },
        "extensions": {"health_check": {"endpoint": f"{pod}:13133"}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                # The logsCollection preset adds its file_log receiver to this pipeline.
                "logs": {"receivers": ["otlp"], "processors": steps, "exporters": ["otlp_http/loki"]},
                "traces": {"receivers": ["otlp"], "processors": steps, "exporters": ["otlp_http/tempo"]},
            },
        },
    }  # fmt: skip
    values: dict = {
        "mode": "daemonset",  # logsCollection reads the node's /var/log/pods: one collector per node
        "image": {"repository": "otel/opentelemetry-collector-k8s"},
        "command": {"name": "otelcol-k8s"},
        "presets": {
            "logsCollection": {"enabled": True, "storeCheckpoints": True},  # no re-sent logs after a restart
            "kubernetesAttributes": {"enabled": True},
        },
        "alternateConfig": config,
    }
    if stack.registry:
        values["global"] = {"imageRegistry": stack.registry}
    return values
