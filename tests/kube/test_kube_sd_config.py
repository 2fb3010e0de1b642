"""``kubernetes_sd_configs`` entries: what Prometheus refuses at load, and the credentials each
form names (kubeconfig file, api_server with its own client settings, in-cluster)."""

from __future__ import annotations

import pytest

from kms.errors import BadInput
from kms.kube import KubeClient
from kms.kube.sd_config import parse_sd_config


@pytest.mark.parametrize("doc,message", [
    ({}, "role missing"),
    ({"role": "ingress"}, "ingress role is not supported"),
    ({"role": "pods"}, "unknown Kubernetes SD role 'pods'"),
    ({"role": "pod", "api_server": "https://k:6443", "kubeconfig_file": "/k"}, "simultaneously"),
    ({"role": "pod", "kubeconfig_file": "/k", "bearer_token": "t"}, "together with 'kubeconfig_file'"),
    ({"role": "pod", "tls_config": {"ca_file": "/ca"}}, "provide the 'api_server' URL"),
    ({"role": "pod", "api_server": "https://k", "namespaces": {"own_namespace": True}}, "own_namespace"),
    ({"role": "pod", "kubeconfig_file": "/k", "namespaces": {"own_namespace": True}}, "own_namespace"),
    ({"role": "pod", "selectors": [{"role": "pod"}, {"role": "pod"}]}, "duplicated selector role: pod"),
    ({"role": "service", "selectors": [{"role": "pod", "label": "a=b"}]}, "service role supports only service"),
    ({"role": "node", "selectors": [{"role": "endpoints"}]}, "node role supports only node"),
    ({"role": "pod", "selectors": [{"role": "pod", "label": "a in (b"}]}, "invalid selector"),
    ({"role": "pod", "namespaces": {"names": "shop"}}, "expected a list"),
    ({"role": "pod", "namespaces": {"name": ["shop"]}}, "unknown key 'name'"),
    ({"role": "pod", "attach_metadata": {"namespace": True}}, "attach_metadata.namespace"),
    ({"role": "pod", "api_server": "https://k", "oauth2": {"client_id": "x"}}, "oauth2"),
    ({"role": "pod", "api_server": "k8s.local:6443"}, "not an http(s) URL"),
    ({"role": "pod", "refresh_interval": "1m"}, "unknown key 'refresh_interval'"),
])
def test_invalid_entries_are_refused_with_the_key(doc, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sd_config(doc, "scrape_configs job 'k'.kubernetes_sd_configs[0]")


def test_a_full_entry():
    sd = parse_sd_config({
        "role": "endpoints", "namespaces": {"names": ["shop", "pay"]},
        "selectors": [{"role": "pod", "label": "app in (api,web),!canary", "field": "status.phase=Running"},
                      {"role": "service", "label": "team=checkout"}],
        "attach_metadata": {"node": True}, "kubeconfig_file": "/etc/kube/config"})
    assert sd.role == "endpoints" and sd.namespaces == ("shop", "pay") and sd.attach_node
    assert sd.selectors == {"pod": ("app in (api,web),!canary", "status.phase=Running"), "service": ("team=checkout", "")}
    assert sd.watched_namespaces("ignored") == ["shop", "pay"]
    # attach_metadata.node means nothing for roles without pods
    assert not parse_sd_config({"role": "service", "attach_metadata": {"node": True}}).attach_node


@pytest.mark.parametrize("ns,own,expected", [
    ((), False, [""]), (("a",), False, ["a"]), ((), True, ["mine"]), (("a",), True, ["a", "mine"]),
])
def test_watched_namespaces(ns, own, expected):
    doc = {"role": "pod", "namespaces": {"names": list(ns), "own_namespace": own}}
    assert parse_sd_config(doc).watched_namespaces("mine") == expected


def test_kubeconfig_file_credentials_reach_the_api(api, kubeconfig):
    creds = parse_sd_config({"role": "pod", "kubeconfig_file": kubeconfig}).credentials()
    assert creds.server == api.url and creds.namespace == "shop"
    assert KubeClient(creds).list("/api/v1/pods")["items"] == []


def test_api_server_with_token_file_and_ca_file(api, tmp_path):
    (tmp_path / "ca.crt").write_bytes(api.cert)
    (tmp_path / "token").write_text(api.token + "\n")
    sd = parse_sd_config({"role": "node", "api_server": api.url, "bearer_token_file": str(tmp_path / "token"),
                          "tls_config": {"ca_file": str(tmp_path / "ca.crt")}})
    assert KubeClient(sd.credentials()).list("/api/v1/nodes")["kind"] == "nodesList"
    sd = parse_sd_config({"role": "node", "api_server": api.url, "authorization": {"credentials": "wrong"},
                          "tls_config": {"ca_file": str(tmp_path / "ca.crt")}})
    with pytest.raises(Exception, match="401"):
        KubeClient(sd.credentials()).list("/api/v1/nodes")
    # without the CA the server's certificate is not trusted, unless verification is off
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        KubeClient(parse_sd_config({"role": "node", "api_server": api.url, "bearer_token": api.token})
                   .credentials()).list("/api/v1/nodes")
    insecure = parse_sd_config({"role": "node", "api_server": api.url, "bearer_token": api.token,
                                "tls_config": {"insecure_skip_verify": True}})
    assert KubeClient(insecure.credentials()).list("/api/v1/nodes")["items"] == []


def test_in_cluster_credentials_from_the_service_account(api, tmp_path):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(api.token)
    (sa / "ca.crt").write_bytes(api.cert)
    (sa / "namespace").write_text("monitoring")
    host, port = api.url.removeprefix("https://").split(":")
    creds = parse_sd_config({"role": "pod", "namespaces": {"own_namespace": True}}).credentials(
        environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}, sa_dir=sa)
    assert creds.server == api.url and creds.namespace == "monitoring"
    assert KubeClient(creds).list("/api/v1/namespaces/monitoring/pods")["items"] == []
