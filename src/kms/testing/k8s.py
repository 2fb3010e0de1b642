"""A synthetic Kubernetes data set: the series the dotdc Kubernetes dashboards query
(/work/shared/conformance/dashboards), per cluster: node-exporter, kubelet/cAdvisor,
kube-state-metrics, the API server, CoreDNS, Prometheus and Trivy, 661 series a cluster.

``k8s_series(clusters, t_ms)`` yields ``(labels, values)`` for every series over the sample
times ``t_ms`` (int64 ms, evenly spaced); values are float64 arrays of the same length. The
same seed gives the same data, so two stores fed from it hold identical series.

Values carry the precision the real exporters print (``_decimals``): byte, packet and request
counts and kube-state-metrics values are whole numbers, CPU seconds from /proc have two
decimals, cAdvisor's CPU seconds come from nanosecond counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["k8s_series", "SERIES_PER_CLUSTER"]

SERIES_PER_CLUSTER = 661
Sink = Callable[[dict[str, str], np.ndarray], None]


class _Data:
    def __init__(self, t_ms: np.ndarray, add: Sink, seed: int) -> None:
        self.t = t_ms
        self.ts = (t_ms - t_ms[0]) / 1000.0
        self.end_s = t_ms[-1] / 1000.0
        self.step_s = (t_ms[1] - t_ms[0]) / 1000.0 if len(t_ms) > 1 else 15.0
        self.sink = add
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def gauge(self, metric: str, value: float, /, **labels: str) -> None:
        noise = 1 + 0.02 * np.sin(self.ts / 300 + self.n) if value else 0.0
        self._add(metric, labels, value * noise)

    def const(self, metric: str, value: float, /, **labels: str) -> None:
        self._add(metric, labels, np.full(len(self.t), float(value)))

    def counter(self, metric: str, per_s: float, /, **labels: str) -> None:
        inc = per_s * self.step_s * (0.5 + self.rng.random(len(self.t)))
        self._add(metric, labels, 1000 * (self.n % 7) + np.cumsum(inc))

    def _add(self, metric: str, labels: dict[str, str], v) -> None:
        self.n += 1
        v = np.round(np.broadcast_to(v, self.t.shape).astype(np.float64), _decimals(metric))
        self.sink({"__name__": metric, **labels}, v)


def _decimals(metric: str) -> int:
    """Decimals an exporter prints for ``metric`` (see the module doc)."""
    if metric.startswith("container_cpu") or metric in ("node_time_seconds", "node_timex_estimated_error_seconds",
                                                        "node_timex_maxerror_seconds"):  # fmt: skip
        return 9
    if metric.endswith(("_seconds_total", "_seconds_sum", "_seconds")) or metric.startswith("node_load"):
        return 2 if "cpu" in metric or metric.startswith("node_load") else 6
    return 0


# (namespace, pod, created_by_kind, created_by_name, containers, node index, phase, qos)
_PODS = [
    ("kube-system", "coredns-5d78c9869d-h7x2k", "ReplicaSet", "coredns-5d78c9869d", ["coredns"], 0, "Running", "Burstable"),
    ("kube-system", "kube-apiserver-{node0}", "Node", "{node0}", ["kube-apiserver"], 0, "Running", "Burstable"),
    ("monitoring", "prometheus-k8s-0", "StatefulSet", "prometheus-k8s", ["prometheus", "config-reloader"], 1, "Running", "Burstable"),
    ("monitoring", "kube-state-metrics-6f8d9c7b5-x2p4q", "ReplicaSet", "kube-state-metrics-6f8d9c7b5", ["kube-state-metrics"], 1, "Running", "Guaranteed"),
    ("default", "web-7d9f8b6c5-k2x9p", "ReplicaSet", "web-7d9f8b6c5", ["nginx", "sidecar"], 0, "Running", "Burstable"),
    ("default", "worker-6c8d7f5b4-q8r7t", "ReplicaSet", "worker-6c8d7f5b4", ["worker"], 1, "Running", "BestEffort"),
    ("default", "report-28345600-zx7wl", "Job", "report-28345600", ["report"], -1, "Pending", "BestEffort"),
]  # fmt: skip
_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def _cluster(d: _Data, ci: int, cluster: str) -> None:
    nodes = [f"{cluster}-node-{i}" for i in (1, 2)]
    ips = [f"10.{ci}.0.{i}" for i in (11, 12)]
    c = {"cluster": cluster}
    ksm = {**c, "job": "kube-state-metrics", "instance": f"10.{ci}.1.5:8080"}

    for i, (node, ip) in enumerate(zip(nodes, ips, strict=True)):
        d.const("kube_node_info", 1, **ksm, node=node, internal_ip=ip, kernel_version="6.1.0")
        kl = {**c, "job": "kubelet", "instance": f"{ip}:10250", "node": node}
        d.const("machine_cpu_cores", 4, **kl)
        d.const("machine_memory_bytes", 16e9, **kl)
        d.const("up", 1, **kl)
        ne = {**c, "job": "node-exporter", "instance": f"{ip}:9100"}
        d.const("up", 1, **ne)
        nodename = node if i == 0 else f"{node}.eu-west-1.compute.internal"  # exercises (?i:($node)(\.…)?)
        d.const("node_uname_info", 1, **ne, nodename=nodename, sysname="Linux", release="6.1.0")
        for cpu in ("0", "1", "2", "3"):
            for mode, r in (("idle", 0.6), ("user", 0.2), ("system", 0.1), ("iowait", 0.02), ("steal", 0.01)):
                d.counter("node_cpu_seconds_total", r, **ne, cpu=cpu, mode=mode)
            d.counter("node_cpu_core_throttles_total", 0.01, **ne, core=cpu, package="0")
        for name, v in (("MemTotal", 16e9), ("MemAvailable", 9e9), ("MemFree", 4e9), ("Cached", 4e9),
                        ("Buffers", 5e8), ("SwapTotal", 2e9), ("SwapFree", 1.5e9)):  # fmt: skip
            d.gauge(f"node_memory_{name}_bytes", v, **ne)
        for name, v in (("node_load1", 1.2), ("node_load5", 1.0), ("node_load15", 0.8), ("node_filefd_allocated", 3200),
                        ("node_filefd_maximum", 9.2e18), ("node_nf_conntrack_entries", 900),
                        ("node_nf_conntrack_entries_limit", 262144), ("node_netstat_Tcp_CurrEstab", 120),
                        ("node_timex_estimated_error_seconds", 1e-4), ("node_timex_maxerror_seconds", 0.2),
                        ("node_boot_time_seconds", d.end_s - 86400)):  # fmt: skip
            d.gauge(name, v, **ne)
        d._add("node_time_seconds", ne, d.t / 1000.0)
        for name, r in (("node_context_switches_total", 5000), ("node_intr_total", 3000)):
            d.counter(name, r, **ne)
        d.gauge("node_disk_io_now", 2, **ne, device="nvme0n1")
        for name, r in (
            ("read_bytes", 2e5),
            ("written_bytes", 8e5),
            ("reads_completed", 20),
            ("writes_completed", 60),
        ):
            d.counter(f"node_disk_{name}_total", r, **ne, device="nvme0n1")
        for mp in ("/", "/var/lib/kubelet"):
            fs = {**ne, "device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": mp}
            d.gauge("node_filesystem_size_bytes", 1e11, **fs)
            d.gauge("node_filesystem_avail_bytes", 6e10, **fs)
            d.gauge("node_filesystem_files", 6.5e6, **fs)
            d.gauge("node_filesystem_files_free", 6e6, **fs)
            d.const("node_filesystem_device_error", 0, **fs)
        for dev in ("eth0", "lo", "veth3f2a9c1"):
            for direction in ("receive", "transmit"):
                d.counter(f"node_network_{direction}_bytes_total", 5e4, **ne, device=dev)
                d.counter(f"node_network_{direction}_packets_total", 80, **ne, device=dev)
                d.counter(f"node_network_{direction}_drop_total", 0.1, **ne, device=dev)
                d.counter(f"node_network_{direction}_errs_total", 0.01, **ne, device=dev)

    namespaces = sorted({p[0] for p in _PODS})
    for ns in namespaces:
        o = {**ksm, "namespace": ns}
        d.const("kube_namespace_created", d.end_s - 864000, **o)
        d.const("kube_namespace_labels", 1, **o)
        d.const("kube_configmap_info", 1, **o, configmap="kube-root-ca.crt")
        d.const("kube_secret_info", 1, **o, secret=f"{ns}-token")
        d.const("kube_service_info", 1, **o, service=f"{ns}-svc")
        d.const("kube_endpoint_info", 1, **o, endpoint=f"{ns}-svc")
        d.const("kube_networkpolicy_labels", 1, **o, networkpolicy="default-deny")
    for ns, kind, name in (("kube-system", "daemonset", "kube-proxy"), ("monitoring", "statefulset", "prometheus-k8s"),
                           ("default", "deployment", "web"), ("default", "hpa", "web"), ("kube-system", "deployment", "coredns")):  # fmt: skip
        d.const(f"kube_{kind}_labels", 1, **ksm, namespace=ns, **{kind: name})
    for dep, avail, unavail in (("web", 1, 0), ("worker", 0, 1), ("coredns", 1, 0)):
        ns = "kube-system" if dep == "coredns" else "default"
        d.const("kube_deployment_status_replicas_available", avail, **ksm, namespace=ns, deployment=dep)
        d.const("kube_deployment_status_replicas_unavailable", unavail, **ksm, namespace=ns, deployment=dep)
    d.const("kube_ingress_info", 1, **ksm, namespace="default", ingress="web")
    for ns, pvc, node in (
        ("monitoring", "prometheus-k8s-db-prometheus-k8s-0", nodes[1]),
        ("default", "data-web-0", nodes[0]),
    ):
        d.const(
            "kube_persistentvolumeclaim_info",
            1,
            **ksm,
            namespace=ns,
            persistentvolumeclaim=pvc,
            storageclass="gp3",
        )
        kl = {**c, "job": "kubelet", "instance": f"{ips[nodes.index(node)]}:10250", "node": node,
              "namespace": ns, "persistentvolumeclaim": pvc}  # fmt: skip
        d.gauge("kubelet_volume_stats_capacity_bytes", 5e10, **kl)
        d.gauge("kubelet_volume_stats_used_bytes", 2e10, **kl)
        d.gauge("kubelet_volume_stats_inodes", 3.2e6, **kl)
        d.gauge("kubelet_volume_stats_inodes_used", 4e4, **kl)

    for n, (ns, pod, kind, owner, containers, ni, phase, qos) in enumerate(_PODS):
        pod, owner = pod.format(node0=nodes[0]), owner.format(node0=nodes[0])
        node = nodes[ni] if ni >= 0 else ""
        p = {**ksm, "namespace": ns, "pod": pod}
        pod_ip = f"10.{ci}.{100 + ni}.{n + 2}"
        d.const("kube_pod_info", 1, **p, node=node, created_by_kind=kind, created_by_name=owner, host_ip=ips[ni] if node else "",
                pod_ip=pod_ip if node else "", priority_class={"kube-system": "system-cluster-critical", "monitoring": "high"}.get(ns, ""),
                uid=f"uid-{ci}-{n}")  # fmt: skip
        for ph in _PHASES:
            d.const("kube_pod_status_phase", int(ph == phase), **p, phase=ph)
        for q in ("Guaranteed", "Burstable", "BestEffort"):
            d.const("kube_pod_status_qos_class", int(q == qos), **p, qos_class=q)
        for reason in ("Evicted", "NodeLost", "UnexpectedAdmissionError"):
            d.const("kube_pod_status_reason", 0, **p, reason=reason)
        for cond in ("true", "false", "unknown"):
            d.const("kube_pod_status_scheduled", int((cond == "true") == bool(node)), **p, condition=cond)
        for cname in containers:
            crashing = pod.startswith("worker") or cname == "config-reloader"  # restarts, OOM kills
            cl = {**p, "container": cname}
            image = f"registry.k8s.io/{cname}:v1.2.{n}"
            d.const("kube_pod_container_info", 1, **cl, image=image, image_id=f"sha256:{n:064x}")
            for res, unit, req, lim in (("cpu", "core", 0.1, 0.5), ("memory", "byte", 1.28e8, 5.12e8)):
                d.const("kube_pod_container_resource_requests", req, **cl, resource=res, unit=unit)
                if qos != "BestEffort":
                    d.const("kube_pod_container_resource_limits", lim, **cl, resource=res, unit=unit)
            running = phase == "Running" and not crashing
            d.const("kube_pod_container_status_ready", int(running), **cl)
            d.const("kube_pod_container_status_running", int(running), **cl)
            d.const("kube_pod_container_status_terminated", 0, **cl)
            d.const("kube_pod_container_status_waiting", int(not running), **cl)
            if crashing:
                d._add("kube_pod_container_status_restarts_total", cl, np.floor(d.ts / 300))
                d.const("kube_pod_container_status_waiting_reason", 1, **cl, reason="CrashLoopBackOff")
                d.const("kube_pod_container_status_last_terminated_reason", 1, **cl, reason="Error")
                d.const("kube_pod_container_status_last_terminated_exitcode", 1, **cl)
            else:
                d.const("kube_pod_container_status_restarts_total", 0, **cl)
            if node:  # cAdvisor: one series per container plus the pod cgroup (container="", image="")
                cad = {**c, "job": "kubelet", "metrics_path": "/metrics/cadvisor", "instance": f"{ips[ni]}:10250",
                       "node": node, "namespace": ns, "pod": pod}  # fmt: skip
                cc = {**cad, "container": cname, "image": image, "id": f"/kubepods/pod-{ci}-{n}/{cname}"}
                d.counter("container_cpu_usage_seconds_total", 0.05, **cc)
                d.counter("container_cpu_cfs_throttled_seconds_total", 0.01, **cc)
                d.gauge("container_memory_working_set_bytes", 6e7, **cc)
                if crashing:
                    d._add("container_oom_events_total", cc, np.floor(d.ts / 300))
                else:
                    d.const("container_oom_events_total", 0, **cc)
        if node:
            cad = {**c, "job": "kubelet", "metrics_path": "/metrics/cadvisor", "instance": f"{ips[ni]}:10250",
                   "node": node, "namespace": ns, "pod": pod, "container": "", "image": "", "id": f"/kubepods/pod-{ci}-{n}"}  # fmt: skip
            d.counter("container_cpu_usage_seconds_total", 0.06, **cad)
            d.gauge("container_memory_working_set_bytes", 7e7, **cad)
            for direction in ("receive", "transmit"):
                net = {**cad, "interface": "eth0"}
                d.counter(f"container_network_{direction}_bytes_total", 2e3, **net)
                d.counter(f"container_network_{direction}_packets_total", 20, **net)
                d.counter(f"container_network_{direction}_packets_dropped_total", 0.01, **net)
                d.counter(f"container_network_{direction}_errors_total", 0.01, **net)

    # kube-apiserver
    api = {**c, "job": "apiserver", "instance": f"{ips[0]}:6443"}
    d.const("up", 1, **api)
    for verb, resource, code, r in (("GET", "pods", "200", 20), ("LIST", "pods", "200", 5), ("POST", "events", "201", 3),
                                    ("GET", "nodes", "500", 0.2), ("WATCH", "configmaps", "200", 1)):  # fmt: skip
        d.counter("apiserver_request_total", r, **api, verb=verb, resource=resource, code=code)
        d.counter("apiserver_request_duration_seconds_count", r, **api, verb=verb, resource=resource)
        d.counter("apiserver_request_duration_seconds_sum", r * 0.02, **api, verb=verb, resource=resource)
    d.const("apiserver_requested_deprecated_apis", 1, **api, group="batch", version="v1beta1", resource="cronjobs",
            removed_release="1.25")  # fmt: skip
    d.gauge("workqueue_depth", 2, **api, name="APIServiceRegistrationController")
    d.counter("process_cpu_seconds_total", 0.3, **api)
    d.gauge("process_resident_memory_bytes", 8e8, **api)

    # CoreDNS
    dns = {
        **c,
        "job": "coredns",
        "namespace": "kube-system",
        "pod": "coredns-5d78c9869d-h7x2k",
        "instance": f"10.{ci}.100.2:9153",
    }
    srv = {**dns, "server": "dns://:53"}
    d.const("up", 1, **dns)
    d.const("coredns_build_info", 1, **dns, version="1.11.1", revision="ae2bbc2", goversion="go1.20.7")
    d.counter("process_cpu_seconds_total", 0.01, **dns)
    d.gauge("process_resident_memory_bytes", 4e7, **dns)
    for t in ("success", "denial"):
        d.gauge("coredns_cache_entries", 300, **srv, type=t)
        d.counter("coredns_cache_hits_total", 5, **srv, type=t)
        d.counter("coredns_cache_misses_total", 1, **srv, type=t)
    for proto in ("udp", "tcp"):
        for qtype in ("A", "AAAA", "SRV"):
            d.counter("coredns_dns_requests_total", 3, **srv, zone=".", proto=proto, family="1", type=qtype)
        d.counter("coredns_dns_request_size_bytes_count", 9, **srv, zone=".", proto=proto)
        d.counter("coredns_dns_request_size_bytes_sum", 9 * 60, **srv, zone=".", proto=proto)
        for le, share in (("0", 0), ("100", 0.8), ("1023", 1), ("+Inf", 1)):
            d.counter("coredns_dns_request_size_bytes_bucket", 9 * share, **srv, zone=".", proto=proto, le=le)
            d.counter(
                "coredns_dns_response_size_bytes_bucket", 9 * share, **srv, zone=".", proto=proto, le=le
            )
    for le, share in (("0.00025", 0.3), ("0.001", 0.7), ("0.016", 0.95), ("+Inf", 1)):
        d.counter("coredns_dns_request_duration_seconds_bucket", 18 * share, **srv, zone=".", type="A", le=le)
    for rcode, r in (("NOERROR", 15), ("NXDOMAIN", 3)):
        d.counter("coredns_dns_responses_total", r, **srv, zone=".", rcode=rcode, plugin="")
    for rcode, r in (("NOERROR", 2), ("SERVFAIL", 0.05)):
        d.counter(
            "coredns_proxy_request_duration_seconds_count",
            r,
            **dns,
            proxy_name="forward",
            to="1.1.1.1:53",
            rcode=rcode,
        )

    # Prometheus itself
    prom = {
        **c,
        "job": "prometheus-k8s",
        "namespace": "monitoring",
        "pod": "prometheus-k8s-0",
        "instance": f"10.{ci}.101.4:9090",
    }
    d.const("up", 1, **prom)
    d.const(
        "up",
        0,
        **{**prom, "job": "kubernetes-pods", "pod": "legacy-exporter-0", "instance": f"10.{ci}.100.9:9999"},
    )
    d.const("prometheus_build_info", 1, **prom, version="3.5.0", branch="HEAD", goversion="go1.24.4")
    d.const("prometheus_config_last_reload_successful", 1, **prom)
    for name, v in (
        ("prometheus_tsdb_head_series", 2.5e5),
        ("prometheus_tsdb_head_chunks", 5e5),
        ("prometheus_tsdb_blocks_loaded", 12),
    ):
        d.gauge(name, v, **prom)
    for cfg in ("serviceMonitor/monitoring/node-exporter/0", "podMonitor/kube-system/coredns/0"):
        d.gauge("prometheus_sd_discovered_targets", 8, **prom, config=cfg, name="scrape")
        d.counter("prometheus_target_sync_length_seconds_sum", 0.002, **prom, scrape_job=cfg)
    for name, r in (("target_scrapes_exceeded_body_size_limit", 0), ("target_scrapes_exceeded_sample_limit", 0),
                    ("target_scrapes_sample_duplicate_timestamp", 0.01), ("target_scrapes_sample_out_of_bounds", 0),
                    ("target_scrapes_sample_out_of_order", 0.02), ("tsdb_compactions", 0.0003),
                    ("tsdb_compactions_triggered", 0.0004), ("tsdb_compactions_skipped", 0), ("tsdb_compactions_failed", 0),
                    ("tsdb_reloads_failures", 0), ("tsdb_head_samples_appended", 1.5e4),
                    ("tsdb_head_series_created", 3), ("tsdb_head_series_removed", 2.5)):  # fmt: skip
        d.counter(f"prometheus_{name}_total", r, **prom)
    d.counter("prometheus_target_interval_length_seconds_count", 10, **prom, interval="30s")
    d.counter("prometheus_target_interval_length_seconds_sum", 300, **prom, interval="30s")
    for sl in ("inner_eval", "prepare_time", "queue_time", "result_sort"):
        d.gauge("prometheus_engine_query_duration_seconds", 0.004, **prom, slice=sl, quantile="0.9")
        d.counter("prometheus_engine_query_duration_seconds_count", 0.5, **prom, slice=sl)

    # Trivy Operator (namespace = the scanned object's namespace)
    tr = {**c, "job": "trivy-operator", "instance": f"10.{ci}.101.7:8080"}
    sev = (("Critical", 1), ("High", 4), ("Medium", 9), ("Low", 12), ("Unknown", 0))
    for ns, repo in (
        ("default", "library/nginx"),
        ("monitoring", "prometheus/prometheus"),
        ("kube-system", "coredns/coredns"),
    ):
        img = {
            **tr,
            "namespace": ns,
            "image_registry": "index.docker.io",
            "image_repository": repo,
            "image_tag": "latest",
        }
        for s, v in sev:
            d.const(
                "trivy_image_vulnerabilities",
                v,
                **img,
                severity=s,
                resource_kind="ReplicaSet",
                resource_name=repo.split("/")[1],
            )
            d.const("trivy_resource_configaudits", v // 2, **tr, namespace=ns, severity=s, resource_kind="ReplicaSet",
                    resource_name=repo.split("/")[1])  # fmt: skip
            d.const("trivy_role_rbacassessments", v // 3, **tr, namespace=ns, severity=s, resource_kind="Role",
                    resource_name=f"{ns}-role")  # fmt: skip
        d.const("trivy_image_exposedsecrets", 1 if ns == "default" else 0, **img, resource_kind="ReplicaSet")
        d.const("trivy_vulnerability_id", 1, **img, vuln_id=f"CVE-2024-{1000 + len(ns)}", vuln_title="example",
                severity="High", resource="libssl3", installed_version="3.0.2", fixed_version="3.0.13")  # fmt: skip


def k8s_series(
    clusters: list[str], t_ms: np.ndarray, seed: int = 7
) -> Iterator[tuple[dict[str, str], np.ndarray]]:
    """Every series of ``clusters`` (cluster index ``ci`` gives its IP ranges) over ``t_ms``."""
    out: list[tuple[dict[str, str], np.ndarray]] = []
    d = _Data(np.asarray(t_ms, dtype=np.int64), lambda ls, v: out.append((ls, v)), seed)
    for ci, cluster in enumerate(clusters):
        _cluster(d, ci, cluster)
        yield from out
        out.clear()
