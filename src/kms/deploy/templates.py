"""The umbrella chart's own ``kms:`` values, taken from the part's objects so that the chart's
templates (charts/kms-stack/templates) render exactly the plain manifests (a test compares them)."""

from __future__ import annotations

from kms.deploy.profiles import Part
from kms.deploy.small import image

__all__ = ["template_values"]


def _first(part: Part, kind: str, suffix: str = "") -> dict | None:
    for o in part.objects:
        # suffix "/name": exactly that name
        if o["kind"] == kind and f"/{o['metadata']['name']}".endswith(suffix):
            return o
    return None


def template_values(part: Part) -> dict:
    s = part.stack
    inst = _first(part, "Instrumentation")
    rules = {o["metadata"]["name"].removeprefix(f"{s.name}-"): o["spec"]["groups"]
             for o in part.objects if o["kind"] == "PrometheusRule"}  # fmt: skip
    server = _first(part, "StatefulSet", f"/{s.name}")  # kms itself, not a Thanos StatefulSet
    agent_cm = _first(part, "ConfigMap", "-agent")
    server_cm = _first(part, "ConfigMap", s.name) if server else None
    values: dict = {
        "cluster": s.cluster,
        "instrumentation": {"enabled": inst is not None},
        # Only where the part scrapes them through ServiceMonitors (the small profile's agent scrapes directly).
        "nodeExporters": [{"name": n.name, "port": n.port, "addresses": list(n.addresses)} for n in s.exporters.node
                          if _first(part, "ServiceMonitor", f"-node-{n.name}")],
        "rules": {"enabled": bool(rules), "objects": rules},
        "dashboards": sorted(part.dashboards),
        "server": {"enabled": server is not None},
        "agent": {"enabled": agent_cm is not None},
        "thanos": {"objects": [o for o in part.objects
                               if o["metadata"]["name"].startswith(f"{s.name}-thanos-")]},  # fmt: skip
    }
    if inst:
        values["instrumentation"].update(inst["spec"])
    if server and server_cm:
        values["server"].update(image=image(s), storageSize=s.small.storage_size, config=server_cm["data"]["kms.yaml"],
                                watchRules="serviceAccountName" in server["spec"]["template"]["spec"])
    if agent_cm:
        values["agent"].update(image=image(s), tenant=s.tenant, config=agent_cm["data"]["agent.yaml"])
    return values
