"""kube-prometheus-stack: Prometheus with exemplar storage writing to Mimir, node-exporter and
kube-state-metrics; agent mode for the workload clusters of the multi-cluster profile."""

from __future__ import annotations

from kms.deploy.endpoints import TENANT_HEADER
from kms.deploy.model import Stack

__all__ = ["prometheus_values"]

# Without these, ServiceMonitors lacking the `release: <name>` label are silently ignored.
_SELECTORS = ("serviceMonitor", "podMonitor", "probe", "rule", "scrapeConfig")


def prometheus_values(stack: Stack, push_url: str, *, agent: bool = False) -> dict:
    """``push_url``: Mimir's ``/api/v1/push`` as this cluster reaches it."""
    spec: dict = {
        "externalLabels": {"cluster": stack.cluster},
        "remoteWrite": [{"url": push_url, "sendExemplars": True, "headers": {TENANT_HEADER: stack.tenant}}],
        "enableFeatures": ["exemplar-storage"],
        "exemplars": {"maxSize": 100000},
        "retention": "2d",  # Mimir keeps the long-term data; local blocks only cover outages
    }
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
    if stack.registry:
        # Also rewrites the images the operator passes as flags (config-reloader, thanos).
        values["global"] = {"imageRegistry": stack.registry}
    return values
