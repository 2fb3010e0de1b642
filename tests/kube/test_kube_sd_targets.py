"""Target generation per role from recorded API objects, case by case against the label names
and rules of Prometheus's Kubernetes service discovery."""

from __future__ import annotations

import copy

import pytest
from kube_objects import by_kind, named

from kms.kube.sd import build_groups
from kms.kube.sd_targets import sanitize

M = "__meta_kubernetes_"


def sets(role: str, objs: dict[str, list[dict]], attach_node: bool = False) -> list[dict[str, str]]:
    return [lb for g in build_groups(role, objs, attach_node) for lb in g.label_sets()]


def at(label_sets: list[dict[str, str]], address: str, **match: str) -> dict[str, str]:
    found = [lb for lb in label_sets if lb["__address__"] == address
             and all(lb.get(M + k) == v for k, v in match.items())]
    assert len(found) == 1, f"{len(found)} targets at {address} {match}: {[s['__address__'] for s in label_sets]}"
    return found[0]


@pytest.mark.parametrize("key,expected", [
    ("app.kubernetes.io/name", "app_kubernetes_io_name"), ("node-role.kubernetes.io/worker", "node_role_kubernetes_io_worker"),
    ("plain_Name9", "plain_Name9"), ("a b:c", "a_b_c"),
])
def test_label_keys_are_sanitized_like_prometheus(key, expected):
    assert sanitize(key) == expected


# -- node --

def test_node_target_is_the_kubelet_on_the_preferred_address(cluster):
    a, b = sets("node", by_kind(cluster))
    assert a["__address__"] == "10.0.0.1:10250" and a["instance"] == "node-a"  # first InternalIP wins
    assert a[M + "node_name"] == "node-a"
    assert a[M + "node_provider_id"] == "aws:///eu-west-1a/i-0a1b2c3d4e5f"
    # the first address of each type, by its type name
    assert (a[M + "node_address_InternalIP"], a[M + "node_address_ExternalIP"], a[M + "node_address_Hostname"],
            a[M + "node_address_InternalDNS"]) == ("10.0.0.1", "203.0.113.7", "node-a",
                                                    "ip-10-0-0-1.eu-west-1.compute.internal")
    assert a[M + "node_label_topology_kubernetes_io_zone"] == "eu-west-1a"
    assert a[M + "node_labelpresent_topology_kubernetes_io_zone"] == "true"
    # an empty label value is still "present": the only way to tell it from a missing label
    assert a[M + "node_label_node_role_kubernetes_io_worker"] == ""
    assert a[M + "node_labelpresent_node_role_kubernetes_io_worker"] == "true"
    assert a[M + "node_annotation_node_alpha_kubernetes_io_ttl"] == "0"
    assert a[M + "node_annotationpresent_node_alpha_kubernetes_io_ttl"] == "true"
    assert (a[M + "node_condition_ready"], a[M + "node_condition_memorypressure"]) == ("true", "false")
    # node-b has only a hostname; no provider id
    assert b["__address__"] == "node-b:10250" and b[M + "node_provider_id"] == ""
    assert b[M + "node_condition_ready"] == "unknown"
    assert M + "node_address_InternalIP" not in b


@pytest.mark.parametrize("addresses,expected", [
    ([("Hostname", "h"), ("ExternalDNS", "e.example"), ("ExternalIP", "203.0.113.1")], "203.0.113.1"),
    ([("Hostname", "h"), ("ExternalDNS", "e.example")], "e.example"),
    ([("Hostname", "h"), ("InternalDNS", "i.internal"), ("ExternalIP", "203.0.113.1")], "i.internal"),
    ([("LegacyHostIP", "192.0.2.1"), ("Hostname", "h")], "192.0.2.1"),
    ([("InternalIP", "fd00::1")], "[fd00::1]:10250"),
])
def test_node_address_preference(addresses, expected):
    node = {"metadata": {"name": "n"}, "status": {"addresses": [{"type": t, "address": a} for t, a in addresses],
                                                  "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
    (lb,) = sets("node", {"node": [node]})
    assert lb["__address__"] == (expected if expected.startswith("[") else f"{expected}:10250")


def test_a_node_without_addresses_has_no_target():
    assert sets("node", {"node": [{"metadata": {"name": "n"}, "status": {}}]}) == []


# -- pod --

def test_pod_targets_one_per_container_port_and_one_per_portless_container(cluster):
    objs = by_kind(cluster)
    label_sets = [lb for lb in sets("pod", objs) if lb[M + "pod_name"] == "api-7d9c5b6f4-abcde"]
    assert sorted((lb["__address__"], lb[M + "pod_container_name"]) for lb in label_sets) == [
        ("10.1.0.5", "envoy"), ("10.1.0.5", "migrate"), ("10.1.0.5:8080", "api"), ("10.1.0.5:9090", "api")]
    metrics = at(label_sets, "10.1.0.5:9090")
    assert {k[len(M):]: v for k, v in metrics.items() if k.startswith(M + "pod_container")} == {
        "pod_container_name": "api", "pod_container_id": "containerd://2222bbbb",
        "pod_container_image": "registry.example.com/shop/api:1.4.2", "pod_container_port_name": "metrics",
        "pod_container_port_number": "9090", "pod_container_port_protocol": "TCP", "pod_container_init": "false"}
    assert (metrics[M + "namespace"], metrics[M + "pod_ip"], metrics[M + "pod_ready"], metrics[M + "pod_phase"],
            metrics[M + "pod_node_name"], metrics[M + "pod_host_ip"], metrics[M + "pod_uid"]) == (
        "shop", "10.1.0.5", "true", "Running", "node-a", "10.0.0.1", "0b9f5c6e-1111-4f1e-8c3d-aaaaaaaaaaaa")
    assert (metrics[M + "pod_controller_kind"], metrics[M + "pod_controller_name"]) == ("ReplicaSet", "api-7d9c5b6f4")
    assert metrics[M + "pod_label_app_kubernetes_io_name"] == "api"
    assert metrics[M + "pod_labelpresent_team"] == "true"
    assert metrics[M + "pod_annotation_prometheus_io_scrape"] == "true"
    assert metrics[M + "pod_annotationpresent_kubectl_kubernetes_io_restartedAt"] == "true"
    init = at(label_sets, "10.1.0.5", pod_container_name="migrate")
    assert (init[M + "pod_container_init"], init[M + "pod_container_id"]) == ("true", "containerd://1111aaaa")
    assert M + "pod_container_port_number" not in init


def test_pod_ready_phase_and_pods_without_ip(cluster):
    label_sets = sets("pod", by_kind(cluster))
    names = {lb[M + "pod_name"] for lb in label_sets}
    assert "api-7d9c5b6f4-pend1" not in names  # no IP yet: no targets (the group stays, empty)
    assert at(label_sets, "10.1.1.6:9090")[M + "pod_ready"] == "false"
    job = at(label_sets, "10.1.0.9:9102")  # finished pods are discovered; monitors drop them by phase
    assert (job[M + "pod_phase"], job[M + "pod_controller_kind"]) == ("Succeeded", "Job")
    no_conditions = copy.deepcopy(named(cluster, "Pod", "api-7d9c5b6f4-fghij"))
    no_conditions["status"]["conditions"] = []
    assert {lb[M + "pod_ready"] for lb in sets("pod", {"pod": [no_conditions]})} == {"unknown"}
    groups = build_groups("pod", by_kind(cluster))
    assert [g.source for g in groups if not g.targets] == ["pod/shop/api-7d9c5b6f4-pend1"]


def test_pod_attach_metadata_node_adds_node_labels_and_waits_for_the_node(cluster):
    objs = by_kind(cluster)
    objs["node"] = [n for n in objs["node"] if n["metadata"]["name"] == "node-a"]  # node-b not known (yet)
    label_sets = sets("pod", objs, attach_node=True)
    assert {lb[M + "pod_node_name"] for lb in label_sets} == {"node-a"}  # pods on node-b: no targets
    assert {lb[M + "node_label_topology_kubernetes_io_zone"] for lb in label_sets} == {"eu-west-1a"}
    assert {lb[M + "node_name"] for lb in label_sets} == {"node-a"}
    assert all(M + "node_name" not in lb for lb in sets("pod", objs))  # not without attach_metadata


# -- service --

def test_service_targets_per_port_by_type(cluster):
    label_sets = sets("service", by_kind(cluster))
    http = at(label_sets, "api.shop.svc:80")
    assert (http[M + "service_name"], http[M + "namespace"], http[M + "service_port_name"],
            http[M + "service_port_number"], http[M + "service_port_protocol"], http[M + "service_type"],
            http[M + "service_cluster_ip"]) == ("api", "shop", "http", "80", "TCP", "ClusterIP", "10.96.12.34")
    assert http[M + "service_label_team"] == "checkout" and http[M + "service_labelpresent_team"] == "true"
    assert http[M + "service_annotation_prometheus_io_scrape"] == "true"
    assert at(label_sets, "api.shop.svc:9090")[M + "service_port_name"] == "metrics"
    ext = at(label_sets, "payments.shop.svc:443")
    assert ext[M + "service_external_name"] == "payments.example.net" and M + "service_cluster_ip" not in ext
    lb = at(label_sets, "gateway.shop.svc:443")
    # the ingress IPs (hostnames skipped) win over spec.loadBalancerIP
    assert lb[M + "service_loadbalancer_ip"] == "198.51.100.10,198.51.100.11"
    assert M + "service_loadbalancer_ip" not in http


# -- endpoints --

def test_endpoints_targets_carry_service_and_pod_metadata(cluster):
    label_sets = sets("endpoints", by_kind(cluster))
    ready = at(label_sets, "10.1.0.5:8080")
    assert (ready[M + "endpoint_ready"], ready[M + "endpoint_port_name"], ready[M + "endpoint_port_protocol"],
            ready[M + "endpoint_node_name"], ready[M + "endpoint_address_target_kind"],
            ready[M + "endpoint_address_target_name"]) == ("true", "http", "TCP", "node-a", "Pod", "api-7d9c5b6f4-abcde")
    assert (ready[M + "endpoints_name"], ready[M + "endpoints_label_team"], ready[M + "service_name"],
            ready[M + "service_label_team"], ready[M + "namespace"]) == ("api", "checkout", "api", "checkout", "shop")
    assert (ready[M + "pod_name"], ready[M + "pod_container_name"], ready[M + "pod_container_port_name"],
            ready[M + "pod_container_port_number"], ready[M + "pod_ready"]) == (
        "api-7d9c5b6f4-abcde", "api", "http", "8080", "true")
    assert at(label_sets, "10.1.1.6:8080")[M + "endpoint_ready"] == "false"  # from notReadyAddresses
    # the pods' container ports the Endpoints do not list are targets too, without endpoint labels
    side = at(label_sets, "10.1.0.5:9090")
    assert (side[M + "pod_container_port_name"], side[M + "service_name"]) == ("metrics", "api")
    assert M + "endpoint_port_name" not in side and M + "endpoint_ready" not in side
    at(label_sets, "10.1.1.6:9090")
    # the API server's own Endpoints: no service object, no target reference
    apiserver = at(label_sets, "172.18.0.2:6443")
    assert M + "service_name" not in apiserver and M + "endpoint_address_target_kind" not in apiserver
    assert apiserver[M + "endpoints_name"] == "kubernetes"
    assert len(label_sets) == 5 + 6  # and the kubelet's: 2 node addresses x 3 ports


def test_endpoints_without_the_pod_object_have_no_pod_labels(cluster):
    objs = by_kind(cluster)
    objs["pod"] = []
    label_sets = sets("endpoints", objs)
    assert all(M + "pod_name" not in lb for lb in label_sets)
    assert at(label_sets, "10.1.0.5:8080")[M + "endpoint_address_target_name"] == "api-7d9c5b6f4-abcde"
    assert len(label_sets) == 3 + 6  # no side ports without the pods


def test_endpoints_attach_metadata_node(cluster):
    label_sets = sets("endpoints", by_kind(cluster), attach_node=True)
    assert at(label_sets, "10.1.0.5:8080")[M + "node_label_topology_kubernetes_io_zone"] == "eu-west-1a"
    assert at(label_sets, "10.1.1.6:8080")[M + "node_name"] == "node-b"
    # addresses that refer to a Node (the kubelet's Endpoints) get that node's metadata
    kubelet = at(label_sets, "10.0.0.1:10250")
    assert (kubelet[M + "endpoint_address_target_kind"], kubelet[M + "node_name"]) == ("Node", "node-a")
    assert M + "pod_name" not in kubelet
    assert all(M + "node_name" not in lb for lb in sets("endpoints", by_kind(cluster)))


# -- endpointslice --

def test_endpointslice_targets_per_endpoint_address_and_port(cluster):
    label_sets = sets("endpointslice", by_kind(cluster))
    assert [lb["__address__"] for lb in label_sets] == ["10.1.0.5:8080", "10.1.0.5:9090", "10.1.1.6:8080",
                                                       "10.1.1.6:9090"]
    m = at(label_sets, "10.1.0.5:9090")
    expected = {"endpointslice_name": "api-x7k2p", "endpointslice_address_type": "IPv4",
                "endpointslice_port": "9090", "endpointslice_port_name": "metrics", "endpointslice_port_protocol": "TCP",
                "endpointslice_port_app_protocol": "http", "endpointslice_endpoint_conditions_ready": "true",
                "endpointslice_endpoint_conditions_serving": "true",
                "endpointslice_endpoint_conditions_terminating": "false", "endpointslice_endpoint_zone": "eu-west-1a",
                "endpointslice_endpoint_node_name": "node-a", "endpointslice_address_target_kind": "Pod",
                "endpointslice_address_target_name": "api-7d9c5b6f4-abcde",
                "endpointslice_label_kubernetes_io_service_name": "api", "service_name": "api",
                "service_label_team": "checkout", "namespace": "shop", "pod_name": "api-7d9c5b6f4-abcde",
                "pod_container_port_name": "metrics", "pod_container_name": "api"}
    assert {k: m.get(M + k) for k in expected} == expected
    assert M + "endpointslice_port_app_protocol" not in at(label_sets, "10.1.0.5:8080")
    assert at(label_sets, "10.1.1.6:8080")[M + "endpointslice_endpoint_conditions_ready"] == "false"


def test_endpointslice_of_a_dual_stack_service_second_family_is_skipped(cluster):
    objs = by_kind(cluster)
    svc = next(s for s in objs["service"] if s["metadata"]["name"] == "api")
    svc["spec"].update(ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv6", "IPv4"])
    assert sets("endpointslice", objs) == []  # the IPv4 slice is not the primary family
    svc["spec"]["ipFamilies"] = ["IPv4", "IPv6"]
    assert len(sets("endpointslice", objs)) == 4


def test_endpointslice_optional_fields_absent_when_not_set():
    eps = {"metadata": {"name": "s", "namespace": "ns", "labels": {}}, "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.0.0.9"], "conditions": {},
                          "deprecatedTopology": {"kubernetes.io/hostname": "n1"}}],
           "ports": [{}]}  # a port with nothing set: the bare address
    (lb,) = sets("endpointslice", {"endpointslice": [eps]})
    assert lb["__address__"] == "10.0.0.9"
    assert not [k for k in lb if "port" in k or "conditions" in k or "service" in k]
    assert lb[M + "endpointslice_endpoint_topology_kubernetes_io_hostname"] == "n1"
    assert lb[M + "endpointslice_endpoint_topology_present_kubernetes_io_hostname"] == "true"
