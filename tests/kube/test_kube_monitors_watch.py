"""MonitorWatcher against the API server double: monitors selected by label, secrets read
through the API, configs re-derived on every change and handed on only when they differ."""

from __future__ import annotations

import base64
import copy

import pytest
from kube_objects import COLLECTIONS, load, named, put_all, wait_for

from kms.kube import MonitorOptions, MonitorWatcher

STACK = load("monitors-kube-prometheus-stack.yaml")


def secret(ns: str, name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": ns},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.fixture
def watcher(client_factory, tmp_path):
    made: list[MonitorWatcher] = []
    handed: list[list[str]] = []

    def make(**kw) -> MonitorWatcher:
        w = MonitorWatcher(client_factory, lambda cfgs: handed.append([c["job_name"] for c in cfgs]),
                           options=MonitorOptions(files_dir=str(tmp_path / "tls")), watch_timeout_s=1, **kw)
        made.append(w)
        w.start()
        return w
    make.handed = handed
    yield make
    for w in made:
        w.stop()


def test_configs_follow_the_monitors(api, watcher):
    put_all(api, STACK + [secret("monitoring", "shop-api-token", {"token": "t0k3n"}),
                          secret("monitoring", "shop-api-tls", {"ca.crt": "CA PEM"})])
    w = watcher(label_selector="release=kube-prometheus-stack")
    wait_for(lambda: len(w.configs) == 5)
    assert [c["job_name"] for c in w.configs] == [
        "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/0",
        "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/1",
        "serviceMonitor/monitoring/shop-api/0", "serviceMonitor/monitoring/shop-api/1",
        "podMonitor/shop/shop-workers/0"]
    side = w.configs[3]
    assert side["bearer_token"] == "t0k3n" and open(side["tls_config"]["ca_file"]).read() == "CA PEM"
    assert w.errors == {}

    # an endpoint removed: one job fewer; a monitor without the release label is not selected
    sm = named(STACK, "ServiceMonitor", "shop-api")
    sm["spec"]["endpoints"].pop()
    api.put(COLLECTIONS["ServiceMonitor"], sm)
    other = copy.deepcopy(sm)
    other["metadata"].update(name="unselected", labels={"release": "other"})
    api.put(COLLECTIONS["ServiceMonitor"], other)
    wait_for(lambda: "serviceMonitor/monitoring/shop-api/1" not in [c["job_name"] for c in w.configs])
    assert not [c for c in w.configs if "unselected" in c["job_name"]]

    # a broken monitor is left out and reported; the rest stay
    broken = named(STACK, "PodMonitor", "shop-workers")
    broken["spec"]["podMetricsEndpoints"][0].update(interval="5s", scrapeTimeout="10s")
    api.put(COLLECTIONS["PodMonitor"], broken)
    wait_for(lambda: "PodMonitor shop/shop-workers" in w.errors)
    assert "greater than the interval" in w.errors["PodMonitor shop/shop-workers"]
    assert [c["job_name"] for c in w.configs][-1] == "serviceMonitor/monitoring/shop-api/0"

    api.delete(COLLECTIONS["PodMonitor"], "shop", "shop-workers")
    api.delete(COLLECTIONS["ServiceMonitor"], "monitoring", "kube-prometheus-stack-kubelet")
    wait_for(lambda: [c["job_name"] for c in w.configs] == ["serviceMonitor/monitoring/shop-api/0"])
    wait_for(lambda: w.errors == {})


def test_handed_on_only_when_changed_and_missing_secret_reported(api, watcher):
    sm = named(STACK, "ServiceMonitor", "shop-api")
    api.put(COLLECTIONS["ServiceMonitor"], sm)
    w = watcher(namespaces=["monitoring"])
    assert [inf.path for inf in w.informers] == ["/apis/monitoring.coreos.com/v1/namespaces/monitoring/servicemonitors",
                                                 "/apis/monitoring.coreos.com/v1/namespaces/monitoring/podmonitors"]
    wait_for(lambda: "ServiceMonitor monitoring/shop-api" in w.errors)
    assert "ca.secret: key 'ca.crt' of secret monitoring/shop-api-tls not found" in w.errors["ServiceMonitor monitoring/shop-api"]
    assert w.configs == [] and watcher.handed == []  # nothing to hand on yet

    api.put(COLLECTIONS["Secret"], secret("monitoring", "shop-api-token", {"token": "a"}))
    api.put(COLLECTIONS["Secret"], secret("monitoring", "shop-api-tls", {"ca.crt": "CA"}))
    w.refresh()  # secrets are not watched: a refresh (or the next monitor change) reads them again
    assert w.errors == {} and watcher.handed == [["serviceMonitor/monitoring/shop-api/0",
                                                  "serviceMonitor/monitoring/shop-api/1"]]
    w.refresh()
    assert len(watcher.handed) == 1  # unchanged configs are not handed on again
    relabeled = copy.deepcopy(sm)
    relabeled["metadata"]["annotations"] = {"note": "metadata only"}
    api.put(COLLECTIONS["ServiceMonitor"], relabeled)
    api.put(COLLECTIONS["ServiceMonitor"], {**copy.deepcopy(sm), "metadata": {**sm["metadata"], "name": "second"}})
    wait_for(lambda: len(watcher.handed) == 2)
    assert len(watcher.handed[1]) == 4


def test_a_rotated_secret_is_picked_up_by_the_periodic_refresh(api, watcher):
    sm = named(STACK, "ServiceMonitor", "shop-api")
    put_all(api, [sm, secret("monitoring", "shop-api-token", {"token": "first"}),
                  secret("monitoring", "shop-api-tls", {"ca.crt": "CA"})])
    w = watcher(refresh_interval_s=0.2)
    wait_for(lambda: len(w.configs) == 2)
    assert w.configs[1]["bearer_token"] == "first"
    api.put(COLLECTIONS["Secret"], secret("monitoring", "shop-api-token", {"token": "second"}))
    wait_for(lambda: w.configs[1]["bearer_token"] == "second")
    assert watcher.handed == [["serviceMonitor/monitoring/shop-api/0",
                                                  "serviceMonitor/monitoring/shop-api/1"]] * 2
