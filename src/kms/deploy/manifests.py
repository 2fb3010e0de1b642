"""The resources no upstream chart provides, as plain Kubernetes objects: the Instrumentation
resource, external node exporters (Service + EndpointSlice + ServiceMonitor), dashboard
ConfigMaps and kms's alerting rules. The umbrella chart's templates render the same objects."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.model import NodeExporter, Stack
from kms.deploy.output import dump_json

__all__ = ["labels", "instrumentation", "external_node_exporter", "dashboard_configmap", "stack_rules"]

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


_ALERTS = [
    ("KmsCollectorSendFailing",
     "sum by (exporter) (rate(otelcol_exporter_send_failed_spans_total[5m]) "
     "+ rate(otelcol_exporter_send_failed_metric_points_total[5m]) "
     "+ rate(otelcol_exporter_send_failed_log_records_total[5m])) > 0",
     "The collector's exporter {{ $labels.exporter }} fails to send telemetry",
     "Check the backend's gateway Service and the exporter's endpoint path (kms lint on the collector config)."),
    ("KmsCollectorRefusing",
     "sum(rate(otelcol_receiver_refused_spans_total[5m]) + rate(otelcol_receiver_refused_metric_points_total[5m])"
     " + rate(otelcol_receiver_refused_log_records_total[5m])) > 0",
     "The collector refuses telemetry (memory_limiter)",
     "Raise the collector's memory limit or add replicas."),
    ("KmsRemoteWriteFailing",
     "sum by (pod) (rate(prometheus_remote_storage_samples_failed_total[5m])) > 0",
     "Prometheus {{ $labels.pod }} fails to remote write to Mimir",
     "Check the Mimir gateway and the X-Scope-OrgID header of the remote write."),
]  # fmt: skip


def stack_rules(stack: Stack) -> dict:
    rules = [
        {"alert": name, "expr": expr, "for": "10m", "labels": {"severity": "warning"},
         "annotations": {"summary": summary, "description": fix}}
        for name, expr, summary, fix in _ALERTS
    ]  # fmt: skip
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta(stack, f"{stack.name}-stack", "rules") | {
            "labels": labels(stack, "rules") | {"release": stack.name}},
        "spec": {"groups": [{"name": "kms.stack", "rules": rules}]},
    }
