"""Kubernetes API objects for scrape tests whose addresses point at real exporters on 127.0.0.1
(imported by this unique module name; conftest modules share one name across test packages)."""

from __future__ import annotations

import time

import httpx

PODS = "/api/v1/pods"
SERVICES = "/api/v1/services"
ENDPOINTS = "/api/v1/endpoints"
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
SERVICE_MONITORS = "/apis/monitoring.coreos.com/v1/servicemonitors"
POD_MONITORS = "/apis/monitoring.coreos.com/v1/podmonitors"


def pod(name: str, port: int, labels: dict[str, str], ns: str = "shop", phase: str = "Running") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "app", "image": "shop/app:1", "ports": [
                    {"name": "metrics", "containerPort": port, "protocol": "TCP"}]}]},
            "status": {"phase": phase, "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def service(name: str, labels: dict[str, str], ns: str = "shop") -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "selector": {"app": name},
                     "ports": [{"name": "metrics", "port": 80, "targetPort": "metrics", "protocol": "TCP"}]}}


def _ref(p: dict) -> dict:
    return {"kind": "Pod", "name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"]}


def _port(p: dict) -> int:
    return p["spec"]["containers"][0]["ports"][0]["containerPort"]


def endpoints(svc: str, pods: list[dict], ns: str = "shop", labels: dict[str, str] | None = None) -> dict:
    """The Endpoints of ``svc``: one subset per pod (each exporter has its own port); ``labels``
    as the endpoints controller copies them from the service."""
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": svc, "namespace": ns, "labels": labels or {}},
            "subsets": [{"addresses": [{"ip": "127.0.0.1", "nodeName": "node-a", "targetRef": _ref(p)}],
                         "ports": [{"name": "metrics", "port": _port(p), "protocol": "TCP"}]} for p in pods]}


def endpoint_slice(svc: str, p: dict, ns: str = "shop", labels: dict[str, str] | None = None) -> dict:
    """One slice per pod (a slice's ports hold for all its endpoints); ``labels`` as the
    endpoint slice controller copies them from the service."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{svc}-{p['metadata']['name']}", "namespace": ns,
                         "labels": {**(labels or {}), "kubernetes.io/service-name": svc}},
            "ports": [{"name": "metrics", "port": _port(p), "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}, "nodeName": "node-a",
                           "targetRef": _ref(p)}]}


def query(base: str, q: str) -> list[dict]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": q}, timeout=10).json()
    assert r["status"] == "success", (q, r)
    return r["data"]["result"]


def wait_for(fn, timeout_s: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what}")
