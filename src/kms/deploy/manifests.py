"""The resources no upstream chart provides, as plain Kubernetes objects: the Instrumentation
resource, external node exporters (Service + EndpointSlice + ServiceMonitor) and dashboard
ConfigMaps (kms's alerting rules are in kms.deploy.rules). The umbrella chart's templates render
the same objects."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.model import NodeExporter, Stack
from kms.deploy.output import dump_json

__all__ = ["labels", "instrumentation", "external_node_exporter", "dashboard_configmap"]

PART_OF = "kube-monitoring-stack"


def labels(stack: Stack, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": stack.name, "app.kubernetes.io/part-of": PART_OF}


def _meta(stack: Stack, name: str, component: str, **extra: dict) -> dict:
    return {"name": name, "namespace": stack.namespace, "labels": labels(stack, component), **extra}


def instrumentation(stack: Stack) -> dict:
    """Pods opt in with ``instrumentation.opentelemetry.io/inject-<language>: "true"``."""
    i = stack.instrumentation
    return {
        "apiVersion": "opentelemetry.io/v1alpha1",
        "kind": "Instrumentation",
        "metadata": _meta(stack, stack.name, "instrumentation"),
        "spec": {
            "exporter": {"endpoint": Endpoints.of(stack).collector_otlp_http},
            "propagators": list(i.propagators),
            "sampler": {"type": i.sampler, "argument": i.sampler_argument},
        },
    }


def external_node_exporter(stack: Stack, n: NodeExporter) -> list[dict]:
    """A selector-less Service, its EndpointSlice (the v1 Endpoints API is deprecated since 1.33)
    and a ServiceMonitor on the Service's labels; port names must agree across all three."""
    name = f"{stack.name}-node-{n.name}"
    lab = labels(stack, "external-node-exporter") | {"kms.io/exporter": n.name}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": stack.namespace, "labels": lab},
        "spec": {"clusterIP": "None", "ports": [{"name": "metrics", "port": n.port, "targetPort": n.port,
                                                  "protocol": "TCP"}]},  # fmt: skip
    }
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-1", "namespace": stack.namespace,
                     "labels": lab | {"kubernetes.io/service-name": name,
                                      "endpointslice.kubernetes.io/managed-by": "kms.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "metrics", "port": n.port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in n.addresses],
    }  # fmt: skip
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": stack.namespace, "labels": lab | {"release": stack.name}},
        "spec": {
            "serviceDiscoveryRole": "EndpointSlice",
            "selector": {"matchLabels": {"kms.io/exporter": n.name, "app.kubernetes.io/instance": stack.name}},
            "namespaceSelector": {"matchNames": [stack.namespace]},
            "endpoints": [{
                "port": "metrics", "interval": "30s",
                "relabelings": [{"targetLabel": "cluster", "replacement": stack.cluster, "action": "replace"},
                                {"targetLabel": "node", "sourceLabels": ["__meta_kubernetes_endpointslice_address_target_name",
                                                                         "__address__"],
                                 "regex": ";?([^:;]+).*", "replacement": "$1", "action": "replace"}],
            }],
        },
    }  # fmt: skip
    return [service, slice_, monitor]


def dashboard_configmap(stack: Stack, name: str, files: dict[str, dict]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(stack, name, "dashboards"),
        "data": {f: dump_json(files[f]) for f in sorted(files)},  # the bytes of chart/dashboards/*.json
    }
