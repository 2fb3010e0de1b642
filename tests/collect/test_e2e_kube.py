"""``kms up`` scraping what the Kubernetes API (the API server double) points at — real exporters
on 127.0.0.1 — through ``kubernetes_sd_configs`` and through ServiceMonitor/PodMonitor objects;
targets and monitors change while it runs, and SIGHUP reloads the scrape configuration."""

from __future__ import annotations

import signal

import httpx
import pytest
from kube_world import (
    ENDPOINTS,
    POD_MONITORS,
    PODS,
    SERVICE_MONITORS,
    SERVICES,
    endpoints,
    pod,
    query,
    service,
    wait_for,
)

from kms.testing import KmsProcess

pytestmark = pytest.mark.slow

M = "__meta_kubernetes_"

SD_CONFIG = """
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: shop-endpoints
    kubernetes_sd_configs: [{{role: endpoints, kubeconfig_file: kubeconfig, namespaces: {{names: [shop]}}}}]
    relabel_configs:
      - {{source_labels: [{m}service_name, {m}endpoint_port_name], regex: 'web;metrics', action: keep}}
      - {{source_labels: [{m}pod_name], target_label: pod}}
      - {{source_labels: [{m}service_label_tier], target_label: tier}}
{pods}"""
PODS_JOB = """  - job_name: shop-pods
    kubernetes_sd_configs: [{{role: pod, kubeconfig_file: kubeconfig}}]
    relabel_configs:
      - {{source_labels: [{m}pod_label_scrape], regex: 'yes', action: keep}}
      - {{source_labels: [{m}namespace, {m}pod_name], separator: /, target_label: pod}}
"""


def port(ex) -> int:
    return ex.server.server_address[1]


def labels_of(base: str, q: str) -> list[dict]:
    return sorted((r["metric"] for r in query(base, q)), key=lambda m: sorted(m.items()))


def pools(base: str) -> list[str]:
    return httpx.get(f"{base}/api/v1/scrape_pools", timeout=10).json()["data"]["scrapePools"]


def test_kubernetes_sd_in_kms_up_follows_the_api_and_reloads(kube_api, exporters, tmp_path):
    a, b = exporters(body="shop_requests_total 1\n"), exporters(body="shop_requests_total 2\n")
    pa = pod("web-a", port(a), {"app": "web", "scrape": "yes"})
    pb = pod("web-b", port(b), {"app": "web"})
    kube_api.put(PODS, pa)
    kube_api.put(SERVICES, service("web", {"tier": "front"}))
    kube_api.put(ENDPOINTS, endpoints("web", [pa]))
    conf = tmp_path / "conf"
    conf.mkdir()
    kube_api.kubeconfig(conf / "kubeconfig")  # relative in the scrape config: read from the config's directory
    prom = conf / "prometheus.yml"
    prom.write_text(SD_CONFIG.format(m=M, pods=PODS_JOB.format(m=M)))
    kms = KmsProcess(tmp_path / "data", ["--scrape-config", str(prom)]).start()
    try:
        base = kms.url
        inst = {"instance": f"127.0.0.1:{port(a)}"}
        got = wait_for(lambda: len(query(base, "shop_requests_total")) == 2 and labels_of(base, "shop_requests_total"),
                       what="both jobs scraped")
        assert got == [{"__name__": "shop_requests_total", "job": "shop-endpoints", "pod": "web-a", "tier": "front",
                         **inst},
                       {"__name__": "shop_requests_total", "job": "shop-pods", "pod": "shop/web-a", **inst}]

        # web-b joins the service and is labelled for the pod job: both jobs scrape it, no restart
        pb["metadata"]["labels"]["scrape"] = "yes"
        kube_api.put(PODS, pb)
        kube_api.put(ENDPOINTS, endpoints("web", [pa, pb]))
        inst_b = f'shop_requests_total{{instance="127.0.0.1:{port(b)}"}}'
        wait_for(lambda: len(query(base, inst_b)) == 2,
                 what="web-b scraped by both jobs")

        # web-a leaves the service: its endpoints series go stale at once (no 5 min lookback)
        kube_api.put(ENDPOINTS, endpoints("web", [pb]))
        wait_for(lambda: not query(base, 'shop_requests_total{job="shop-endpoints",pod="web-a"}'),
                 what="web-a's endpoints series stale")
        assert query(base, 'shop_requests_total{job="shop-pods",pod="shop/web-a"}')  # still a labelled pod
        kube_api.delete(PODS, "shop", "web-a")
        wait_for(lambda: not query(base, 'shop_requests_total{pod="shop/web-a"}'), what="web-a's pod series stale")

        # SIGHUP: the pod job goes (its series stale), the endpoints job changes in place: its
        # targets keep scraping, and the series the new settings no longer make end at once
        prom.write_text(SD_CONFIG.format(m=M, pods="").replace(
            "target_label: tier}", "target_label: tier}\n    metric_relabel_configs: [{target_label: reloaded, replacement: 'yes'}]"))
        kms.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: pools(base) == ["shop-endpoints"], what="the reload")
        wait_for(lambda: not query(base, 'shop_requests_total{job="shop-pods"}'), what="the pod job's series stale")
        wait_for(lambda: query(base, 'shop_requests_total{reloaded="yes",pod="web-b"}'), what="the changed job")
        wait_for(lambda: not query(base, 'shop_requests_total{reloaded=""}'), what="the old settings' series stale")
        # a reload that does not load keeps the running jobs
        prom.write_text("scrape_configs: [{job_name: x, scrape_interval: never}]\n")
        kms.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "scrape configuration not reloaded" in kms.log(), what="the refused reload logged")
        assert pools(base) == ["shop-endpoints"]
    finally:
        kms.stop()


def service_monitor(name: str, **spec) -> dict:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": "monitoring", "labels": {"release": "kms"}},
            "spec": {"namespaceSelector": {"matchNames": ["shop"]}, "selector": {"matchLabels": {"app": "web"}},
                     "endpoints": [{"port": "metrics", "interval": "1s"}], **spec}}


def test_service_monitors_in_kms_up(kube_api, exporters, tmp_path):
    a = exporters(body="shop_requests_total 1\n")
    pa = pod("web-a", port(a), {"app": "web"})
    svc = service("web", {"app": "web", "tier": "front"})
    for coll, obj in ((PODS, pa), (SERVICES, svc), (ENDPOINTS, endpoints("web", [pa]))):
        kube_api.put(coll, obj)
    kubeconfig = kube_api.kubeconfig(tmp_path / "kubeconfig")
    kms = KmsProcess(tmp_path / "data", ["--kubeconfig", str(kubeconfig), "--scrape-kubernetes-monitors", "true",
                                         "--scrape-monitor-namespace", "monitoring",
                                         "--scrape-monitor-selector", "release=kms"]).start()
    try:
        base = kms.url
        assert pools(base) == []
        kube_api.put(SERVICE_MONITORS, service_monitor("web"))
        other = service_monitor("unselected")
        other["metadata"]["labels"] = {"release": "other"}
        kube_api.put(SERVICE_MONITORS, other)
        got = wait_for(lambda: labels_of(base, "shop_requests_total"), what="the ServiceMonitor's target scraped")
        # the Operator's labels: job from the service, namespace/service/pod/container/endpoint
        assert got == [{"__name__": "shop_requests_total", "job": "web", "namespace": "shop", "service": "web",
                        "pod": "web-a", "container": "app", "endpoint": "metrics",
                        "instance": f"127.0.0.1:{port(a)}"}]
        assert pools(base) == ["serviceMonitor/monitoring/web/0"]

        # changed: targetLabels and a metric relabeling; the same target goes on with the new labels
        kube_api.put(SERVICE_MONITORS, service_monitor("web", targetLabels=["tier"], endpoints=[
            {"port": "metrics", "interval": "1s",
             "metricRelabelings": [{"targetLabel": "via", "replacement": "monitor"}]}]))
        wait_for(lambda: query(base, 'shop_requests_total{tier="front",via="monitor",job="web"}'), what="the change")
        wait_for(lambda: not query(base, 'shop_requests_total{tier=""}'), what="the old labels' series stale")

        # a PodMonitor too: job <namespace>/<name>
        kube_api.put(POD_MONITORS, {
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "web-pods", "namespace": "shop", "labels": {"release": "kms"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "podMetricsEndpoints": [{"port": "metrics", "interval": "1s"}]}})
        # ...but only monitors of the watched namespace (monitoring) are read: this one is not
        kube_api.put(POD_MONITORS, {
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "web-pods", "namespace": "monitoring", "labels": {"release": "kms"}},
            "spec": {"namespaceSelector": {"any": True}, "selector": {"matchLabels": {"app": "web"}},
                     "podMetricsEndpoints": [{"port": "metrics", "interval": "1s"}]}})
        pm = wait_for(lambda: query(base, 'shop_requests_total{job="monitoring/web-pods"}'), what="the PodMonitor")
        assert pm[0]["metric"]["pod"] == "web-a" and pm[0]["metric"]["namespace"] == "shop"
        assert not query(base, 'shop_requests_total{job="shop/web-pods"}')

        # deleted: nothing scraped any more, the series end at once
        kube_api.delete(SERVICE_MONITORS, "monitoring", "web")
        kube_api.delete(POD_MONITORS, "monitoring", "web-pods")
        wait_for(lambda: pools(base) == [], what="the jobs removed")
        wait_for(lambda: not query(base, "shop_requests_total"), what="the series stale")
    finally:
        kms.stop()
