"""The ``k8sattributes`` (``k8s_attributes``) processor: telemetry from a pod gets the pod's
Kubernetes metadata, read from the API (pods, kept live with a watch).

The pod is found by ``pod_association`` sources: ``resource_attribute`` (by default, in order:
``k8s.pod.ip``, ``k8s.pod.uid``, then ``k8s.pod.name`` with ``k8s.namespace.name``) and
``connection``, the IP address the OTLP request came from (the default's last resort: a pod
that sends without resource attributes). ``extract.metadata`` (default: namespace, pod name
and uid, start time, deployment, node), ``extract.labels`` and ``extract.annotations``
(``tag_name``, ``key``, ``from: pod``) are added where the data does not carry them already.
``filter.node_from_env_var`` watches only the pods of this node."""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from kms.errors import BadInput
from kms.pipeline.items import OTLP_REQUESTS, Item

__all__ = ["K8sAttributesProcessor"]

log = logging.getLogger("kms.pipeline")

DEFAULT_METADATA = ["k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid", "k8s.pod.start_time",
                    "k8s.deployment.name", "k8s.node.name"]
SUPPORTED_METADATA = set(DEFAULT_METADATA) | {"k8s.pod.ip", "k8s.replicaset.name", "k8s.statefulset.name",
                                              "k8s.daemonset.name", "k8s.job.name", "k8s.cronjob.name"}
CONNECTION = "connection"  # an association key: the sender's IP, matched against the pod IP
DEFAULT_ASSOCIATION = [["k8s.pod.ip"], ["k8s.pod.uid"], ["k8s.pod.name", "k8s.namespace.name"], [CONNECTION]]


def pod_metadata(pod: dict) -> dict[str, str]:
    """Every supported ``k8s.*`` attribute of a Pod object."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    out = {"k8s.namespace.name": meta.get("namespace", ""), "k8s.pod.name": meta.get("name", ""),
           "k8s.pod.uid": meta.get("uid", ""), "k8s.pod.start_time": status.get("startTime", ""),
           "k8s.node.name": spec.get("nodeName", ""), "k8s.pod.ip": status.get("podIP", "")}
    for owner in meta.get("ownerReferences") or []:
        kind, name = owner.get("kind"), owner.get("name", "")
        if kind == "ReplicaSet":
            out["k8s.replicaset.name"] = name
            suffix = (meta.get("labels") or {}).get("pod-template-hash")
            if suffix and name.endswith("-" + suffix):  # the Deployment's ReplicaSets are <deployment>-<hash>
                out["k8s.deployment.name"] = name[: -len(suffix) - 1]
        elif kind in ("StatefulSet", "DaemonSet", "Job"):
            out[f"k8s.{kind.lower()}.name"] = name
            if kind == "Job" and (m := name.rsplit("-", 1)) and len(m) == 2 and m[1].isdigit():
                out["k8s.cronjob.name"] = m[0]  # CronJob's Jobs are <cronjob>-<scheduled minute>
    return {k: v for k, v in out.items() if v}


class K8sAttributesProcessor:
    def __init__(self, cid: str, settings: dict, client_factory=None):
        extract = settings.get("extract") or {}
        self.metadata = list(extract.get("metadata") or DEFAULT_METADATA)
        unknown = [m for m in self.metadata if m not in SUPPORTED_METADATA]
        if unknown:
            raise BadInput(f"processor {cid!r}: extract.metadata {unknown} not supported "
                           f"(supported: {', '.join(sorted(SUPPORTED_METADATA))})")
        self.labels = self._rules(cid, extract.get("labels"), "labels")
        self.annotations = self._rules(cid, extract.get("annotations"), "annotations")
        self.association = []
        for i, rule in enumerate(settings.get("pod_association") or []):
            keys = []
            for src in rule.get("sources") or []:
                if src.get("from") == "resource_attribute" and src.get("name"):
                    keys.append(str(src["name"]))
                elif src.get("from") == "connection":
                    keys.append(CONNECTION)
                else:
                    raise BadInput(f"processor {cid!r}: pod_association[{i}]: source {src} not supported")
            if keys:
                self.association.append(keys)
        self.association = self.association or DEFAULT_ASSOCIATION
        node_env = (settings.get("filter") or {}).get("node_from_env_var")
        node = os.environ.get(node_env, "") if node_env else ""
        self._index: dict[tuple, dict[str, str]] = {}  # association key -> attributes to add
        self._lock = threading.Lock()
        self.informer = None
        if client_factory is None:
            from kms.kube import KubeClient, load_credentials

            creds = load_credentials("")  # in a pod: its service account; elsewhere the kubeconfig
            client_factory = lambda: KubeClient(creds)  # noqa: E731
        from kms.kube.informer import Informer

        self.informer = Informer(client_factory(), "/api/v1/pods", self._pods)
        if node:  # only this node's pods (a DaemonSet agent)
            self.informer.params["fieldSelector"] = f"spec.nodeName={node}"
        self.informer.start()

    @staticmethod
    def _rules(cid: str, rules, what: str) -> list[tuple[str, str]]:
        out = []
        for i, r in enumerate(rules or []):
            if r.get("from", "pod") != "pod" or not r.get("key"):
                raise BadInput(f"processor {cid!r}: extract.{what}[{i}]: only from: pod with a key is supported")
            out.append((str(r["key"]), str(r.get("tag_name") or f"k8s.pod.{what[:-1]}s.{r['key']}")))
        return out

    def _pods(self, pods: list[dict]) -> None:
        index: dict[tuple, dict[str, str]] = {}
        for pod in pods:
            meta = pod_metadata(pod)
            attrs = {k: v for k, v in meta.items() if k in self.metadata}
            pm = pod.get("metadata", {})
            for key, tag in self.labels:
                if key in (pm.get("labels") or {}):
                    attrs[tag] = pm["labels"][key]
            for key, tag in self.annotations:
                if key in (pm.get("annotations") or {}):
                    attrs[tag] = pm["annotations"][key]
            meta = {**meta, CONNECTION: meta["k8s.pod.ip"]} if "k8s.pod.ip" in meta else meta
            for keys in self.association:
                if all(k in meta for k in keys):
                    index[tuple((k, meta[k]) for k in keys)] = attrs
        with self._lock:
            self._index = index

    def lookup(self, attrs: dict[str, str], peer: str = "") -> dict[str, str] | None:
        with self._lock:
            index = self._index
        if peer:
            attrs = {**attrs, CONNECTION: peer}
        for keys in self.association:
            if all(k in attrs for k in keys):
                hit = index.get(tuple((k, attrs[k]) for k in keys))
                if hit is not None:
                    return hit
        return None

    def __call__(self, item: Item) -> Item:
        if item.otlp is not None:
            req = OTLP_REQUESTS[item.signal].FromString(item.otlp)
            changed = False
            for top in getattr(req, "resource_" + ("spans" if item.signal == "traces" else item.signal)):
                kvs = top.resource.attributes
                have = {kv.key: kv.value.string_value for kv in kvs}
                hit = self.lookup(have, item.peer)
                if hit:
                    kvs.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in hit.items() if k not in have)
                    changed = True
            if changed:
                item.otlp = req.SerializeToString()
        elif item.lines is not None:
            out = []
            for ln in item.lines:
                have = {**item.resource, **dict(ln.attributes)}
                hit = self.lookup(have)
                out.append(ln if not hit else type(ln)(ln.ts_ns, ln.path, ln.line, ln.time_ns, ln.attributes + tuple(
                    (k, v) for k, v in hit.items() if k not in have)))
            item.lines = out
        return item

    def stop(self) -> None:
        if self.informer is not None:
            self.informer.stop()
