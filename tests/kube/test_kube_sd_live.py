"""KubernetesDiscovery against the API server double: list + watch per resource and namespace,
changes followed, selectors passed to the API, relist after 410, errors kept for the log."""

from __future__ import annotations

import copy
import urllib.parse

import pytest
from kube_objects import COLLECTIONS, named, put_all, wait_for

from kms.kube import KubeClient, KubernetesDiscovery, load_credentials
from kms.kube.sd import DiscoveryFactory

M = "__meta_kubernetes_"


@pytest.fixture
def started():
    running: list[KubernetesDiscovery] = []

    def start(d: KubernetesDiscovery) -> KubernetesDiscovery:
        running.append(d)
        d.start()
        assert d.wait_synced(10), d.errors
        return d
    yield start
    for d in running:
        d.stop()


def discovery(sd: dict, client_factory=None, **kw) -> KubernetesDiscovery:
    # short watches: a stopped informer's thread ends when its watch does
    return KubernetesDiscovery(sd, client_factory, watch_timeout_s=1, **kw)


def addresses(d: KubernetesDiscovery) -> list[tuple[str, str]]:
    return sorted((lb["__address__"], lb.get(M + "endpoint_ready", "-")) for lb in d.sets())


def test_endpoints_role_follows_the_cluster(api, cluster, client_factory, started):
    put_all(api, cluster)
    changes: list[int] = []
    d = started(discovery({"role": "endpoints", "namespaces": {"names": ["shop"]}}, client_factory,
                                    on_change=lambda: changes.append(1)))
    # endpoints, services and pods of "shop" are watched; the default namespace's endpoints are not
    assert sorted(inf.path for inf in d.informers) == ["/api/v1/namespaces/shop/endpoints",
                                                       "/api/v1/namespaces/shop/pods",
                                                       "/api/v1/namespaces/shop/services"]
    assert d.poll() and not d.poll()  # a change once, then quiet
    assert addresses(d) == [("10.1.0.5:8080", "true"), ("10.1.0.5:9090", "-"), ("10.1.1.6:8080", "false"),
                            ("10.1.1.6:9090", "-")]
    assert changes

    # the second pod becomes ready: the endpoints controller moves its address
    eps = named(cluster, "Endpoints", "api")
    eps["subsets"][0]["addresses"].append(eps["subsets"][0].pop("notReadyAddresses")[0])
    api.put(COLLECTIONS["Endpoints"], eps)
    wait_for(lambda: ("10.1.1.6:8080", "true") in addresses(d))
    assert d.poll()

    # a pod label change reaches the endpoints targets through the pod informer
    pod = named(cluster, "Pod", "api-7d9c5b6f4-abcde")
    pod["metadata"]["labels"]["team"] = "payments"
    api.put(COLLECTIONS["Pod"], pod)
    wait_for(lambda: any(lb.get(M + "pod_label_team") == "payments" for lb in d.sets()))

    # the service goes: its labels leave the targets; the Endpoints go: the targets leave
    api.delete(COLLECTIONS["Service"], "shop", "api")
    wait_for(lambda: all(M + "service_name" not in lb for lb in d.sets()))
    api.delete(COLLECTIONS["Endpoints"], "shop", "api")
    wait_for(lambda: d.sets() == [])


def test_selectors_go_to_the_api_server(api, cluster, client_factory, started):
    put_all(api, cluster)
    d = started(discovery({"role": "pod", "selectors": [
        {"role": "pod", "label": "app.kubernetes.io/name=api", "field": "spec.nodeName=node-a"}]}, client_factory))
    queries = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r).query)) for r in api.requests
               if r.startswith("/api/v1/pods")]
    assert queries and all(q["labelSelector"] == "app.kubernetes.io/name=api" and
                           q["fieldSelector"] == "spec.nodeName=node-a" for q in queries)
    # the API server filters by both: the api pod on node-b and the Job's pod on node-a are not discovered
    assert {lb[M + "pod_name"] for lb in d.sets()} == {"api-7d9c5b6f4-abcde"}


def test_relist_after_410_and_deletes_seen_through_it(api, cluster, client_factory, started):
    put_all(api, [o for o in cluster if o["kind"] == "Node"])
    d = started(discovery({"role": "node"}, client_factory))
    assert sorted(lb["instance"] for lb in d.sets()) == ["node-a", "node-b"]
    lists = sum("watch" not in r for r in api.requests)
    api.compact()  # history gone: the watch ends and resuming gets 410 Gone
    api.delete(COLLECTIONS["Node"], "", "node-b")
    wait_for(lambda: [lb["instance"] for lb in d.sets()] == ["node-a"])
    assert sum("watch" not in r for r in api.requests) > lists


def test_attach_metadata_node_watches_nodes_too(api, cluster, client_factory, started):
    put_all(api, [o for o in cluster if o["kind"] != "Node"])
    d = started(discovery({"role": "pod", "namespaces": {"names": ["shop"]},
                                     "attach_metadata": {"node": True}}, client_factory))
    assert d.sets() == []  # pods wait for their node
    api.put(COLLECTIONS["Node"], named(cluster, "Node", "node-a"))
    wait_for(lambda: d.sets() and {lb[M + "node_name"] for lb in d.sets()} == {"node-a"})


def test_default_credentials_from_kubeconfig_file_and_own_namespace(api, cluster, kubeconfig, client_factory, started):
    put_all(api, cluster)
    d = started(discovery({"role": "service", "kubeconfig_file": kubeconfig}))
    assert {lb[M + "service_name"] for lb in d.sets()} == {"api", "payments", "gateway", "kube-prometheus-stack-kubelet"}
    # own_namespace: the namespace of the credentials' context (here "shop")
    other = copy.deepcopy(named(cluster, "Service", "api"))
    other["metadata"]["namespace"] = "elsewhere"
    api.put(COLLECTIONS["Service"], other)
    own = started(discovery({"role": "service", "namespaces": {"own_namespace": True}}, client_factory))
    assert [inf.path for inf in own.informers] == ["/api/v1/namespaces/shop/services"]
    assert {lb[M + "namespace"] for lb in own.sets()} == {"shop"}


def test_api_errors_are_kept_and_nothing_is_discovered(api, kubeconfig):
    creds = load_credentials(kubeconfig)
    creds.token = "wrong"
    d = discovery({"role": "node"}, lambda: KubeClient(creds))
    d.start()
    try:
        wait_for(lambda: d.errors)
        assert "401" in d.errors[0] and d.sets() == [] and not d.wait_synced(0.1)
    finally:
        d.stop()


def test_discoveries_of_one_factory_share_watches(api, cluster, kubeconfig):
    put_all(api, cluster)
    factory = DiscoveryFactory(watch_timeout_s=1)
    shop = {"role": "endpoints", "namespaces": {"names": ["shop"]}, "kubeconfig_file": kubeconfig}
    a, b = factory.discovery(shop), factory.discovery(dict(shop))
    pods = factory.discovery({"role": "pod", "namespaces": {"names": ["shop"]}, "kubeconfig_file": kubeconfig})
    try:
        for d in (a, b, pods):
            d.start()
            assert d.wait_synced(10)
        assert a.pool is b.pool is pods.pool
        # three watches for all three discoveries: the pod role reuses the endpoints role's pods watch
        assert [path for path, _, _ in a.pool.watched()] == ["/api/v1/namespaces/shop/endpoints",
                                                             "/api/v1/namespaces/shop/pods",
                                                             "/api/v1/namespaces/shop/services"]
        assert a.sets() == b.sets() and len(pods.sets()) == 7
        a.stop()  # the others keep their watches and keep following changes
        assert len(a.pool.watched()) == 3
        api.delete(COLLECTIONS["Endpoints"], "shop", "api")
        wait_for(lambda: b.sets() == [])
        assert a.sets() != []  # a stopped discovery no longer changes
        b.stop()
        assert [path for path, _, _ in a.pool.watched()] == ["/api/v1/namespaces/shop/pods"]
    finally:
        for d in (a, b, pods):
            d.stop()
    assert pods.pool.watched() == []
    # other credentials, another pool
    other = factory.discovery({"role": "node", "api_server": api.url, "bearer_token": api.token,
                               "tls_config": {"insecure_skip_verify": True}})
    assert other.pool is not a.pool
