"""PrometheusRule objects from the Kubernetes API become rule groups: conversion, and a real
``kms up`` watching an API server double (HTTPS, token, list + watch; no cluster runs here)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kms.kube import KubeClient, load_credentials
from kms.kube.informer import Informer
from kms.metrics.remote_write import WriteRequest, encode_remote_write
from kms.rules.kubernetes import TENANT_LABEL, groups_of
from kms.rules.load import RuleFileError
from kms.testing import KmsProcess
from kms.testing.kube_api import FakeKubeApi

RULES = "/apis/monitoring.coreos.com/v1/prometheusrules"
OBJ = yaml.safe_load((Path(__file__).parent / "data" / "prometheusrule.yaml").read_text())


def test_an_object_becomes_its_groups_under_its_own_file():
    tenant, (g,) = groups_of(copy.deepcopy(OBJ), "anonymous", 60.0)
    assert tenant == "anonymous"
    assert g.file == "prometheusrule/shop/api-slo" and g.name == "api.rules" and g.interval_s == 1.0
    assert [r.name for r in g.rules] == ["shop:requests:sum", "ShopTooManyRequests"]
    assert g.rules[0].labels == {"team": "shop"}


def test_tenant_label_and_invalid_objects():
    obj = copy.deepcopy(OBJ)
    obj["metadata"]["labels"][TENANT_LABEL] = "team-shop"
    assert groups_of(obj, "anonymous", 60.0)[0] == "team-shop"
    obj["spec"]["groups"][0]["rules"][0]["expr"] = "sum(shop_requests_total"
    with pytest.raises(RuleFileError, match="prometheusrule/shop/api-slo"):
        groups_of(obj, "anonymous", 60.0)


@pytest.fixture
def api():
    server = FakeKubeApi().start()
    yield server
    server.stop()


def test_kubeconfig_credentials_and_a_wrong_token(api, tmp_path):
    creds = load_credentials(str(api.kubeconfig(tmp_path / "config", namespace="shop")))
    assert creds.server == api.url and creds.namespace == "shop" and creds.ca_file
    api.put(RULES, copy.deepcopy(OBJ))
    doc = KubeClient(creds).list(RULES)
    assert [o["metadata"]["name"] for o in doc["items"]] == ["api-slo"]
    creds.token = "wrong"
    with pytest.raises(Exception, match="401"):
        KubeClient(creds).list(RULES)


def test_informer_follows_changes_and_relists_after_410(api, tmp_path):
    creds = load_credentials(str(api.kubeconfig(tmp_path / "config")))
    seen: list[list[str]] = []
    inf = Informer(KubeClient(creds), RULES, lambda objs: seen.append([o["metadata"]["name"] for o in objs]),
                   label_selector="role=alert-rules", watch_timeout_s=5)
    api.put(RULES, copy.deepcopy(OBJ))
    inf.start()
    try:
        wait_for(lambda: seen and seen[-1] == ["api-slo"])
        other = copy.deepcopy(OBJ)
        other["metadata"].update(name="other", labels={"role": "dashboards"})  # not selected
        api.put(RULES, other)
        second = copy.deepcopy(OBJ)
        second["metadata"]["name"] = "b-rules"
        api.put(RULES, second)
        wait_for(lambda: seen[-1] == ["api-slo", "b-rules"])
        lists_before = sum("watch" not in r for r in api.requests)
        api.compact()  # history gone: the watch gets 410 and the informer lists again
        api.delete(RULES, "shop", "api-slo")
        wait_for(lambda: seen[-1] == ["b-rules"])
        assert sum("watch" not in r for r in api.requests) > lists_before
    finally:
        inf.stop()


def wait_for(cond, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_kms_up_evaluates_prometheusrule_objects_and_follows_their_changes(api, tmp_path):
    api.put(RULES, copy.deepcopy(OBJ))
    kms = KmsProcess(tmp_path / "data", ["--rules-from-kubernetes", "true", "--kubeconfig",
                                         str(api.kubeconfig(tmp_path / "config")),
                                         "--rules-kubernetes-selector", "role=alert-rules"]).start()
    try:
        c = httpx.Client(base_url=kms.url, timeout=10)

        def groups() -> dict[tuple[str, str], list[str]]:
            data = c.get("/api/v1/rules").json()["data"]["groups"]
            return {(g["file"], g["name"]): [r["name"] for r in g["rules"]] for g in data}

        wait_for(lambda: ("prometheusrule/shop/api-slo", "api.rules") in groups())
        # the group runs every second over remote-written samples
        push = c.post("/api/v1/push", content=_remote_write("shop_requests_total", 7.0), headers=RW)
        assert push.status_code == 204, push.text
        wait_for(lambda: c.get("/api/v1/query", params={"query": "shop:requests:sum"}).json()["data"]["result"])
        wait_for(lambda: [a for a in c.get("/api/v1/alerts").json()["data"]["alerts"]
                          if a["labels"]["alertname"] == "ShopTooManyRequests" and a["state"] == "firing"])

        changed = copy.deepcopy(OBJ)
        changed["spec"]["groups"][0]["rules"].pop()  # the alert removed
        api.put(RULES, changed)
        wait_for(lambda: groups().get(("prometheusrule/shop/api-slo", "api.rules")) == ["shop:requests:sum"])

        broken = copy.deepcopy(OBJ)
        broken["metadata"]["name"] = "broken"
        broken["spec"]["groups"][0]["rules"][0]["expr"] = "sum(("
        api.put(RULES, broken)
        api.delete(RULES, "shop", "api-slo")
        wait_for(lambda: not groups())  # the broken one is skipped, the deleted one gone
        assert kms.proc.poll() is None
        assert "PrometheusRule shop/broken skipped" in kms.log()
    finally:
        kms.kill()


RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


def _remote_write(name: str, value: float) -> bytes:
    req = WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value=name)
    ts.samples.add(value=value, timestamp=int(time.time() * 1000))
    return encode_remote_write(req)


def test_stopping_an_informer_ends_its_waiting_watch_at_once(api, tmp_path):
    creds = load_credentials(str(api.kubeconfig(tmp_path / "config")))
    inf = Informer(KubeClient(creds), RULES, lambda objs: None, watch_timeout_s=300)
    inf.start()
    assert inf.synced.wait(10)
    time.sleep(0.3)  # the watch is open and waiting for events
    t0 = time.monotonic()
    inf.stop()
    assert time.monotonic() - t0 < 2.0 and not inf._thread.is_alive()
