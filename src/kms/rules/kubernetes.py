"""PrometheusRule objects (the Prometheus Operator's ``monitoring.coreos.com/v1`` custom resource)
read from the Kubernetes API and evaluated as rule groups, so the rules users write for
kube-prometheus-stack work unchanged. Each object's groups appear under the file
``prometheusrule/<namespace>/<name>``; an invalid object is skipped with its error logged, the
others stay loaded (the Operator likewise rejects invalid objects and keeps the rest)."""

from __future__ import annotations

import logging

import yaml

from kms.kube import Informer, KubeClient
from kms.kube.client import resource_path
from kms.rules.load import GroupSpec, RuleFileError, parse_groups
from kms.rules.manager import Ruler

__all__ = ["PrometheusRuleWatcher", "groups_of", "TENANT_LABEL"]

log = logging.getLogger("kms.rules")

GROUP_VERSION = "monitoring.coreos.com/v1"
TENANT_LABEL = "kms.io/tenant"  # an object label choosing the tenant its rules run for
_IGNORED_GROUP_KEYS = ("partial_response_strategy",)  # Thanos-only


def groups_of(obj: dict, default_tenant: str, default_interval_s: float) -> tuple[str, list[GroupSpec]]:
    """(tenant, groups) of one PrometheusRule; RuleFileError names the object and the problem."""
    meta = obj.get("metadata", {})
    file = f"prometheusrule/{meta.get('namespace', '')}/{meta.get('name', '')}"
    groups = [{k: v for k, v in g.items() if k not in _IGNORED_GROUP_KEYS}
              for g in (obj.get("spec") or {}).get("groups") or [] if isinstance(g, dict)]
    tenant = (meta.get("labels") or {}).get(TENANT_LABEL) or default_tenant
    return tenant, parse_groups(yaml.safe_dump({"groups": groups}), file, default_interval_s)


class PrometheusRuleWatcher:
    """Watches PrometheusRule objects (all namespaces, or the given ones; optionally by label
    selector) and hands their groups to the ruler."""

    def __init__(self, ruler: Ruler, client_factory, default_tenant: str, default_interval_s: float,
                 namespaces: list[str] | None = None, label_selector: str = ""):
        self.ruler = ruler
        self.default_tenant = default_tenant
        self.default_interval_s = default_interval_s
        self.errors: dict[str, str] = {}  # object file -> why it was skipped
        self.informers = [
            Informer(client_factory(), resource_path(GROUP_VERSION, "prometheusrules", ns or None),
                     self._changed_fn(ns or "*"), label_selector)
            for ns in (namespaces or [""])
        ]

    def _changed_fn(self, scope: str):
        def changed(objects: list[dict]) -> None:
            groups: list[tuple[str, GroupSpec]] = []
            for obj in objects:
                meta = obj.get("metadata", {})
                name = f"{meta.get('namespace')}/{meta.get('name')}"
                try:
                    tenant, specs = groups_of(obj, self.default_tenant, self.default_interval_s)
                except RuleFileError as e:
                    if self.errors.get(name) != str(e):
                        log.error("PrometheusRule %s skipped: %s", name, e)
                    self.errors[name] = str(e)
                    continue
                self.errors.pop(name, None)
                groups += [(tenant, s) for s in specs]
            self.ruler.set_external(f"prometheusrules:{scope}", groups)
        return changed

    def start(self) -> None:
        for inf in self.informers:
            inf.start()

    def stop(self) -> None:
        for inf in self.informers:
            inf.stop()


def client_factory(kubeconfig: str):
    from kms.kube import load_credentials

    creds = load_credentials(kubeconfig)
    return lambda: KubeClient(creds)
