"""Kubernetes dashboards (cluster, nodes, namespaces, pods) built with kms's panel builders, so they
are embedded in the chart as JSON and need no download. Every query filters on the ``cluster``
label, which each writer adds (Prometheus external label, agent external label)."""

from __future__ import annotations

from kms.grafana.panels import Layout, dashboard, query_var, target

__all__ = ["kubernetes_dashboards"]

_R = "[$__rate_interval]"


def _m(name: str, op: str, value: str) -> str:
    return f'{name}{op}"{value}"'


def _sel(*m: str) -> str:
    return "{" + ", ".join(('cluster=~"$cluster"',) + m) + "}"


def _cluster_var() -> dict:
    return query_var("cluster", "Cluster", "label_values(kube_node_info, cluster)")


def _cluster() -> dict:
    lay = Layout()
    lay.row("Capacity")
    lay.add("stat", "Nodes", [target(f"count(kube_node_info{_sel()})", "nodes")], w=4, h=4)
    lay.add("stat", "Namespaces", [target(f"count(kube_namespace_created{_sel()})", "namespaces")], w=4, h=4)
    lay.add("stat", "Running pods", [target(f'sum(kube_pod_status_phase{_sel(_m("phase", "=", "Running"))})', "pods")],
            w=4, h=4)  # fmt: skip
    lay.add("stat", "CPU requested / allocatable",
            [target(f'sum(kube_pod_container_resource_requests{_sel(_m("resource", "=", "cpu"))})'
                    f' / sum(kube_node_status_allocatable{_sel(_m("resource", "=", "cpu"))})', "cpu")],
            w=6, h=4, unit="percentunit")  # fmt: skip
    lay.add("stat", "Memory requested / allocatable",
            [target(f'sum(kube_pod_container_resource_requests{_sel(_m("resource", "=", "memory"))})'
                    f' / sum(kube_node_status_allocatable{_sel(_m("resource", "=", "memory"))})', "memory")],
            w=6, h=4, unit="percentunit")  # fmt: skip
    lay.row("Usage")
    lay.add("timeseries", "CPU used by namespace",
            [target(f'sum by (namespace) (rate(container_cpu_usage_seconds_total{_sel(_m("container", "!=", ""))}{_R}))',
                    "{{namespace}}")], w=12, unit="short")  # fmt: skip
    lay.add("timeseries", "Memory working set by namespace",
            [target(f'sum by (namespace) (container_memory_working_set_bytes{_sel(_m("container", "!=", ""))})',
                    "{{namespace}}")], w=12, unit="bytes")  # fmt: skip
    lay.add("timeseries", "Pods not running by phase",
            [target(f'sum by (phase) (kube_pod_status_phase{_sel(_m("phase", "!=", "Running"))}) > 0', "{{phase}}")],
            w=12, unit="short")  # fmt: skip
    lay.add("timeseries", "Container restarts",
            [target(f"sum by (namespace) (increase(kube_pod_container_status_restarts_total{_sel()}[5m])) > 0",
                    "{{namespace}}")], w=12, unit="short")  # fmt: skip
    return dashboard("kms-k8s-cluster", "Kubernetes / Cluster", "Capacity, usage and pod health of a cluster.",
                     [_cluster_var()], lay)  # fmt: skip


def _nodes() -> dict:
    node = 'instance=~"$instance"'
    lay = Layout()
    lay.row("Node $instance")
    lay.add("timeseries", "CPU busy",
            [target(f'1 - avg by (instance) (rate(node_cpu_seconds_total{_sel(node, _m("mode", "=", "idle"))}{_R}))',
                    "{{instance}}")], w=12, unit="percentunit")  # fmt: skip
    lay.add("timeseries", "Memory available",
            [target(f"node_memory_MemAvailable_bytes{_sel(node)} / node_memory_MemTotal_bytes{_sel(node)}",
                    "{{instance}}")], w=12, unit="percentunit")  # fmt: skip
    lay.add("timeseries", "Load 1m", [target(f"node_load1{_sel(node)}", "{{instance}}")], w=8, unit="short")
    lay.add("timeseries", "Network received",
            [target(f'sum by (instance) (rate(node_network_receive_bytes_total{_sel(node, _m("device", "!=", "lo"))}{_R}))',
                    "{{instance}}")], w=8, unit="Bps")  # fmt: skip
    lay.add("timeseries", "Filesystem used",
            [target(f'1 - node_filesystem_avail_bytes{_sel(node, _m("fstype", "!=", "tmpfs"))}'
                    f' / node_filesystem_size_bytes{_sel(node, _m("fstype", "!=", "tmpfs"))}', "{{instance}} {{mountpoint}}")],
            w=8, unit="percentunit")  # fmt: skip
    variables = [_cluster_var(), query_var("instance", "Node", 'label_values(node_uname_info{cluster=~"$cluster"}, instance)')]
    return dashboard("kms-k8s-nodes", "Kubernetes / Nodes", "CPU, memory, network and disks of each node.",
                     variables, lay)  # fmt: skip


def _namespaces() -> dict:
    ns = 'namespace=~"$namespace"'
    lay = Layout()
    lay.row("Namespace $namespace")
    lay.add("timeseries", "CPU by pod",
            [target(f'sum by (pod) (rate(container_cpu_usage_seconds_total{_sel(ns, _m("container", "!=", ""))}{_R}))',
                    "{{pod}}")], w=12, unit="short")  # fmt: skip
    lay.add("timeseries", "Memory by pod",
            [target(f'sum by (pod) (container_memory_working_set_bytes{_sel(ns, _m("container", "!=", ""))})', "{{pod}}")],
            w=12, unit="bytes")  # fmt: skip
    lay.add("table", "Deployments unavailable",
            [target(f"kube_deployment_status_replicas_unavailable{_sel(ns)} > 0", instant=True)], w=12, h=6)
    lay.add("timeseries", "Network received by pod",
            [target(f"sum by (pod) (rate(container_network_receive_bytes_total{_sel(ns)}{_R}))", "{{pod}}")],
            w=12, unit="Bps")  # fmt: skip
    variables = [_cluster_var(),
                 query_var("namespace", "Namespace", 'label_values(kube_namespace_created{cluster=~"$cluster"}, namespace)')]
    return dashboard("kms-k8s-namespaces", "Kubernetes / Namespaces", "Resource use and health per namespace.",
                     variables, lay)  # fmt: skip


def _pods() -> dict:
    sel = ('namespace=~"$namespace"', 'pod=~"$pod"')
    lay = Layout()
    lay.row("Pod $pod")
    lay.add("timeseries", "CPU by container",
            [target(f'sum by (container) (rate(container_cpu_usage_seconds_total{_sel(*sel, _m("container", "!=", ""))}{_R}))',
                    "{{container}}")], w=12, unit="short")  # fmt: skip
    lay.add("timeseries", "Memory by container",
            [target(f'sum by (container) (container_memory_working_set_bytes{_sel(*sel, _m("container", "!=", ""))})',
                    "{{container}}")], w=12, unit="bytes")  # fmt: skip
    lay.add("timeseries", "CPU throttled",
            [target(f"sum by (container) (rate(container_cpu_cfs_throttled_periods_total{_sel(*sel)}{_R}))"
                    f" / sum by (container) (rate(container_cpu_cfs_periods_total{_sel(*sel)}{_R}))", "{{container}}")],
            w=12, unit="percentunit")  # fmt: skip
    lay.add("timeseries", "Restarts",
            [target(f"sum by (container) (kube_pod_container_status_restarts_total{_sel(*sel)})", "{{container}}")],
            w=12, unit="short")  # fmt: skip
    variables = [_cluster_var(),
                 query_var("namespace", "Namespace", 'label_values(kube_pod_info{cluster=~"$cluster"}, namespace)'),
                 query_var("pod", "Pod", 'label_values(kube_pod_info{cluster=~"$cluster", namespace=~"$namespace"}, pod)')]
    return dashboard("kms-k8s-pods", "Kubernetes / Pods", "CPU, memory, throttling and restarts per container.",
                     variables, lay)  # fmt: skip


def kubernetes_dashboards() -> dict[str, dict]:
    """File name -> dashboard JSON model."""
    out = {"k8s-cluster.json": _cluster(), "k8s-nodes.json": _nodes(), "k8s-namespaces.json": _namespaces(),
           "k8s-pods.json": _pods()}  # fmt: skip
    for d in out.values():
        d["tags"] = ["kms", "kubernetes"]
    return out
