"""The Thanos alternative for the multi-cluster central side (``multi_cluster.central: thanos``).

Bitnami-free: shared/specs/k8s-charts.md names no Thanos chart to use (bitnami/thanos's free
images stopped updating in 2025), so kms does not take one. The sidecars and the ruler come
from kube-prometheus-stack (``prometheusSpec.thanos``, ``thanosRuler``: the Prometheus Operator
runs them); query, store gateway and compactor are kms's own plain objects on the official
``quay.io/thanos/thanos`` image, the tag kube-prometheus-stack 88.5.3 pins for its sidecar.

    workload cluster: Prometheus + sidecar ──blocks──► S3 ◄── store gateway, compactor, ruler
                              ▲ gRPC (recent 2h)            ▲ gRPC
                              └──────────── central query ──┘ ◄── Grafana
"""

from __future__ import annotations

from kms.deploy.images import rewrite
from kms.deploy.manifests import labels
from kms.deploy.model import Stack
from kms.deploy.output import dump_yaml

__all__ = ["THANOS_IMAGE", "OBJSTORE_KEY", "objstore_secret_name", "objstore_secret", "query_url",
           "thanos_objects", "ruler_values"]  # fmt: skip

THANOS_IMAGE = "quay.io/thanos/thanos:v0.42.4"  # kube-prometheus-stack 88.5.3's thanosImage
OBJSTORE_KEY = "objstore.yml"
_HTTP, _GRPC = 10902, 10901


def objstore_secret_name(stack: Stack) -> str:
    return f"{stack.name}-thanos-objstore"


def objstore_secret(stack: Stack) -> dict:
    """Thanos's bucket config (the sidecars, ruler, store gateway and compactor all read it)."""
    s = stack.storage
    config = {"type": "S3", "config": {"bucket": s.buckets.thanos, "endpoint": s.endpoint, "region": s.region,
                                       "insecure": s.insecure, "access_key": s.access_key, "secret_key": s.secret_key}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": objstore_secret_name(stack), "namespace": stack.namespace,
                     "labels": labels(stack, "credentials")},
        "type": "Opaque",
        "stringData": {OBJSTORE_KEY: dump_yaml(config)},
    }  # fmt: skip


def query_url(stack: Stack) -> str:
    """Thanos query's Prometheus API as Grafana and the ruler reach it."""
    return f"http://{stack.name}-thanos-query.{stack.namespace}.svc:9090"


def _component(stack: Stack, component: str) -> tuple[str, dict, dict]:
    name = f"{stack.name}-thanos-{component}"
    sel = {"app.kubernetes.io/name": f"thanos-{component}", "app.kubernetes.io/instance": stack.name}
    return name, sel, labels(stack, f"thanos-{component}")


def _container(stack: Stack, component: str, args: list[str], objstore: bool, data: bool) -> dict:
    mounts = ([{"name": "objstore", "mountPath": "/etc/thanos", "readOnly": True}] if objstore else []) + (
        [{"name": "data", "mountPath": "/data"}] if data else [])
    image = rewrite(THANOS_IMAGE, stack.registry) if stack.registry else THANOS_IMAGE
    return {
        "name": component, "image": image,
        "args": [component, f"--http-address=0.0.0.0:{_HTTP}", f"--grpc-address=0.0.0.0:{_GRPC}", "--log.level=info",
                 *([f"--objstore.config-file=/etc/thanos/{OBJSTORE_KEY}"] if objstore else []),
                 *(["--data-dir=/data"] if data else []), *args],
        "ports": [{"name": "http", "containerPort": _HTTP, "protocol": "TCP"},
                  {"name": "grpc", "containerPort": _GRPC, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}, "periodSeconds": 30},
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
    }  # fmt: skip


def _service(stack: Stack, component: str, http_port: int) -> dict:
    name, sel, lab = _component(stack, component)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": stack.namespace, "labels": lab},
            "spec": {"selector": sel, "ports": [
                {"name": "http", "port": http_port, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": _GRPC, "targetPort": "grpc", "protocol": "TCP"}]}}  # fmt: skip


def _workload(stack: Stack, component: str, kind: str, container: dict, size: str = "") -> dict:
    name, sel, lab = _component(stack, component)
    pod: dict = {"containers": [container]}
    if any(m["name"] == "objstore" for m in container["volumeMounts"]):
        pod["volumes"] = [{"name": "objstore", "secret": {"secretName": objstore_secret_name(stack)}}]
    spec: dict = {"replicas": 1, "selector": {"matchLabels": sel}, "template": {"metadata": {"labels": lab}, "spec": pod}}
    if kind == "StatefulSet":
        spec["serviceName"] = name
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}]
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": stack.namespace, "labels": lab},
            "spec": spec}  # fmt: skip


def _endpoints(stack: Stack) -> list[str]:
    """Every gRPC StoreAPI the query fans out to: the store gateway (uploaded blocks), the ruler,
    the central Prometheus's sidecar and each workload cluster's sidecar (the last 2h, not yet
    uploaded)."""
    ns, mc = stack.namespace, stack.multi_cluster
    return [
        f"{stack.name}-thanos-store.{ns}.svc:{_GRPC}",
        # The Prometheus Operator's governing Service of the ThanosRuler pods (port name grpc).
        f"dnssrv+_grpc._tcp.thanos-ruler-operated.{ns}.svc",
        f"{stack.name}-prometheus-thanos-discovery.{ns}.svc:{_GRPC}",  # kube-prometheus-stack's thanosService
        *(mc.thanos_sidecar_address.replace("{cluster}", c) for c in mc.clusters),
    ]


def thanos_objects(stack: Stack) -> list[dict]:
    """Query (Deployment), store gateway and compactor (StatefulSets, one replica: the compactor
    must be the only one writing to the bucket) with their Services."""
    query = _container(stack, "query", [
        # Series of the two replicas of an HA pair (and of ruler replicas) are merged, not doubled.
        "--query.replica-label=prometheus_replica", "--query.replica-label=rule_replica",
        *(f"--endpoint={e}" for e in _endpoints(stack))], objstore=False, data=False)
    store = _container(stack, "store", [], objstore=True, data=True)
    compact = _container(stack, "compact", ["--wait"], objstore=True, data=True)
    return [
        _workload(stack, "query", "Deployment", query), _service(stack, "query", 9090),
        _workload(stack, "store", "StatefulSet", store, "10Gi"), _service(stack, "store", _HTTP),
        _workload(stack, "compact", "StatefulSet", compact, "20Gi"), _service(stack, "compact", _HTTP),
    ]


def ruler_values(stack: Stack) -> dict:
    """kube-prometheus-stack's ThanosRuler: rules over every cluster's data through the query,
    results uploaded to the bucket, alerts to the central Alertmanager."""
    alertmanager = f"{stack.name}-prometheus-alertmanager.{stack.namespace}.svc:9093"  # <fullname>-alertmanager
    return {"thanosRuler": {"enabled": True, "thanosRulerSpec": {
        "queryEndpoints": [query_url(stack).removeprefix("http://")],
        "objectStorageConfig": {"existingSecret": {"name": objstore_secret_name(stack), "key": OBJSTORE_KEY}},
        # Only rules labelled for the global view: the central Prometheus evaluates all the others
        # (its own cluster's), so no alert is evaluated twice.
        "ruleSelectorNilUsesHelmValues": False,
        "ruleSelector": {"matchLabels": {"kms.io/evaluate": "thanos"}},
        "ruleNamespaceSelector": {},
        "alertmanagersConfig": {"secret": {"alertmanagers": [
            {"static_configs": [alertmanager], "scheme": "http", "api_version": "v2"}]}},
    }}}  # fmt: skip
