"""Helpers over the recorded-style API objects in tests/kube/data (imported by the tests by
this unique module name; conftest modules share one name across test packages)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import yaml

from kms.testing.kube_api import FakeKubeApi

DATA = Path(__file__).parent / "data"

# kind -> the collection the API serves it under
COLLECTIONS = {"Node": "/api/v1/nodes", "Pod": "/api/v1/pods", "Service": "/api/v1/services",
               "Endpoints": "/api/v1/endpoints", "EndpointSlice": "/apis/discovery.k8s.io/v1/endpointslices",
               "Secret": "/api/v1/secrets", "ConfigMap": "/api/v1/configmaps",
               "ServiceMonitor": "/apis/monitoring.coreos.com/v1/servicemonitors",
               "PodMonitor": "/apis/monitoring.coreos.com/v1/podmonitors"}
KIND_OF_ROLE = {"node": "Node", "pod": "Pod", "service": "Service", "endpoints": "Endpoints",
                "endpointslice": "EndpointSlice"}


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DATA / name).read_text()) if d]


def by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    """``{"pod": [...], ...}`` in the roles' names, as ``build_groups`` takes them."""
    out: dict[str, list[dict]] = {}
    for role, kind in KIND_OF_ROLE.items():
        out[role] = [copy.deepcopy(o) for o in objs if o["kind"] == kind]
    return out


def named(objs: list[dict], kind: str, name: str) -> dict:
    return copy.deepcopy(next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name))


def put_all(api: FakeKubeApi, objs: list[dict]) -> None:
    for o in objs:
        api.put(COLLECTIONS[o["kind"]], copy.deepcopy(o))


def wait_for(cond, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
