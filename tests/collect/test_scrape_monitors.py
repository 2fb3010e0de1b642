"""ServiceMonitors as jobs of a running scrape manager (:class:`MonitorJobs`), in process against
the API server double: a RoleSelector monitor's set-based selector is evaluated by the API server,
and a monitor whose config does not load is left out while the others run."""

from __future__ import annotations

import math
import urllib.parse

import pytest
from kube_world import (
    ENDPOINTS,
    PODS,
    SERVICE_MONITORS,
    SERVICES,
    SLICES,
    endpoint_slice,
    endpoints,
    pod,
    service,
)

from kms.collect import MonitorJobs, ScrapeManager


def port(ex) -> int:
    return ex.server.server_address[1]


def scraped(sink, stale: bool = False) -> set[tuple[str, str]]:
    """(job, service) of every shop_requests_total sample (or staleness marker) stored so far."""
    return {(lb["job"], lb["service"]) for lb, _, v in sink.samples("shop_requests_total") if math.isnan(v) == stale}


def monitor(name: str, selector: dict, **endpoint) -> dict:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selectorMechanism": "RoleSelector", "selector": selector,
                     "endpoints": [{"port": "metrics", "interval": "1s", **endpoint}]}}


@pytest.mark.parametrize("role", ["endpoints", "endpointslice"])
def test_role_selector_monitor_and_a_bad_one(kube_api, kubeconfig, exporters, sink, role):
    svcs = {"web": {"app": "web"}, "old": {"app": "web", "legacy": "yes"}, "db": {"app": "db"}}
    pods = {name: pod(f"{name}-0", port(exporters(body="shop_requests_total 1\n")), {"app": name}) for name in svcs}

    def put_service(name: str, labels: dict[str, str]) -> None:
        kube_api.put(SERVICES, service(name, labels))
        if role == "endpoints":
            kube_api.put(ENDPOINTS, endpoints(name, [pods[name]], labels=labels))
        else:
            kube_api.put(SLICES, endpoint_slice(name, pods[name], labels=labels))

    for name, labels in svcs.items():
        kube_api.put(PODS, pods[name])
        put_service(name, labels)
    kube_api.put(SERVICE_MONITORS, monitor("web", {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web", "cache"]}, {"key": "legacy", "operator": "DoesNotExist"}]}))
    kube_api.put(SERVICE_MONITORS, monitor("bad", {"matchLabels": {"app": "db"}}, scheme="ftp"))
    m = ScrapeManager([], sink)
    m.start()
    jobs = MonitorJobs(m, kubeconfig, role=role, watch_timeout_s=2)
    jobs.start()
    try:
        sink.wait(lambda: scraped(sink))
        assert m.pools() == ["serviceMonitor/shop/web/0"]
        assert list(jobs.errors) == ["serviceMonitor/shop/bad/0"] and "scheme" in jobs.errors["serviceMonitor/shop/bad/0"]
        # the API server chose the objects: the selector went to it, set-based terms and all
        selectors = {dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r).query)).get("labelSelector")
                     for r in kube_api.requests if f"/{role}" in r or "/services" in r}
        assert "app in (cache,web),!legacy" in selectors
        assert {dict(lp.target.labels)["service"] for lp in m.loops()} == {"web"}
        kind = "endpointslice" if role == "endpointslice" else "endpoint"  # discovered through the chosen role
        assert f"__meta_kubernetes_{kind}_port_name" in dict(m.loops()[0].target.discovered)

        # "old" drops its legacy label: the API now sends it to the watch, and it is scraped
        put_service("old", {"app": "web"})
        sink.wait(lambda: ("old", "old") in scraped(sink))
        # and "web" takes the label: it leaves the selection and its series end
        put_service("web", {"app": "web", "legacy": "yes"})
        sink.wait(lambda: ("web", "web") in scraped(sink, stale=True))
        assert {dict(lp.target.labels)["service"] for lp in m.loops()} == {"old"}
        assert ("db", "db") not in scraped(sink)
    finally:
        jobs.stop()
        m.stop()
