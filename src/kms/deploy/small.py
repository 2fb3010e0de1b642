"""The ``small`` profile's own workloads: ``kms up`` as a StatefulSet (every API on one port) and
``kms agent`` as a DaemonSet that scrapes its node's kubelet/cAdvisor, host metrics and pod logs
and forwards them with the ``cluster`` label."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.images import rewrite
from kms.deploy.manifests import labels
from kms.deploy.model import Stack
from kms.deploy.output import dump_yaml

__all__ = ["image", "kms_config", "agent_config", "kms_manifests", "agent_manifests", "small_manifests"]

_PORTS = [("http", 3200), ("otlp-grpc", 4317), ("otlp-http", 4318)]
_SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount"


def kms_config(stack: Stack) -> dict:
    """``kms up --config`` of the StatefulSet (keys of kms.config)."""
    config: dict = {
        "data_dir": "/data",
        "server": {"host": "0.0.0.0"},
        "storage": {"retention": stack.small.retention},
        "tenancy": {"default_tenant": stack.tenant},
    }
    if stack.alerting:
        # kms's ruler evaluates PrometheusRule objects of every namespace, as kube-prometheus-stack's
        # Prometheus does with ruleSelectorNilUsesHelmValues: false (the default rules among them).
        config["rules"] = {"kubernetes": True}
    return config


def image(stack: Stack) -> str:
    """kms's image, from the private registry when the stack is air-gapped."""
    return rewrite(stack.small.image, stack.registry) if stack.registry else stack.small.image


def _own_node(job: dict) -> dict:
    # Every agent scrapes only targets on its own node, so nothing is scraped twice.
    job.setdefault("relabel_configs", []).insert(0, {
        "source_labels": ["__meta_kubernetes_node_name" if job["kubernetes_sd_configs"][0]["role"] == "node"
                          else "__meta_kubernetes_pod_node_name"],
        "regex": "${env:NODE_NAME}", "action": "keep"})  # fmt: skip
    return job


def agent_config(stack: Stack, remote: str | None = None, *, logs: bool = True, scrape_kms: bool = False) -> dict:
    """``kms agent --config``: the collector layout with Prometheus scrape configs. ``remote`` is the
    OTLP/HTTP base the agent sends to (default: the small profile's kms); ``scrape_kms``: also
    scrape the kms StatefulSet's /metrics (the stack alerts watch its `up` and discards)."""
    kubelet = {"scheme": "https", "authorization": {"credentials_file": f"{_SA_TOKEN}/token"},
               "tls_config": {"ca_file": f"{_SA_TOKEN}/ca.crt", "insecure_skip_verify": True},
               "kubernetes_sd_configs": [{"role": "node"}]}  # fmt: skip
    jobs = [
        _own_node({"job_name": "kubelet", **kubelet}),
        _own_node({"job_name": "cadvisor", "metrics_path": "/metrics/cadvisor", **kubelet}),
        _own_node({
            "job_name": "kube-state-metrics",
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [stack.namespace]}}],
            "relabel_configs": [{"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                                 "regex": "kube-state-metrics", "action": "keep"}],
            "honor_labels": True,
        }),
    ]  # fmt: skip
    if scrape_kms:
        jobs.append(_own_node({
            "job_name": "kms",
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [stack.namespace]}}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name",
                                   "__meta_kubernetes_pod_container_port_name"], "regex": "kms;http", "action": "keep"},
            ],
        }))  # fmt: skip
    for n in stack.exporters.node:
        jobs.append({"job_name": f"node-{n.name}", "static_configs": [{"targets": [f"{a}:{n.port}" for a in n.addresses]}]})
    for kind in ("postgres", "redis"):
        if getattr(stack.exporters, kind):
            jobs.append(_own_node({
                "job_name": f"{kind}-exporter",
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [stack.namespace]}}],
                "relabel_configs": [{"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                                     "regex": f"prometheus-{kind}-exporter", "action": "keep"}],
            }))  # fmt: skip
    tenant = {"X-Scope-OrgID": stack.tenant}
    steps = ["memory_limiter", "batch"]
    pipelines = {"metrics": {"receivers": ["prometheus", "hostmetrics"], "processors": steps,
                             "exporters": ["otlp_http/remote"]}}  # fmt: skip
    receivers: dict = {
        "prometheus": {"config": {"scrape_configs": jobs}},
        "hostmetrics": {"root_path": "/hostfs", "collection_interval": "30s",
                        "scrapers": {"cpu": {}, "memory": {}, "load": {}, "disk": {}, "filesystem": {}, "network": {}}},
    }  # fmt: skip
    if logs:  # else nothing tails the pod logs here (multi-cluster: the collector DaemonSet does)
        receivers["file_log"] = {"include": ["/var/log/pods/*/*/*.log"], "start_at": "end",
                                 "include_file_path": True, "operators": [{"type": "container"}]}  # fmt: skip
        pipelines["logs"] = {"receivers": ["file_log"], "processors": steps, "exporters": ["otlp_http/remote"]}
    return {
        "receivers": receivers,
        "processors": {"memory_limiter": {"check_interval": "1s", "limit_mib": 200}, "batch": {}},
        "exporters": {"otlp_http/remote": {"endpoint": remote or Endpoints.of(stack).kms, "headers": tenant}},
        "service": {"pipelines": pipelines},
    }


def dump_config(d: dict) -> str:
    return dump_yaml(d)


def _rbac(name: str, ns: str, lab: dict, rules: list[dict]) -> list[dict]:
    """A ServiceAccount bound to a ClusterRole of ``rules``, all named ``name``."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": lab}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": name, "labels": lab}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": name, "labels": lab},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]  # fmt: skip


def kms_manifests(stack: Stack) -> list[dict]:
    name, ns, lab = stack.name, stack.namespace, labels(stack, "kms")
    sel = {"app.kubernetes.io/name": "kms", "app.kubernetes.io/instance": name}
    ports = [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in _PORTS]
    container = {
        "name": "kms", "image": image(stack), "args": ["up", "--config", "/etc/kms/kms.yaml"],
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in _PORTS],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "config", "mountPath": "/etc/kms"}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
    }  # fmt: skip
    pod_spec: dict = {"containers": [container], "volumes": [{"name": "config", "configMap": {"name": name}}]}
    rbac: list[dict] = []
    if stack.alerting:  # kms reads PrometheusRule objects (kms_config): its service account may list them
        pod_spec = {"serviceAccountName": name, **pod_spec}
        rbac = _rbac(name, ns, lab, [{"apiGroups": ["monitoring.coreos.com"], "resources": ["prometheusrules"],
                                      "verbs": ["get", "list", "watch"]}])  # fmt: skip
    return rbac + [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": lab},
         "data": {"kms.yaml": dump_config(kms_config(stack))}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": lab},
         "spec": {"selector": sel, "ports": ports}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns, "labels": lab},
         "spec": {
             "serviceName": name, "replicas": 1, "selector": {"matchLabels": sel},
             "template": {"metadata": {"labels": lab}, "spec": pod_spec},
             "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                 "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": stack.small.storage_size}}}}],
         }},
    ]  # fmt: skip


def agent_manifests(stack: Stack, config: dict) -> list[dict]:
    name, ns, lab = f"{stack.name}-agent", stack.namespace, labels(stack, "kms-agent")
    sel = {"app.kubernetes.io/name": "kms-agent", "app.kubernetes.io/instance": stack.name}
    host = [("logs", "/var/log/pods", True), ("hostfs", "/", True), ("state", "/var/lib/kms-agent", False)]
    container = {
        "name": "agent", "image": image(stack),
        # The destination is the config's exporter; the flags add what every sample carries.
        "args": ["agent", "--config", "/etc/kms/agent.yaml",
                 "--external-label", f"cluster={stack.cluster}", "--tenant", stack.tenant,
                 "--data-dir", "/var/lib/kms-agent"],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/kms"}]
        + [{"name": v, "mountPath": "/hostfs" if v == "hostfs" else p, "readOnly": ro} for v, p, ro in host],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }  # fmt: skip
    rules = [
        {"apiGroups": [""], "resources": ["nodes", "nodes/metrics", "nodes/proxy", "pods", "services", "endpoints"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
        {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
    ]  # fmt: skip
    return _rbac(name, ns, lab, rules) + [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": lab},
         "data": {"agent.yaml": dump_config(config)}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": ns, "labels": lab},
         "spec": {"selector": {"matchLabels": sel}, "template": {"metadata": {"labels": lab}, "spec": {
             "serviceAccountName": name, "containers": [container],
             "tolerations": [{"operator": "Exists"}],  # every node, control plane included
             "volumes": [{"name": "config", "configMap": {"name": name}}]
             + [{"name": v, "hostPath": {"path": p, "type": "Directory" if ro else "DirectoryOrCreate"}} for v, p, ro in host],
         }}}},
    ]  # fmt: skip


def small_manifests(stack: Stack) -> list[dict]:
    return kms_manifests(stack) + agent_manifests(stack, agent_config(stack, scrape_kms=True))
