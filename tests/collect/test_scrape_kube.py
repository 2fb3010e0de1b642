"""The scrape manager with ``kubernetes_sd_configs`` (against the API server double, targets at
real exporters on 127.0.0.1) and with jobs replaced while it runs (``set_jobs``)."""

from __future__ import annotations

import math

import pytest
from kube_world import PODS, SERVICES, SLICES, endpoint_slice, pod, service

from kms.collect import ScrapeManager, load_jobs

M = "__meta_kubernetes_"


def series(sink, name: str, job: str, stale: bool = False) -> set[tuple[tuple[str, str], ...]]:
    """Label sets of ``name`` from ``job`` stored so far (only staleness markers with ``stale``)."""
    return {tuple(sorted(lb.items())) for lb, _, v in sink.samples(name)
            if lb.get("job") == job and math.isnan(v) == stale}


def port(ex) -> int:
    return ex.server.server_address[1]


def test_kubernetes_sd_targets_follow_the_api(kube_api, kubeconfig, exporters, sink):
    a, b = exporters(body="shop_requests_total 1\n"), exporters(body="shop_requests_total 2\n")
    pa, pb = pod("web-a", port(a), {"app": "web"}), pod("web-b", port(b), {"app": "web"})
    kube_api.put(PODS, pa)
    kube_api.put(PODS, pod("db-0", port(a), {"app": "db"}))  # not selected by relabeling
    kube_api.put(SERVICES, service("web", {"tier": "front"}))
    kube_api.put(SLICES, endpoint_slice("web", pa))
    jobs = load_jobs({"scrape_interval": "1s"}, [
        {"job_name": "pods",
         "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": kubeconfig, "namespaces": {"names": ["shop"]}}],
         "relabel_configs": [{"source_labels": [M + "pod_label_app"], "regex": "web", "action": "keep"},
                             {"source_labels": [M + "pod_name"], "target_label": "pod"},
                             {"source_labels": [M + "namespace"], "target_label": "namespace"}]},
        {"job_name": "slices", "kubernetes_sd_configs": [{"role": "endpointslice", "kubeconfig_file": kubeconfig}],
         "relabel_configs": [{"source_labels": [M + "service_name", M + "endpointslice_port_name"],
                              "regex": "web;metrics", "action": "keep"},
                             {"source_labels": [M + "service_label_tier"], "target_label": "tier"},
                             {"source_labels": [M + "pod_name"], "target_label": "pod"}]}])
    m = ScrapeManager(jobs, sink, poll_s=60)  # changes must come through the watches, not the poll
    m.start()
    try:
        # the first targets are the cluster's: the manager waited for the lists
        assert [lp.target.url for lp in m.loops("pods")] == [f"http://127.0.0.1:{port(a)}/metrics"]
        assert {d.discovered for d in m.dropped("pods")} and len(m.dropped("pods")) == 1
        inst_a = ("instance", f"127.0.0.1:{port(a)}")
        sink.wait(lambda: series(sink, "shop_requests_total", "pods") and series(sink, "shop_requests_total", "slices"))
        assert series(sink, "shop_requests_total", "pods") == {
            (inst_a, ("job", "pods"), ("namespace", "shop"), ("pod", "web-a"))}
        assert series(sink, "shop_requests_total", "slices") == {
            (inst_a, ("job", "slices"), ("pod", "web-a"), ("tier", "front"))}

        # a pod and its slice appear: scraped without waiting for the poll
        kube_api.put(PODS, pb)
        kube_api.put(SLICES, endpoint_slice("web", pb))
        sink.wait(lambda: {dict(s)["pod"] for s in series(sink, "shop_requests_total", "slices")} == {"web-a", "web-b"}
                  and len(series(sink, "shop_requests_total", "pods")) == 2)

        # web-a goes: its series end with staleness markers
        kube_api.delete(SLICES, "shop", "web-web-a")
        kube_api.delete(PODS, "shop", "web-a")
        sink.wait(lambda: any(dict(s)["pod"] == "web-a" for s in series(sink, "shop_requests_total", "pods", True)))
        sink.wait(lambda: any(dict(s).get("pod") == "web-a" for s in series(sink, "up", "slices", True)))
        sink.wait(lambda: len(m.loops("pods")) == len(m.loops("slices")) == 1)
        assert m.loops("pods")[0].target.url == f"http://127.0.0.1:{port(b)}/metrics"
    finally:
        m.stop()
    assert m.kube._pools and all(not p.watched() for p in m.kube._pools.values())  # every watch ended


def test_set_jobs_adds_changes_and_removes_in_place(exporters, sink, tmp_path):
    ex = exporters(body="thing 1\n")

    def static(name: str, **kw) -> dict:
        return {"job_name": name, "scrape_interval": "1s", "static_configs": [{"targets": [ex.address]}], **kw}

    m = ScrapeManager(load_jobs(None, [static("base")]), sink)
    m.set_jobs("extra", load_jobs(None, [static("x")]))  # before the start: started with the others
    m.start()
    try:
        assert m.pools() == ["base", "x"] and len(m.loops("x")) == 1
        m.set_jobs("extra", load_jobs(None, [static("x"), static("y")]))
        assert m.pools() == ["base", "x", "y"] and len(m.loops("y")) == 1  # running when set_jobs returns
        sink.wait(lambda: series(sink, "thing", "x") and series(sink, "thing", "y"))
        x_loop, y_loop = m.loops("x")[0], m.loops("y")[0]

        # x changed: its target continues under the new settings, the series it no longer makes go stale
        relabel = [{"target_label": "v", "replacement": "2"}]
        m.set_jobs("extra", load_jobs(None, [static("x", metric_relabel_configs=relabel), static("y")]))
        assert m.loops("x")[0] is not x_loop and m.loops("y")[0] is y_loop  # y unchanged: the same loop
        sink.wait(lambda: any(dict(s).get("v") == "2" for s in series(sink, "thing", "x")))
        sink.wait(lambda: series(sink, "thing", "x", True))
        assert all("v" not in dict(s) for s in series(sink, "thing", "x", True))

        # a name another group holds and a job without credentials are left out; the rest applies
        nocreds = {"job_name": "k", "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(tmp_path / "no")}]}
        m.set_jobs("extra", load_jobs(None, [static("base"), static("y"), nocreds]))
        assert m.pools() == ["base", "y"] and m._group["base"] == "config"
        sink.wait(lambda: any(dict(s).get("v") == "2" for s in series(sink, "thing", "x", True)))  # x removed: stale
        assert not series(sink, "thing", "base", True)
    finally:
        m.stop()


def test_missing_kubernetes_credentials_fail_at_construction(tmp_path, sink):
    from kms.collect import MonitorJobs
    from kms.errors import BadInput

    missing = str(tmp_path / "missing-kubeconfig")
    jobs = load_jobs(None, [{"job_name": "k", "kubernetes_sd_configs": [{"role": "node", "kubeconfig_file": missing}]}])
    with pytest.raises(BadInput, match="scrape job 'k': cannot read kubeconfig"):
        ScrapeManager(jobs, sink)
    with pytest.raises(BadInput, match="cannot read kubeconfig"):
        MonitorJobs(ScrapeManager([], sink), missing)


def test_prometheus_receiver_reads_a_relative_kubeconfig_beside_its_file(kube_api, tmp_path):
    from kms.pipeline.config import load_pipeline_config
    from kms.pipeline.receivers import Receivers
    from kms.pipeline.runtime import Pipelines

    conf = tmp_path / "conf"
    conf.mkdir()
    kube_api.kubeconfig(conf / "kubeconfig")
    (conf / "agent.yaml").write_text("""
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: pods
          kubernetes_sd_configs: [{role: pod, kubeconfig_file: kubeconfig}]
exporters: {debug: {}}
service: {pipelines: {metrics: {receivers: [prometheus], exporters: [debug]}}}
""")
    pipelines = Pipelines(load_pipeline_config(conf / "agent.yaml"), tmp_path / "data", 1 << 20, {})
    (manager,) = Receivers(pipelines, tmp_path / "data", "t").scrapers  # the credentials were read: no BadInput
    assert manager.jobs["pods"].kubernetes_sd_configs[0].kubeconfig_file == str(conf / "kubeconfig")
    manager.stop()
