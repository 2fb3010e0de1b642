"""Kubernetes objects -> target groups with Prometheus's ``__meta_kubernetes_*`` labels, one
builder per role, as Prometheus's ``discovery/kubernetes`` builds them.

Every builder is a pure function of API objects (the JSON dicts the API server returns) and
returns a :class:`Group`: labels shared by its targets plus one label set per target (a
target's labels win over the group's). Labels with an empty value are kept, as Prometheus keeps
them in the discovered set; relabeling treats them as absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Group", "PREFIX", "endpoints_group", "endpointslice_group", "node_group", "node_meta", "pod_group",
           "sanitize", "service_group"]

PREFIX = "__meta_kubernetes_"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")

Key = tuple[str, str]  # (namespace, name); nodes have namespace ""


def sanitize(name: str) -> str:
    """A Kubernetes label or annotation key as a label name part (``app.kubernetes.io/name``
    -> ``app_kubernetes_io_name``)."""
    return _INVALID.sub("_", name)


@dataclass
class Group:
    source: str  # node/<name>, pod/<ns>/<name>, svc/<ns>/<name>, endpoints/…, endpointslice/…
    labels: dict[str, str] = field(default_factory=dict)
    targets: list[dict[str, str]] = field(default_factory=list)

    def label_sets(self) -> list[dict[str, str]]:
        return [{**self.labels, **t} for t in self.targets]


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _object_meta(role: str, obj: dict) -> dict[str, str]:
    """``<role>_name``, ``<role>_label_*``/``labelpresent_*`` and the annotation pair."""
    meta = _meta(obj)
    out = {f"{PREFIX}{role}_name": meta.get("name", "")}
    for kind, items in (("label", meta.get("labels")), ("annotation", meta.get("annotations"))):
        for k, v in (items or {}).items():
            out[f"{PREFIX}{role}_{kind}_{sanitize(k)}"] = "" if v is None else str(v)
            out[f"{PREFIX}{role}_{kind}present_{sanitize(k)}"] = "true"
    return out


def _join(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- node --

# Prometheus's (and the kubelet's) preference among a node's addresses
_ADDRESS_ORDER = ("InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname")


def node_meta(node: dict) -> dict[str, str]:
    """What ``attach_metadata.node`` adds to pod and endpoint targets: name, labels, annotations."""
    return _object_meta("node", node)


def node_group(node: dict) -> Group | None:
    """One target at the kubelet port of the preferred address; None when the node has no address."""
    meta, spec, status = _meta(node), node.get("spec") or {}, node.get("status") or {}
    g = Group(f"node/{meta.get('name', '')}")
    g.labels = {f"{PREFIX}node_provider_id": spec.get("providerID", ""), **node_meta(node)}
    for cond in status.get("conditions") or []:
        g.labels[f"{PREFIX}node_condition_{sanitize(str(cond.get('type', '')).lower())}"] = \
            str(cond.get("status", "")).lower()
    by_type: dict[str, list[str]] = {}
    for a in status.get("addresses") or []:
        by_type.setdefault(a.get("type", ""), []).append(a.get("address", ""))
    addr = next((by_type[t][0] for t in _ADDRESS_ORDER if t in by_type), None)
    if addr is None:
        return None
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port", 0)
    t = {"__address__": _join(addr, port), "instance": meta.get("name", "")}
    for ty, addrs in by_type.items():
        t[sanitize(f"{PREFIX}node_address_{ty}")] = addrs[0]
    g.targets.append(t)
    return g


# -- pod --

def _pod_ready(pod: dict) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown")).lower()
    return "unknown"


def _pod_labels(pod: dict) -> dict[str, str]:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    out = {
        f"{PREFIX}pod_ip": status.get("podIP", ""), f"{PREFIX}pod_ready": _pod_ready(pod),
        f"{PREFIX}pod_phase": status.get("phase", ""), f"{PREFIX}pod_node_name": spec.get("nodeName", ""),
        f"{PREFIX}pod_host_ip": status.get("hostIP", ""), f"{PREFIX}pod_uid": meta.get("uid", ""),
        **_object_meta("pod", pod),
    }
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if owner:
        if owner.get("kind"):
            out[f"{PREFIX}pod_controller_kind"] = owner["kind"]
        if owner.get("name"):
            out[f"{PREFIX}pod_controller_name"] = owner["name"]
    return out


def _containers(pod: dict) -> list[tuple[dict, bool]]:
    """(container, is_init): regular containers first, then init containers (sidecars included)."""
    spec = pod.get("spec") or {}
    return [(c, False) for c in spec.get("containers") or []] + [(c, True) for c in spec.get("initContainers") or []]


def _container_id(pod: dict, name: str, init: bool) -> str:
    statuses = (pod.get("status") or {}).get("initContainerStatuses" if init else "containerStatuses") or []
    return next((s.get("containerID", "") for s in statuses if s.get("name") == name), "")


def _container_port(c: dict, port: dict, init: bool) -> dict[str, str]:
    return {f"{PREFIX}pod_container_name": c.get("name", ""), f"{PREFIX}pod_container_image": c.get("image", ""),
            f"{PREFIX}pod_container_port_name": port.get("name", ""),
            f"{PREFIX}pod_container_port_number": str(port.get("containerPort", "")),
            f"{PREFIX}pod_container_port_protocol": port.get("protocol", ""),
            f"{PREFIX}pod_container_init": "true" if init else "false"}


def pod_group(pod: dict, node: dict | None = None, attach_node: bool = False) -> Group:
    """One target per container port (``ip:port``), and one per container without ports (the
    bare pod IP); none while the pod has no IP, or, with ``attach_node``, while its node is unknown."""
    meta = _meta(pod)
    g = Group(f"pod/{meta.get('namespace', '')}/{meta.get('name', '')}")
    ip = (pod.get("status") or {}).get("podIP", "")
    if not ip or (attach_node and node is None):
        return g
    g.labels = {**_pod_labels(pod), f"{PREFIX}namespace": meta.get("namespace", "")}
    if node is not None:
        g.labels.update(node_meta(node))
    for c, init in _containers(pod):
        cid = _container_id(pod, c.get("name", ""), init)
        if not c.get("ports"):
            g.targets.append({"__address__": ip, f"{PREFIX}pod_container_name": c.get("name", ""),
                              f"{PREFIX}pod_container_id": cid, f"{PREFIX}pod_container_image": c.get("image", ""),
                              f"{PREFIX}pod_container_init": "true" if init else "false"})
            continue
        for port in c["ports"]:
            g.targets.append({"__address__": _join(ip, port.get("containerPort", "")),
                              f"{PREFIX}pod_container_id": cid, **_container_port(c, port, init)})
    return g


# -- service --

def _service_labels(svc: dict) -> dict[str, str]:
    return {f"{PREFIX}namespace": _meta(svc).get("namespace", ""), **_object_meta("service", svc)}


def service_group(svc: dict) -> Group:
    """One target per service port at ``<name>.<namespace>.svc:<port>``."""
    meta, spec = _meta(svc), svc.get("spec") or {}
    ns, name, kind = meta.get("namespace", ""), meta.get("name", ""), spec.get("type", "")
    g = Group(f"svc/{ns}/{name}", _service_labels(svc))
    for port in spec.get("ports") or []:
        t = {"__address__": _join(f"{name}.{ns}.svc", port.get("port", "")),
             f"{PREFIX}service_port_name": port.get("name", ""),
             f"{PREFIX}service_port_number": str(port.get("port", "")),
             f"{PREFIX}service_port_protocol": port.get("protocol", ""), f"{PREFIX}service_type": kind}
        if kind == "ExternalName":
            t[f"{PREFIX}service_external_name"] = spec.get("externalName", "")
        else:
            t[f"{PREFIX}service_cluster_ip"] = spec.get("clusterIP", "")
        if kind == "LoadBalancer":
            ips = [i["ip"] for i in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or [] if i.get("ip")]
            t[f"{PREFIX}service_loadbalancer_ip"] = ",".join(ips) or spec.get("loadBalancerIP", "")
        g.targets.append(t)
    return g


# -- endpoints and endpointslice: one address x port each, with service and pod metadata --

class _PodPorts:
    """Pods met through endpoint addresses, and which of their ports the endpoints named: the
    pods' other container ports become targets too (Prometheus does this so that a pod's
    side ports, e.g. a metrics port the service does not expose, can be selected)."""

    def __init__(self) -> None:
        self.seen: dict[Key, tuple[dict, set[int]]] = {}

    def add(self, pod: dict, port: int | None) -> None:
        key = (_meta(pod).get("namespace", ""), _meta(pod).get("name", ""))
        entry = self.seen.setdefault(key, (pod, set()))
        if port is not None:
            entry[1].add(int(port))

    def extra_targets(self) -> list[dict[str, str]]:
        out = []
        for pod, used in self.seen.values():
            ip = (pod.get("status") or {}).get("podIP", "")
            if not ip:
                continue
            for c, init in _containers(pod):
                for port in c.get("ports") or []:
                    if int(port.get("containerPort", 0)) in used:
                        continue
                    out.append({"__address__": _join(ip, port.get("containerPort", "")),
                                **_container_port(c, port, init), **_pod_labels(pod)})
        return out


def _with_pod(target: dict[str, str], pod: dict, port: int | None, protocol: str | None) -> dict[str, str]:
    """The pod's labels and, when one of its containers declares ``port``, that container's."""
    target = {**target, **_pod_labels(pod)}
    if port is None:
        return target
    for c, init in _containers(pod):
        cport = next((p for p in c.get("ports") or [] if int(p.get("containerPort", 0)) == int(port)), None)
        if cport is not None:
            target.update(_container_port(c, cport, init))
            if protocol is not None:  # the endpoints role reports the endpoint port's protocol
                target[f"{PREFIX}pod_container_port_protocol"] = protocol
            break
    return target


def _node_for(ref: dict | None, node_name: str | None, nodes: Mapping[Key, dict], prefer_ref: bool) -> dict | None:
    """The node an address runs on: its nodeName or a Node target reference (endpoints prefer the
    nodeName, endpoint slices the reference, as in Prometheus)."""
    by_ref = ref.get("name", "") if ref and ref.get("kind") == "Node" else None
    name = (by_ref or node_name) if prefer_ref else (node_name or by_ref)
    return nodes.get(("", name)) if name else None


def _pod_for(ref: dict | None, pods: Mapping[Key, dict]) -> dict | None:
    if not ref or ref.get("kind") != "Pod":
        return None
    return pods.get((ref.get("namespace", ""), ref.get("name", "")))


def endpoints_group(eps: dict, services: Mapping[Key, dict], pods: Mapping[Key, dict],
                    nodes: Mapping[Key, dict] | None = None) -> Group:
    """``role: endpoints``: ready addresses (``endpoint_ready="true"``), then not-ready ones,
    for each port of each subset; the service of the same name adds its labels."""
    meta = _meta(eps)
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    g = Group(f"endpoints/{ns}/{name}", {f"{PREFIX}namespace": ns})
    if (ns, name) in services:
        g.labels.update(_service_labels(services[(ns, name)]))
    g.labels.update(_object_meta("endpoints", eps))
    seen = _PodPorts()
    for subset in eps.get("subsets") or []:
        for port in subset.get("ports") or []:
            for ready, key in (("true", "addresses"), ("false", "notReadyAddresses")):
                for addr in subset.get(key) or []:
                    ref = addr.get("targetRef")
                    t = {"__address__": _join(addr.get("ip", ""), port.get("port", "")),
                         f"{PREFIX}endpoint_port_name": port.get("name", ""),
                         f"{PREFIX}endpoint_port_protocol": port.get("protocol", ""),
                         f"{PREFIX}endpoint_ready": ready}
                    if ref:
                        t[f"{PREFIX}endpoint_address_target_kind"] = ref.get("kind", "")
                        t[f"{PREFIX}endpoint_address_target_name"] = ref.get("name", "")
                    if addr.get("nodeName") is not None:
                        t[f"{PREFIX}endpoint_node_name"] = addr["nodeName"]
                    if addr.get("hostname"):
                        t[f"{PREFIX}endpoint_hostname"] = addr["hostname"]
                    if nodes is not None and (node := _node_for(ref, addr.get("nodeName"), nodes, False)) is not None:
                        t.update(node_meta(node))
                    pod = _pod_for(ref, pods)
                    if pod is not None:
                        seen.add(pod, port.get("port"))
                        t = _with_pod(t, pod, port.get("port"), port.get("protocol", ""))
                    g.targets.append(t)
    g.targets += seen.extra_targets()
    return g


def _non_primary_family(svc: dict | None, eps: dict) -> bool:
    """A dual-stack service's slice of its second IP family (Prometheus skips it: the same pods
    would otherwise be scraped twice)."""
    spec = (svc or {}).get("spec") or {}
    if spec.get("ipFamilyPolicy") not in ("PreferDualStack", "RequireDualStack") or not spec.get("ipFamilies"):
        return False
    return eps.get("addressType") != spec["ipFamilies"][0]


def endpointslice_group(eps: dict, services: Mapping[Key, dict], pods: Mapping[Key, dict],
                        nodes: Mapping[Key, dict] | None = None) -> Group:
    """``role: endpointslice`` (discovery.k8s.io/v1): every address of every endpoint for each
    port; the service named by the ``kubernetes.io/service-name`` label adds its labels."""
    meta = _meta(eps)
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    g = Group(f"endpointslice/{ns}/{name}",
              {f"{PREFIX}namespace": ns, f"{PREFIX}endpointslice_address_type": eps.get("addressType", "")})
    g.labels.update(_object_meta("endpointslice", eps))
    svc_name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
    svc = services.get((ns, svc_name)) if svc_name is not None else None
    if svc is not None:
        g.labels.update(_service_labels(svc))
    if _non_primary_family(svc, eps):
        return g
    seen = _PodPorts()
    for ep in eps.get("endpoints") or []:
        cond, ref = ep.get("conditions") or {}, ep.get("targetRef")
        for port in eps.get("ports") or []:
            number = port.get("port")
            for addr in ep.get("addresses") or []:
                t = {"__address__": _join(addr, number) if number is not None else addr}
                optional = {"endpointslice_port_name": port.get("name"),
                            "endpointslice_port_protocol": port.get("protocol"),
                            "endpointslice_port": None if number is None else str(number),
                            "endpointslice_port_app_protocol": port.get("appProtocol"),
                            "endpointslice_endpoint_hostname": ep.get("hostname"),
                            "endpointslice_endpoint_node_name": ep.get("nodeName"),
                            "endpointslice_endpoint_zone": ep.get("zone")}
                for c in ("ready", "serving", "terminating"):
                    if cond.get(c) is not None:
                        optional[f"endpointslice_endpoint_conditions_{c}"] = "true" if cond[c] else "false"
                t.update({PREFIX + k: v for k, v in optional.items() if v is not None})
                if ref:
                    t[f"{PREFIX}endpointslice_address_target_kind"] = ref.get("kind", "")
                    t[f"{PREFIX}endpointslice_address_target_name"] = ref.get("name", "")
                for k, v in (ep.get("deprecatedTopology") or {}).items():
                    t[f"{PREFIX}endpointslice_endpoint_topology_{sanitize(k)}"] = v
                    t[f"{PREFIX}endpointslice_endpoint_topology_present_{sanitize(k)}"] = "true"
                if nodes is not None and (node := _node_for(ref, ep.get("nodeName"), nodes, True)) is not None:
                    t.update(node_meta(node))
                pod = _pod_for(ref, pods)
                if pod is not None:
                    seen.add(pod, number)
                    t = _with_pod(t, pod, number, None)
                g.targets.append(t)
    g.targets += seen.extra_targets()
    return g
