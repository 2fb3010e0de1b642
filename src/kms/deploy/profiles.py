"""Profiles: which charts, values and own objects a stack renders to.

- ``single-cluster``: the real engines (Prometheus, Mimir, Loki, Tempo, collector, operator,
  Grafana) on one object store;
- ``small``: ``kms up`` as a StatefulSet, ``kms agent`` as a DaemonSet, kube-state-metrics, Grafana;
- ``multi-cluster``: a central part (the single-cluster stack) plus one agent part per workload
  cluster writing to the central Mimir with its ``cluster`` label."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from kms.deploy.charts import CHARTS, ChartPin
from kms.deploy.endpoints import Endpoints
from kms.deploy.images import registry_overrides
from kms.deploy.imported import import_dashboards
from kms.deploy.k8s_dashboards import kubernetes_dashboards
from kms.deploy.load import StackFileError
from kms.deploy.manifests import dashboard_configmap, external_node_exporter, instrumentation
from kms.deploy.model import Stack
from kms.deploy.rules import rule_objects
from kms.deploy.secrets import secret_objects
from kms.deploy.small import agent_config, agent_manifests, small_manifests
from kms.deploy.thanos import objstore_secret, objstore_secret_name, query_url, ruler_values, thanos_objects
from kms.deploy.values.collector import collector_values, workload_collector_values
from kms.deploy.values.exporters import exporter_values
from kms.deploy.values.grafana import dashboards_configmap, grafana_values
from kms.deploy.values.loki import loki_values
from kms.deploy.values.mimir import mimir_values
from kms.deploy.values.operator import operator_values
from kms.deploy.values.prometheus import prometheus_values
from kms.deploy.values.store import store_values
from kms.deploy.values.tempo import tempo_values
from kms.grafana import dashboards as kms_dashboards

__all__ = ["Release", "Part", "build"]


@dataclass
class Release:
    alias: str  # dependency alias in the umbrella chart (unique per part)
    pin: ChartPin
    values: dict
    chart_key: str  # key in CHARTS and IMAGES (postgres-exporter for alias postgres-orders)


@dataclass
class Part:
    """One umbrella-chart release: the whole stack, or one cluster's share of it."""

    path: str  # output sub-directory ("" for single parts)
    stack: Stack
    releases: list[Release] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)  # own objects, also rendered by the chart
    secrets: list[dict] = field(default_factory=list)  # Secrets: written apart (secrets/), never in values
    dashboards: dict[str, dict[str, dict]] = field(default_factory=dict)  # folder -> file -> model

    def add(self, alias: str, values: dict, chart: str | None = None) -> None:
        pin = CHARTS[chart or alias]
        if self.stack.registry:
            values = _merge(values, registry_overrides(chart or alias, self.stack.registry))
        self.releases.append(Release(alias, pin, values, chart or alias))


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _dashboards(part: Part, own: list[str]) -> None:
    mine = kms_dashboards()
    part.dashboards["kms"] = {f: mine[f] for f in own}
    if part.stack.grafana.kubernetes_dashboards:
        part.dashboards["kubernetes"] = kubernetes_dashboards()
    if part.stack.grafana.import_dashboards:
        part.dashboards["imported"] = import_dashboards(part.stack.grafana.import_dashboards)
    for folder, files in part.dashboards.items():
        part.objects.append(dashboard_configmap(part.stack, dashboards_configmap(part.stack.name, folder), files))


def _exporters(part: Part, service_monitors: bool) -> None:
    for alias, (chart, values) in exporter_values(part.stack).items():
        if not service_monitors:
            values["serviceMonitor"]["enabled"] = False  # no Prometheus operator CRDs here
        part.add(alias, values, chart)


def _central(stack: Stack, path: str, *, thanos: bool = False) -> Part:
    """The whole stack, or the multi-cluster central part; ``thanos``: Thanos instead of Mimir, so
    the central Prometheus takes the remote write (Tempo's generator) and OTLP metrics."""
    ep = Endpoints.of(stack)
    push = f"{ep.prometheus}/api/v1/write" if thanos else f"{ep.mimir}/api/v1/push"
    part = Part(path, stack, secrets=secret_objects(stack, s3=True, grafana=True))
    store = store_values(stack)
    if store:
        part.add(*store)
    if thanos:
        part.secrets.append(objstore_secret(stack))
        prom = prometheus_values(stack, None, thanos=objstore_secret_name(stack), receive=True)
        part.add("prometheus", _merge(prom, ruler_values(stack)))
    else:
        part.add("prometheus", prometheus_values(stack, push))
        part.add("mimir", mimir_values(stack))
    part.add("loki", loki_values(stack))
    part.add("tempo", tempo_values(stack, push))
    part.add("collector", collector_values(stack, ("otlp_http/prometheus", f"{ep.prometheus}/api/v1/otlp")
                                           if thanos else None))  # fmt: skip
    part.add("operator", operator_values(stack))
    _exporters(part, service_monitors=True)
    urls = {"prometheus": query_url(stack) if thanos else f"{ep.mimir}/prometheus", "loki": ep.loki,
            "tempo": ep.tempo_query}  # fmt: skip
    _dashboards(part, ["kms-red.json"])
    part.add("grafana", grafana_values(stack, ep.mimir, urls, sorted(part.dashboards)))
    if stack.instrumentation.enabled:
        part.objects.append(instrumentation(stack))
    for n in stack.exporters.node:
        part.objects += external_node_exporter(stack, n)
    if thanos:
        part.objects += thanos_objects(stack)
    if stack.alerting:
        # Only the stack's own alerts: kube-prometheus-stack installs its default rules here
        # (defaultRules.create follows alerting), which cover the cluster under the same alert names
        # (TargetDown, KubePodCrashLooping, ...); kms's kubernetes groups would notify twice.
        # The central Prometheus evaluates them over its own data: with Mimir, the span-metric alert
        # (kms-applications) needs Mimir's ruler instead, as Tempo writes span metrics to Mimir only.
        part.objects += rule_objects(stack, pipeline=True, kubernetes=False)
    return part


def _small(stack: Stack) -> Part:
    ep = Endpoints.of(stack)
    part = Part("", stack, secrets=secret_objects(stack, s3=False, grafana=True))  # kms keeps its data on a volume
    part.add("kube-state-metrics", {})
    _exporters(part, service_monitors=False)
    part.objects += small_manifests(stack)
    if stack.alerting:
        # No kube-prometheus-stack, so no default rules: kms's kubernetes groups cover the cluster,
        # evaluated by kms itself, which reads PrometheusRule objects (their CRD, not an operator).
        part.add("prometheus-crds", {})
        part.objects += rule_objects(stack, pipeline=False, kubernetes=True)
    _dashboards(part, sorted(kms_dashboards()))
    part.add("grafana", grafana_values(stack, ep.kms, None, sorted(part.dashboards)))
    return part


def _agent_part(stack: Stack, cluster: str) -> Part:
    """A workload cluster: metrics from an agent to the central Mimir, pod logs and application
    traces from a collector on every node to the central Loki and Tempo; no Grafana, no storage."""
    mc = stack.multi_cluster
    s = replace(stack, cluster=cluster, alerting=False)
    part = Part(f"clusters/{cluster}", s)
    push = f"{mc.central_url.rstrip('/')}/api/v1/push"
    if mc.central == "thanos":
        # A full Prometheus (agent mode keeps no blocks) whose sidecar uploads to the bucket.
        part.secrets.append(objstore_secret(s))
        part.add("prometheus", prometheus_values(s, None, thanos=objstore_secret_name(s), expose_sidecar=True))
    elif mc.agent == "prometheus":
        part.add("prometheus", prometheus_values(s, push, agent=True))
    else:
        part.add("kube-state-metrics", {})
        # Metrics only: the collector below tails the pod logs, so the agent does not.
        part.objects += agent_manifests(s, agent_config(s, f"{mc.central_url.rstrip('/')}/otlp", logs=False))
    part.add("collector", workload_collector_values(s, mc.central_loki_url, mc.central_tempo_url))
    _exporters(part, service_monitors=mc.agent == "prometheus")
    if mc.agent == "prometheus":  # the kms agent scrapes external node exporters directly (no CRDs there)
        for n in s.exporters.node:
            part.objects += external_node_exporter(s, n)
    return part


def _check_thanos(stack: Stack) -> None:
    mc = stack.multi_cluster
    if stack.storage.type != "external":
        raise StackFileError("storage.type: multi_cluster.central thanos needs an external store: every workload "
                             "cluster's sidecar uploads blocks to it")  # fmt: skip
    if stack.storage.credentials_secret:
        raise StackFileError("storage.credentials_secret: not supported with multi_cluster.central thanos yet (the "
                             "sidecars read an objstore.yml kms renders from access_key and secret_key)")  # fmt: skip
    if mc.agent != "prometheus":
        raise StackFileError("multi_cluster.agent: thanos needs prometheus (a Thanos sidecar runs next to it)")
    if "{cluster}" not in mc.thanos_sidecar_address or ":" not in mc.thanos_sidecar_address:
        raise StackFileError("multi_cluster.thanos_sidecar_address: each workload cluster's sidecar gRPC as the central "
                             "query reaches it, with {cluster} for its name, e.g. thanos-{cluster}.example.com:10901")


def build(stack: Stack, profile: str | None = None) -> list[Part]:
    """The parts a stack renders to under ``profile`` (default: the stack file's)."""
    profile = profile or stack.profile
    if profile == "single-cluster":
        return [_central(stack, "")]
    if profile == "small":
        return [_small(stack)]
    if profile == "multi-cluster":
        mc = stack.multi_cluster
        if not mc.clusters:
            raise StackFileError("multi_cluster.clusters: list the workload clusters (e.g. [prod-eu, prod-us])")
        urls = [("central_loki_url", "Loki gateway", "https://loki.example.com"),
                ("central_tempo_url", "Tempo OTLP/HTTP receiver", "https://tempo-otlp.example.com")]
        if mc.central == "mimir":  # with Thanos, metrics stay in each cluster until the sidecar uploads them
            urls.insert(0, ("central_url", "Mimir gateway", "https://mimir.example.com"))
        for key, what, example in urls:
            if not getattr(mc, key).startswith(("http://", "https://")):
                raise StackFileError(f"multi_cluster.{key}: the central {what} as the workload clusters reach it, "
                                     f"e.g. {example}")  # fmt: skip
        if stack.cluster in mc.clusters:
            raise StackFileError(f"cluster: the central cluster {stack.cluster!r} is also listed in multi_cluster.clusters")
        if mc.central == "thanos":
            _check_thanos(stack)
        return [_central(stack, "central", thanos=mc.central == "thanos")] + [_agent_part(stack, c) for c in mc.clusters]
    raise StackFileError(f"profile: {profile!r} is not one of single-cluster, small, multi-cluster")
