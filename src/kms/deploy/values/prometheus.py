"""kube-prometheus-stack: Prometheus with exemplar storage writing to Mimir, node-exporter and
kube-state-metrics; agent mode for the workload clusters of the multi-cluster profile, or a
Thanos sidecar uploading to the bucket (multi_cluster.central thanos)."""

from __future__ import annotations

from kms.deploy.endpoints import TENANT_HEADER
from kms.deploy.model import Stack

__all__ = ["prometheus_values"]

# Without these, ServiceMonitors lacking the `release: <name>` label are silently ignored.
_SELECTORS = ("serviceMonitor", "podMonitor", "probe", "rule", "scrapeConfig")


def prometheus_values(stack: Stack, push_url: str | None, *, agent: bool = False, thanos: str = "",
                      receive: bool = False, expose_sidecar: bool = False) -> dict:
    """``push_url``: Mimir's ``/api/v1/push`` as this cluster reaches it (None: no remote write).
    ``thanos``: the objstore Secret a Thanos sidecar uploads blocks with; ``receive``: accept
    remote write and OTLP (the Thanos central side has no Mimir to take them); ``expose_sidecar``:
    a LoadBalancer for the sidecar's gRPC, which the central query reaches across clusters."""
    spec: dict = {"externalLabels": {"cluster": stack.cluster}}
    if push_url:
        spec["remoteWrite"] = [{"url": push_url, "sendExemplars": True, "headers": {TENANT_HEADER: stack.tenant}}]
    spec |= {
        "enableFeatures": ["exemplar-storage"],
        "exemplars": {"maxSize": 100000},
        "retention": "2d",  # Mimir or the Thanos bucket keeps the long-term data; local blocks cover outages
    }
    if thanos:
        spec["thanos"] = {"objectStorageConfig": {"existingSecret": {"name": thanos, "key": "objstore.yml"}}}
    if receive:  # Tempo's metrics generator writes here; the collector sends OTLP metrics here
        spec |= {"enableRemoteWriteReceiver": True, "enableOTLPReceiver": True}
    for sel in _SELECTORS:
        spec[f"{sel}SelectorNilUsesHelmValues"] = False
    values: dict = {
        "crds": {"enabled": True},
        "prometheus": {"agentMode": agent, "prometheusSpec": spec},
        "grafana": {"enabled": False},  # Grafana is its own release with the correlated data sources
        "alertmanager": {"enabled": stack.alerting and not agent},
        "defaultRules": {"create": stack.alerting and not agent},
        "nodeExporter": {"enabled": True},
        "kubeStateMetrics": {"enabled": True},
    }
    if thanos:  # the sidecar's StoreAPI: a Service in the cluster, a LoadBalancer for other clusters
        values["prometheus"]["thanosService"] = {"enabled": True}
        if expose_sidecar:
            values["prometheus"]["thanosServiceExternal"] = {"enabled": True}
    if stack.registry:
        # Also rewrites the images the operator passes as flags (config-reloader, thanos).
        values["global"] = {"imageRegistry": stack.registry}
    return values
