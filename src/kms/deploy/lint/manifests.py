"""Checks of plain Kubernetes manifests: ServiceMonitors find their Service and port, external
exporters' Service/EndpointSlice/Endpoints agree on port names, Instrumentation is well typed,
and in an air-gapped stack every image comes from the private registry."""

from __future__ import annotations

from kms.deploy.lint.findings import Doc

__all__ = ["check_manifests"]


def _ports(obj: dict) -> set[str]:
    if obj["kind"] == "Service":
        return {p.get("name", "") for p in obj.get("spec", {}).get("ports", [])}
    if obj["kind"] == "EndpointSlice":
        return {p.get("name", "") for p in obj.get("ports") or []}
    return {p.get("name", "") for s in obj.get("subsets") or [] for p in s.get("ports") or []}  # Endpoints


def _images(obj: dict) -> list[tuple[str, str]]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec if obj["kind"] == "Pod" else {}
    out = []
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(pod.get(kind) or []):
            out.append((f"spec.template.spec.{kind}[{i}].image", c.get("image", "")))
    return out


def _check_agent_cluster(d: Doc, obj: dict) -> None:
    """A ``kms agent`` DaemonSet forwards everything with its --external-label labels: without
    cluster=..., a workload cluster's data is indistinguishable at the central stack."""
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    for i, c in enumerate(containers):
        args = [str(a) for a in c.get("args") or []]
        if args[:1] != ["agent"]:
            continue
        labels = [args[j + 1] for j, a in enumerate(args[:-1]) if a == "--external-label"]
        labels += [a.split("=", 1)[1] for a in args if a.startswith("--external-label=")]
        if not any(lab.startswith("cluster=") and lab != "cluster=" for lab in labels):
            d.error("kms-agent-cluster-label", f"spec.template.spec.containers[{i}].args", "kms agent without a "
                    "cluster external label: its metrics, logs and traces carry no `cluster` at the central stack",
                    "add args: [--external-label, cluster=<cluster name>]")


def check_manifests(docs: list[Doc], registry: str = "") -> None:
    objs = [(d, d.data) for d in docs if isinstance(d.data, dict) and "kind" in d.data]
    services = {(o["metadata"].get("namespace"), o["metadata"]["name"]): (d, o) for d, o in objs if o["kind"] == "Service"}
    for d, o in objs:
        kind, meta = o["kind"], o.get("metadata", {})
        ns = meta.get("namespace")
        if kind in ("EndpointSlice", "Endpoints"):
            svc_name = (meta.get("labels") or {}).get("kubernetes.io/service-name") if kind == "EndpointSlice" else meta.get("name")
            svc = services.get((ns, svc_name))
            if svc and not _ports(o) <= _ports(svc[1]):
                d.error("endpoints-port-name", "ports" if kind == "EndpointSlice" else "subsets",
                        f"port names {sorted(_ports(o))} differ from Service {svc_name!r} ports {sorted(_ports(svc[1]))}",
                        "use the same port name in the Service and its endpoints")
        elif kind == "ServiceMonitor":
            spec = o.get("spec", {})
            if "release" not in (meta.get("labels") or {}):
                d.warn("servicemonitor-release-label", "metadata.labels", "no `release` label: kube-prometheus-stack "
                       "ignores it unless serviceMonitorSelectorNilUsesHelmValues is false",
                       "add labels: {release: <kube-prometheus-stack release>}")
            want = (spec.get("selector") or {}).get("matchLabels") or {}
            matches = [s for (sns, _), (_, s) in services.items()
                       if sns == ns and want and want.items() <= (s["metadata"].get("labels") or {}).items()]
            local = [s for (sns, _), (_, s) in services.items() if sns == ns]
            if local and not matches:
                d.warn("servicemonitor-selector", "spec.selector", f"matchLabels {want} select no Service in these files",
                       "match the Service's labels")
            for i, ep in enumerate(spec.get("endpoints") or []):
                if matches and ep.get("port") and all(ep["port"] not in _ports(s) for s in matches):
                    d.error("servicemonitor-port", f"spec.endpoints[{i}].port", f"port {ep['port']!r} is not a port name of "
                            "the selected Service: the target never appears", f"use one of {sorted(_ports(matches[0]))}")
        elif kind == "Instrumentation":
            arg = ((o.get("spec") or {}).get("sampler") or {}).get("argument")
            if arg is not None and not isinstance(arg, str):
                d.error("instrumentation-sampler-argument", "spec.sampler.argument", f"{arg!r} is a number; the CRD wants "
                        "a string and the API server rejects the resource", f"quote it: argument: \"{arg}\"")
        elif kind == "DaemonSet":
            _check_agent_cluster(d, o)
        if registry:
            for path, image in _images(o):
                if image and not image.startswith(registry.rstrip("/") + "/"):
                    d.error("image-registry", path, f"image {image!r} is not pulled from {registry}: ImagePullBackOff "
                            "in an air-gapped cluster", f"mirror it and use {registry.rstrip('/')}/...")
