"""Every query of the 8 dotdc Kubernetes Grafana dashboards parses and evaluates with our engine.

Source: /work/shared/conformance/dashboards (``dotdc-queries.txt``: ``<dashboard>\\t<expr>`` per
line, 311 lines; the dashboard JSON gives the template variables). Each query is interpolated the
way Grafana's Prometheus datasource does it, under two variable selections:

- ``all``:  include-All variables pick All (their ``allValue``, ``.*``), multi-value variables pick
  every option, single-value variables their saved value if it is an option, else the first;
- ``pick``: multi-value variables pick their first and last option (``(a|b)``), the others the last.

Options of ``label_values(<selector>, <label>)`` variables come from the series lookup Grafana makes
(``/api/v1/label/<label>/values?match[]=<selector>``): our ``match[]`` parser, ``select`` over the
dashboard range and the label's non-empty values. Chained variables are resolved in dependency
order. ``$__interval`` = 30s (the panels' ``$resolution``), scrape interval 15s, so
``$__rate_interval`` = max(30s + 15s, 4 * 15s) = 1m; ``$__range`` = 1h.

Every PromQL line is evaluated as an instant query (at END) and as a range query (last hour, 30s
step) under both selections over a synthetic two-cluster data set with the 141 metric names the
dashboards use. The summary asserts no errors and a measured floor of non-empty results.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from kms.metrics.http.params import parse_selector
from kms.metrics.promql import Engine, MemorySeriesSource, Result

DIR = Path("/work/shared/conformance/dashboards")
QUERIES_FILE = DIR / "dotdc-queries.txt"
pytestmark = pytest.mark.skipif(not QUERIES_FILE.is_file(), reason="dashboard queries not present")

S, M = 1000, 60_000
END = 1_780_000_200_000  # a multiple of the step, like Grafana's aligned range queries
START = END - 60 * M
STEP = 30 * S
SCRAPE = 15 * S
BUILTINS = {"__interval": "30s", "__interval_ms": "30000", "__rate_interval": "1m", "__range": "1h",
            "__range_s": "3600", "__range_ms": "3600000"}  # fmt: skip
SCENARIOS = ("all", "pick")
N_QUERIES, N_LABEL_VALUES = 311, 22
# Measured: 619 of 622 instant and 619 of 622 range results are non-empty (311 lines x 2 selections;
# the 3 empty ones are `pick` selections that legitimately match nothing), 44 of 44 label lookups.
NON_EMPTY_FLOOR = 0.98

_VAR = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\s*\)$")


def _load_queries() -> list[tuple[int, str, str]]:
    if not QUERIES_FILE.is_file():
        return []
    out = []
    for n, line in enumerate(QUERIES_FILE.read_text().splitlines(), 1):
        if line.strip():
            dash, expr = line.split("\t", 1)
            out.append((n, dash, expr))
    return out


QUERIES = _load_queries()


# -- synthetic data ------------------------------------------------------------------------------

_T = np.arange(END - 75 * M, END + 1, SCRAPE, dtype=np.int64)  # 1h15m: lookback and rate windows
_TS = (_T - _T[0]) / 1000.0


class _Data:
    def __init__(self) -> None:
        self.src = MemorySeriesSource()
        self.rng = np.random.default_rng(7)
        self.n = 0

    def gauge(self, metric: str, value: float, /, **labels: str) -> None:
        noise = 1 + 0.02 * np.sin(_TS / 300 + self.n) if value else 0.0
        self._add(metric, labels, value * noise)

    def const(self, metric: str, value: float, /, **labels: str) -> None:
        self._add(metric, labels, np.full(len(_T), float(value)))

    def counter(self, metric: str, per_s: float, /, **labels: str) -> None:
        inc = per_s * SCRAPE / 1000 * (0.5 + self.rng.random(len(_T)))
        self._add(metric, labels, 1000 * (self.n % 7) + np.cumsum(inc))

    def _add(self, metric: str, labels: dict[str, str], v) -> None:
        self.n += 1
        self.src.add_series({"__name__": metric, **labels}, _T, np.broadcast_to(v, _T.shape))


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
                        ("node_boot_time_seconds", END / 1000 - 86400)):  # fmt: skip
            d.gauge(name, v, **ne)
        d._add("node_time_seconds", ne, _T / 1000.0)
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
        d.const("kube_namespace_created", END / 1000 - 864000, **o)
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
                d._add("kube_pod_container_status_restarts_total", cl, np.floor(_TS / 300))
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
                    d._add("container_oom_events_total", cc, np.floor(_TS / 300))
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


@functools.cache
def _source() -> MemorySeriesSource:
    d = _Data()
    for ci, cluster in enumerate(("prod", "staging")):
        _cluster(d, ci, cluster)
    return d.src


@functools.cache
def _engine() -> Engine:
    return Engine(_source())


# -- Grafana template variables ------------------------------------------------------------------


def _regex_escape(v: str) -> str:
    """Grafana's ``prometheusSpecialRegexEscape`` (result goes inside a PromQL string literal)."""
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), v.replace("\\", "\\\\\\\\"))


def _format(var: dict, selected: list[str] | None) -> str:
    """Grafana's ``interpolateQueryExpr``; ``selected=None`` means All."""
    if selected is None:
        if var.get("allValue"):
            return var["allValue"]
        selected = var["options"]
    if not var.get("multi") and not var.get("includeAll"):
        return selected[0].replace("\\", "\\\\").replace("'", "\\\\'") if selected else ""
    esc = [_regex_escape(v) for v in selected]
    return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"


def interpolate(expr: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name in BUILTINS:
            return BUILTINS[name]
        if name not in values:
            raise KeyError(f"undefined Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VAR.sub(sub, expr)


def label_values(query: str) -> tuple[list[str], str]:
    """``label_values(<selector>, <label>)`` answered like ``/api/v1/label/<label>/values?match[]=``."""
    m = _LABEL_VALUES.match(query.strip())
    assert m, f"not a label_values() query: {query!r}"
    selector, label = m.group(1).strip(), m.group(2)
    series = _source().select(parse_selector(selector), START, END)
    return sorted({s.labels[label] for s in series if s.labels.get(label)}), selector


@functools.cache
def _dashboard_vars(dash: str, scenario: str) -> dict[str, str]:
    """Resolve the dashboard's variables (in dependency order) to their interpolated text."""
    spec = json.loads((DIR / "dotdc" / dash).read_text())
    pending = {
        v["name"]: v for v in spec["templating"]["list"] if v["type"] in ("query", "custom", "constant")
    }
    values: dict[str, str] = {}
    while pending:
        progress = False
        for name, var in list(pending.items()):
            q = var.get("query")
            q = (q.get("query") if isinstance(q, dict) else q) or var.get("definition", "")
            if any((m.group(1) or m.group(2) or m.group(4)) in pending for m in _VAR.finditer(q)):
                continue  # depends on a variable not resolved yet
            if var["type"] == "query":
                var = {**var, "options": label_values(interpolate(q, values))[0]}
                opts = var["options"]
                saved = (var.get("current") or {}).get("value")
                if scenario == "all" and var.get("includeAll"):
                    values[name] = _format(var, None)
                elif scenario == "all" and var.get("multi"):
                    values[name] = _format(var, opts)
                elif scenario == "all":  # Grafana keeps the saved value if it is still an option
                    values[name] = _format(var, [saved] if saved in opts else opts[:1])
                elif var.get("multi"):
                    values[name] = _format(var, sorted({opts[0], opts[-1]}) if opts else [])
                else:
                    values[name] = _format(var, opts[-1:])
            else:  # custom / constant: the current value
                cur = var.get("current", {}).get("value") or q.split(",")[0].strip()
                values[name] = cur if isinstance(cur, str) else cur[0]
            del pending[name]
            progress = True
        assert progress, f"{dash}: circular variables {sorted(pending)}"
    return values


# -- evaluation ----------------------------------------------------------------------------------


def _size(res: Result) -> int:
    v = res.value
    return len(v.samples) if v.type == "vector" else len(v.series) if v.type == "matrix" else 1


@functools.cache
def evaluate(idx: int) -> dict[str, int]:
    """Evaluate one line under both selections; returns result sizes by ``<scenario>/<kind>``."""
    _, dash, expr = QUERIES[idx]
    eng, out = _engine(), {}
    for scenario in SCENARIOS:
        q = interpolate(expr, _dashboard_vars(dash, scenario))
        assert not _VAR.search(q), q
        if q.startswith("label_values("):
            opts, selector = label_values(q)
            out[f"{scenario}/label_values"] = len(opts)
            q = selector  # the match[] selector must also be valid PromQL for the engine
        inst = eng.instant(q, END)
        rng = eng.range(q, START, END, STEP)
        assert rng.value.type == "matrix", (q, rng.value.type)
        out[f"{scenario}/instant"], out[f"{scenario}/range"] = _size(inst), _size(rng)
        if inst.value.type == "vector":  # the instant result is the range result's last step
            last = {tuple(sorted(m.labels.items())): m.v[-1] for m in rng.value.series if m.t[-1] == END}
            got = {tuple(sorted(x.labels.items())): x.value for x in inst.value.samples}
            assert got.keys() == last.keys(), q
            assert all(np.isclose(got[k], last[k], equal_nan=True) for k in got), q
    return out


def _id(q: tuple[int, str, str]) -> str:
    return f"{q[1].removeprefix('k8s-').removesuffix('.json')}:{q[0]}"


@pytest.mark.parametrize("idx", range(len(QUERIES)), ids=[_id(q) for q in QUERIES])
def test_dashboard_query(idx: int) -> None:
    sizes = evaluate(idx)  # raises on a parse/evaluation error or an instant/range mismatch
    assert (
        len(sizes) == 3 * len(SCENARIOS)
        if QUERIES[idx][2].startswith("label_values(")
        else 2 * len(SCENARIOS)
    )


def test_dashboard_summary(capsys) -> None:
    assert len(QUERIES) == N_QUERIES
    assert sum(e.startswith("label_values(") for _, _, e in QUERIES) == N_LABEL_VALUES
    rows: dict[str, list[int]] = {}
    totals = {"instant": [0, 0], "range": [0, 0], "label_values": [0, 0]}
    for idx, (_, dash, _) in enumerate(QUERIES):
        row = rows.setdefault(dash, [0, 0, 0])
        row[0] += 1
        for key, n in evaluate(idx).items():
            kind = key.split("/")[1]
            totals[kind][0] += 1
            totals[kind][1] += n > 0
            row[1] += 1
            row[2] += n > 0
    lines = [f"{'dashboard':34} {'lines':>5} {'evals':>6} {'non-empty':>9}"]
    lines += [f"{d:34} {a:5} {b:6} {c:9}" for d, (a, b, c) in sorted(rows.items())]
    lines += [f"{k:34} {'':5} {n:6} {ne:9}" for k, (n, ne) in totals.items()]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert totals["instant"][0] == totals["range"][0] == 2 * (N_QUERIES - N_LABEL_VALUES) + 2 * N_LABEL_VALUES
    for kind, (n, ne) in totals.items():
        assert ne / n >= NON_EMPTY_FLOOR, f"{kind}: only {ne}/{n} non-empty"
