"""kms's alerting rules as PrometheusRule objects: the default rule set of kms.rules.defaults
(``stack`` and ``kubernetes`` groups, the same files ``kms up --rules`` takes) plus alerts on the
Kubernetes pipeline itself (collector exporters, Prometheus remote write)."""

from __future__ import annotations

from kms.deploy.manifests import labels
from kms.deploy.model import Stack
from kms.rules.defaults import rule_groups

__all__ = ["PIPELINE_GROUP", "rule_objects"]

_PIPELINE_ALERTS = [
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
PIPELINE_GROUP = "kms-pipeline"


def _pipeline_group() -> dict:
    rules = [
        {"alert": name, "expr": expr, "for": "10m", "labels": {"severity": "warning"},
         "annotations": {"summary": summary, "description": fix}}
        for name, expr, summary, fix in _PIPELINE_ALERTS
    ]  # fmt: skip
    return {"name": PIPELINE_GROUP, "rules": rules}


def _rule(stack: Stack, suffix: str, groups: list[dict]) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": f"{stack.name}-{suffix}", "namespace": stack.namespace,
                     # `release` for kube-prometheus-stack's rule selector when its nil-uses-Helm default is kept.
                     "labels": labels(stack, "rules") | {"release": stack.name}},
        "spec": {"groups": groups},
    }  # fmt: skip


def rule_objects(stack: Stack, *, pipeline: bool, kubernetes: bool) -> list[dict]:
    """``<name>-stack``: the stack's own alerts (with the pipeline group where a collector and a
    remote-writing Prometheus run); ``<name>-kubernetes``: the cluster alerts, for stacks where no
    other rule set covers the cluster."""
    stack_groups = ([_pipeline_group()] if pipeline else []) + rule_groups("stack")
    out = [_rule(stack, "stack", stack_groups)]
    if kubernetes:
        out.append(_rule(stack, "kubernetes", rule_groups("kubernetes")))
    return out
