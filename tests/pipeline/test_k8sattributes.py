"""k8sattributes: telemetry of a pod gets its metadata from the Kubernetes API (an API server
double: no cluster runs here), found by the resource's pod ip, uid, or name and namespace."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pipeline_helpers import kv, wait_for

from kms.agent.tail import LogLine
from kms.errors import BadInput
from kms.kube import KubeClient, load_credentials
from kms.pipeline.items import Item
from kms.pipeline.k8sattributes import K8sAttributesProcessor, pod_metadata
from kms.testing.kube_api import FakeKubeApi

PODS = "/api/v1/pods"


def pod(name: str, ip: str, node: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": "shop", "uid": f"uid-{name}",
        "labels": {"app.kubernetes.io/name": "web", "pod-template-hash": "5d4f8b7c9"},
        "annotations": {"team": "payments"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d4f8b7c9", "controller": True}], **extra},
        "spec": {"nodeName": node}, "status": {"podIP": ip, "startTime": "2026-11-22T07:00:00Z", "phase": "Running"}}


@pytest.fixture
def api():
    server = FakeKubeApi().start()
    server.put(PODS, pod("web-1", "10.0.0.5", "node-a"))
    server.put(PODS, pod("web-2", "10.0.0.6", "node-b"))
    yield server
    server.stop()


def processor(api, tmp_path, settings: dict) -> K8sAttributesProcessor:
    creds = load_credentials(str(api.kubeconfig(tmp_path / "kubeconfig")))
    p = K8sAttributesProcessor("k8sattributes", settings, client_factory=lambda: KubeClient(creds))
    assert p.informer.synced.wait(10)
    return p


def traces(*attrs) -> bytes:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv(k, v) for k, v in attrs]), scope_spans=[ScopeSpans(spans=[Span(name="s")])])]
    ).SerializeToString()


def resource_of(payload: bytes) -> dict:
    req = ExportTraceServiceRequest.FromString(payload)
    return {a.key: a.value.string_value for a in req.resource_spans[0].resource.attributes}


def test_pod_metadata_derives_the_deployment_from_its_replicaset():
    m = pod_metadata(pod("web-1", "10.0.0.5", "node-a"))
    assert m["k8s.deployment.name"] == "web" and m["k8s.replicaset.name"] == "web-5d4f8b7c9"
    assert m["k8s.node.name"] == "node-a" and m["k8s.pod.start_time"] == "2026-11-22T07:00:00Z"


def test_association_by_ip_uid_and_name_adds_metadata_labels_and_annotations(api, tmp_path):
    p = processor(api, tmp_path, {"extract": {"metadata": ["k8s.namespace.name", "k8s.pod.name", "k8s.deployment.name",
                                                            "k8s.node.name"],
                                              "labels": [{"tag_name": "app", "key": "app.kubernetes.io/name"}],
                                              "annotations": [{"key": "team", "from": "pod"}]}})
    try:
        by_ip = resource_of(p(Item("traces", "t", otlp=traces(("k8s.pod.ip", "10.0.0.5")))).otlp)
        assert by_ip == {"k8s.pod.ip": "10.0.0.5", "k8s.namespace.name": "shop", "k8s.pod.name": "web-1",
                         "k8s.deployment.name": "web", "k8s.node.name": "node-a", "app": "web",
                         "k8s.pod.annotations.team": "payments"}
        by_uid = resource_of(p(Item("traces", "t", otlp=traces(("k8s.pod.uid", "uid-web-2")))).otlp)
        assert by_uid["k8s.pod.name"] == "web-2" and by_uid["k8s.node.name"] == "node-b"
        own = resource_of(p(Item("traces", "t", otlp=traces(("k8s.pod.name", "web-1"), ("k8s.namespace.name", "shop"),
                                                            ("k8s.node.name", "mine")))).otlp)
        assert own["k8s.node.name"] == "mine" and own["k8s.deployment.name"] == "web"  # its own value wins
        assert resource_of(p(Item("traces", "t", otlp=traces(("k8s.pod.ip", "10.9.9.9")))).otlp) == {
            "k8s.pod.ip": "10.9.9.9"}  # no such pod: unchanged
        lines = p(Item("logs", "t", lines=[LogLine(1, "/var/log/pods/x.log", "hi", 0, (("k8s.pod.uid", "uid-web-1"),))])).lines
        assert dict(lines[0].attributes)["k8s.deployment.name"] == "web"
        api.put(PODS, pod("web-3", "10.0.0.7", "node-a"))  # followed live
        wait_for(lambda: p.lookup({"k8s.pod.ip": "10.0.0.7"}), 10)
    finally:
        p.stop()


def test_association_by_connection(api, tmp_path):
    p = processor(api, tmp_path, {"pod_association": [{"sources": [{"from": "connection"}]}]})
    try:
        hit = resource_of(p(Item("traces", "t", otlp=traces(), peer="10.0.0.6")).otlp)
        assert hit["k8s.pod.name"] == "web-2" and hit["k8s.deployment.name"] == "web"
        # only the connection counts here: a resource attribute naming another pod is not used
        other = resource_of(p(Item("traces", "t", otlp=traces(("k8s.pod.ip", "10.0.0.5")), peer="10.0.0.6")).otlp)
        assert other["k8s.pod.name"] == "web-2"
        assert resource_of(p(Item("traces", "t", otlp=traces())).otlp) == {}  # no address known
    finally:
        p.stop()
    q = processor(api, tmp_path, {})  # the default association ends with the connection
    try:
        assert resource_of(q(Item("traces", "t", otlp=traces(), peer="10.0.0.5")).otlp)["k8s.pod.name"] == "web-1"
        by_attr = resource_of(q(Item("traces", "t", otlp=traces(("k8s.pod.uid", "uid-web-2")), peer="10.0.0.5")).otlp)
        assert by_attr["k8s.pod.name"] == "web-2"  # the resource's own attributes come first
    finally:
        q.stop()


def test_node_filter_and_bad_settings(api, tmp_path, monkeypatch):
    monkeypatch.setenv("KMS_NODE", "node-a")
    p = processor(api, tmp_path, {"filter": {"node_from_env_var": "KMS_NODE"}})
    try:
        assert any("fieldSelector=spec.nodeName%3Dnode-a" in r or "fieldSelector=spec.nodeName=node-a" in r
                   for r in api.requests)
    finally:
        p.stop()
    with pytest.raises(BadInput, match="extract.metadata"):
        K8sAttributesProcessor("k8sattributes", {"extract": {"metadata": ["k8s.pod.color"]}},
                               client_factory=lambda: None)
