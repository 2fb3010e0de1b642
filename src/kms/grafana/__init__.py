"""Grafana provisioning for kms: data sources linked by trace id, and kms's own dashboards.

The same functions feed ``kms grafana`` and the Kubernetes renderer."""

from kms.grafana.dashboards import dashboards, red_dashboard, stack_dashboard
from kms.grafana.datasources import DEFAULT_URL, LOKI_UID, PROM_UID, TEMPO_UID, datasources
from kms.grafana.provision import dashboard_provider, write

__all__ = [
    "DEFAULT_URL",
    "PROM_UID",
    "LOKI_UID",
    "TEMPO_UID",
    "datasources",
    "dashboards",
    "red_dashboard",
    "stack_dashboard",
    "dashboard_provider",
    "write",
]
