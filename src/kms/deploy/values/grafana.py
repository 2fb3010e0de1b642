"""Grafana with kms's correlated data sources (kms.grafana) and dashboards embedded as JSON in
ConfigMaps of the umbrella chart, so nothing is downloaded when the pod starts."""

from __future__ import annotations

from kms.deploy.model import Stack
from kms.deploy.secrets import GRAFANA_PASSWORD_KEY, GRAFANA_USER_KEY, grafana_secret_name
from kms.grafana import dashboard_provider, datasources

__all__ = ["dashboards_configmap", "grafana_values"]

_ROOT = "/var/lib/grafana/dashboards"


def dashboards_configmap(release: str, folder: str) -> str:
    return f"{release}-dashboards-{folder}"


def _providers(folders: list[str]) -> dict:
    providers = []
    for folder in folders:
        (p,) = dashboard_provider(f"{_ROOT}/{folder}")["providers"]
        p.update(name=folder, folder=folder)
        providers.append(p)
    return {"apiVersion": 1, "providers": providers}


def grafana_values(stack: Stack, url: str, urls: dict[str, str] | None, folders: list[str]) -> dict:
    """``url``: one API port serving all three (kms); ``urls``: per data source type (prometheus,
    loki, tempo) its own query URL as Grafana reaches it (separate engines)."""
    values: dict = {
        "adminUser": stack.grafana.admin_user,
        "datasources": {"datasources.yaml": datasources(url, stack.tenant, urls=urls)},
        "dashboardProviders": {"dashboardproviders.yaml": _providers(folders)},
        "dashboardsConfigMaps": {f: dashboards_configmap(stack.name, f) for f in folders},
        "testFramework": {"enabled": False},
    }
    if stack.grafana.admin_password:  # from the Secret kms renders, not as adminPassword in the values
        del values["adminUser"]
        values["admin"] = {"existingSecret": grafana_secret_name(stack), "userKey": GRAFANA_USER_KEY,
                           "passwordKey": GRAFANA_PASSWORD_KEY}  # fmt: skip
    if stack.registry:
        values["global"] = {"imageRegistry": stack.registry}
    return values
