"""ServiceMonitor / PodMonitor translation: the Operator's scrape configs case by case, selector
semantics, secrets, refusals, and the whole path (recorded objects -> discovery -> the generated
relabeling) giving the labels kube-prometheus-stack users see."""

from __future__ import annotations

import copy

import pytest
import yaml
from kube_objects import DATA, by_kind, load

from kms.collect.relabel import parse_rules, relabel
from kms.errors import BadInput
from kms.kube.monitors import (
    MonitorOptions,
    monitors_to_scrape_configs,
    pod_monitor_configs,
    service_monitor_configs,
)
from kms.kube.sd import build_groups, parse_sd_config
from kms.kube.selector import check_selector, selector_matches, selector_string

CASES = list(yaml.safe_load_all((DATA / "operator-translation.yaml").read_text()))
STACK = load("monitors-kube-prometheus-stack.yaml")


class Secrets:
    """A SecretSource over a dict: (kind, namespace, name, key) -> value."""

    def __init__(self, values: dict[tuple[str, str, str, str], str]):
        self.values = values

    def get(self, kind, namespace, name, key):
        return self.values.get((kind, namespace, name, key))


def translate(obj: dict, opts: MonitorOptions | None = None) -> list[dict]:
    fn = service_monitor_configs if obj["kind"] == "ServiceMonitor" else pod_monitor_configs
    return fn(copy.deepcopy(obj), opts)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_operator_output(case):
    assert translate(case["monitor"]) == case["expected"]
    for cfg in case["expected"]:  # and the scrape engine's relabel parser takes every rule
        parse_rules(cfg["relabel_configs"], cfg["job_name"])


@pytest.mark.parametrize("namespace_selector,opts,expected", [
    (None, MonitorOptions(), {"names": ["monitoring"]}),  # the monitor's own namespace
    ({"matchNames": ["shop", "pay"]}, MonitorOptions(), {"names": ["shop", "pay"]}),
    ({"any": True}, MonitorOptions(), None),  # all namespaces: no names
    ({"any": True}, MonitorOptions(ignore_namespace_selectors=True), {"names": ["monitoring"]}),
    ({"matchNames": ["shop"]}, MonitorOptions(ignore_namespace_selectors=True), {"names": ["monitoring"]}),
])
def test_namespace_selector(namespace_selector, opts, expected):
    sm = copy.deepcopy(CASES[0]["monitor"])
    sm["metadata"]["namespace"] = "monitoring"
    if namespace_selector is not None:
        sm["spec"]["namespaceSelector"] = namespace_selector
    (cfg,) = translate(sm, opts)
    assert cfg["kubernetes_sd_configs"][0].get("namespaces") == expected


def test_kubeconfig_and_default_role_options():
    opts = MonitorOptions(default_role="endpointslice", kubeconfig_file="/etc/kms/kubeconfig")
    (cfg,) = translate(CASES[0]["monitor"], opts)
    sd = cfg["kubernetes_sd_configs"][0]
    assert sd["role"] == "endpointslice" and sd["kubeconfig_file"] == "/etc/kms/kubeconfig"
    assert {"action": "keep", "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
            "regex": "web"} in cfg["relabel_configs"]
    sm = copy.deepcopy(CASES[0]["monitor"])
    sm["spec"]["serviceDiscoveryRole"] = "Endpoints"  # the monitor's own choice wins
    assert translate(sm, opts)[0]["kubernetes_sd_configs"][0]["role"] == "endpoints"


def test_service_monitor_role_selector_selects_endpoints_and_services():
    sm = copy.deepcopy(CASES[0]["monitor"])
    sm["spec"]["selectorMechanism"] = "RoleSelector"
    (cfg,) = translate(sm)
    assert cfg["kubernetes_sd_configs"][0]["selectors"] == [{"role": "endpoints", "label": "alpha in (beta,gamma)"},
                                                            {"role": "service", "label": "alpha in (beta,gamma)"}]
    assert not [r for r in cfg["relabel_configs"] if "__meta_kubernetes_service_label_alpha" in r.get("source_labels", [])]


def test_jobs_per_endpoint_and_the_kubelet_monitor_of_the_chart():
    kubelet = next(o for o in STACK if o["metadata"]["name"] == "kube-prometheus-stack-kubelet")
    cfgs = translate(kubelet)
    assert [c["job_name"] for c in cfgs] == ["serviceMonitor/monitoring/kube-prometheus-stack-kubelet/0",
                                             "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/1"]
    assert cfgs[1]["metrics_path"] == "/metrics/cadvisor" and cfgs[1]["scheme"] == "https"
    assert cfgs[0]["bearer_token_file"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert cfgs[0]["tls_config"] == {"ca_file": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                                     "insecure_skip_verify": True}
    assert cfgs[0]["honor_labels"] is True and cfgs[0]["honor_timestamps"] is True
    assert cfgs[0]["kubernetes_sd_configs"][0] == {"role": "endpoints", "namespaces": {"names": ["kube-system"]},
                                                  "attach_metadata": {"node": False}}
    assert cfgs[1]["metric_relabel_configs"][0]["action"] == "drop"
    assert {"source_labels": ["__meta_kubernetes_service_label_k8s_app"], "target_label": "job", "regex": "(.+)",
            "replacement": "${1}"} in cfgs[0]["relabel_configs"]


# -- secrets --

def test_secret_references_become_values_and_files(tmp_path):
    sm = copy.deepcopy(CASES[0]["monitor"])
    ep = sm["spec"]["endpoints"][0]
    ep["tlsConfig"] = {"ca": {"configMap": {"name": "ca-bundle", "key": "ca.crt"}},
                       "cert": {"secret": {"name": "client", "key": "tls.crt"}},
                       "keySecret": {"name": "client", "key": "tls.key"}}
    ep["basicAuth"] = {"username": {"name": "creds", "key": "user"}, "password": {"name": "creds", "key": "pass"}}
    secrets = Secrets({("configmap", "default", "ca-bundle", "ca.crt"): "CA PEM",
                       ("secret", "default", "client", "tls.crt"): "CERT PEM",
                       ("secret", "default", "client", "tls.key"): "KEY PEM",
                       ("secret", "default", "creds", "user"): "scraper", ("secret", "default", "creds", "pass"): "s3cret"})
    (cfg,) = translate(sm, MonitorOptions(secrets=secrets, files_dir=str(tmp_path)))
    assert cfg["basic_auth"] == {"username": "scraper", "password": "s3cret"}
    tls = cfg["tls_config"]
    assert [open(tls[k]).read() for k in ("ca_file", "cert_file", "key_file")] == ["CA PEM", "CERT PEM", "KEY PEM"]
    assert all(tls[k].startswith(str(tmp_path)) for k in ("ca_file", "cert_file", "key_file"))

    ep.pop("basicAuth")
    ep["authorization"] = {"type": "Bearer", "credentials": {"name": "creds", "key": "pass"}}
    assert translate(sm, MonitorOptions(secrets=secrets, files_dir=str(tmp_path)))[0]["authorization"] == {
        "type": "Bearer", "credentials": "s3cret"}
    ep.pop("authorization")
    ep["bearerTokenSecret"] = {"name": "creds", "key": "pass"}
    assert translate(sm, MonitorOptions(secrets=secrets, files_dir=str(tmp_path)))[0]["bearer_token"] == "s3cret"


def test_a_monitor_that_fails_is_left_out_with_its_reason():
    good = copy.deepcopy(CASES[0]["monitor"])
    missing = copy.deepcopy(good)
    missing["metadata"]["name"] = "needs-secret"
    missing["spec"]["endpoints"][0]["bearerTokenSecret"] = {"name": "nope", "key": "token"}
    errors: dict[str, str] = {}
    cfgs = monitors_to_scrape_configs([missing, good], [], MonitorOptions(secrets=Secrets({})), errors)
    assert [c["job_name"] for c in cfgs] == ["serviceMonitor/default/test/0"]
    assert "key 'token' of secret default/nope not found" in errors["ServiceMonitor default/needs-secret"]


@pytest.mark.parametrize("change,message", [
    ({"interval": "10s", "scrapeTimeout": "30s"}, "scrapeTimeout: 30s is greater than the interval 10s"),
    ({"interval": "soon"}, "invalid duration"),
    ({"relabelings": [{"action": "Rewrite"}]}, "relabelings[0].action: unknown relabel action 'Rewrite'"),
    ({"relabelings": [{"sourceLabels": ["a"], "regex": "(", "targetLabel": "b"}]}, "relabelings[0].regex"),
    ({"metricRelabelings": [{"action": "replace", "sourceLabels": ["a"]}]}, "targetLabel"),
    ({"oauth2": {"clientId": {"secret": {"name": "o", "key": "id"}}}}, "oauth2: not supported"),
    ({"bearerTokenFile": "/t", "authorization": {"credentialsFile": "/c"}}, "at most one of"),
])
def test_refusals_name_the_monitor_and_field(change, message):
    sm = copy.deepcopy(CASES[0]["monitor"])
    sm["spec"]["endpoints"][0].update(change)
    with pytest.raises(BadInput, match=r"ServiceMonitor default/test: spec\.endpoints\[0\]") as e:
        translate(sm)
    assert message in e.value.message


def test_a_bad_selector_is_refused():
    pm = copy.deepcopy(CASES[1]["monitor"])
    pm["spec"]["selector"]["matchExpressions"][0]["operator"] = "Like"
    with pytest.raises(BadInput, match="PodMonitor default/defaultPodMonitor: spec.selector.matchExpressions"):
        translate(pm)


# -- selector semantics: the Operator's relabel form agrees with the API's label selector --

SELECTORS = [
    {"matchLabels": {"app": "api"}},
    {"matchLabels": {"app": "api", "tier": "web"}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "web"]}]},
    {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]},
    {"matchExpressions": [{"key": "canary", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
    {"matchLabels": {"app.kubernetes.io/name": "api"},
     "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]},
                          {"key": "canary", "operator": "DoesNotExist"}]},
    {"matchLabels": {"empty": ""}},
    {},
]
LABEL_SETS = [{}, {"app": "api"}, {"app": "web"}, {"app": "api", "tier": "web"}, {"app": "api", "canary": ""},
              {"app.kubernetes.io/name": "api", "tier": "batch"}, {"app.kubernetes.io/name": "api", "tier": "web"},
              {"app": "apis"}, {"empty": ""}, {"canary": "true", "app": "db"}]


@pytest.mark.parametrize("sel", SELECTORS, ids=[selector_string(s) or "everything" for s in SELECTORS])
def test_selector_relabeling_agrees_with_label_selector_semantics(sel):
    check_selector(sel, "sel")
    sm = {"kind": "ServiceMonitor", "metadata": {"name": "m", "namespace": "ns"},
          "spec": {"selector": sel, "endpoints": [{"port": "web"}]}}
    selecting = [r for r in translate(sm)[0]["relabel_configs"]
                 if r.get("action") in ("keep", "drop") and "_service_label" in str(r["source_labels"])]
    assert len(selecting) == len(sel.get("matchLabels") or {}) + len(sel.get("matchExpressions") or [])
    rules = parse_rules(selecting, "test")
    for labels in LABEL_SETS:
        svc = {"metadata": {"name": "s", "namespace": "ns", "labels": labels}, "spec": {"ports": [{"port": 80}]}}
        (discovered,) = build_groups("service", {"service": [svc]})[0].label_sets()
        kept = relabel(discovered, rules) is not None
        assert kept == selector_matches(sel, labels), (labels, kept)


@pytest.mark.parametrize("sel,text", [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["y", "x"]},
                           {"key": "c", "operator": "DoesNotExist"}, {"key": "e", "operator": "Exists"}]},
     "!c,e,t notin (x,y)"),
    ({}, ""),
])
def test_selector_string(sel, text):
    assert selector_string(sel) == text


# -- the whole path on the recorded cluster --

def scrape_targets(cfg: dict, cluster: list[dict]) -> dict[str, dict[str, str]]:
    """address -> final target labels (the non-``__`` ones), as the scrape engine would derive them."""
    sd = cfg["kubernetes_sd_configs"][0]
    names = (sd.get("namespaces") or {}).get("names")
    objs = {k: [o for o in v if not names or o["metadata"].get("namespace", "") in names or k == "node"]
            for k, v in by_kind(cluster).items()}
    rules = parse_rules(cfg["relabel_configs"], cfg["job_name"])
    out = {}
    for g in build_groups(sd["role"], objs):
        for lb in g.label_sets():
            # the defaults the scrape engine gives every discovered set before relabeling
            lb = relabel({"job": cfg["job_name"], "__metrics_path__": cfg.get("metrics_path", "/metrics"),
                          "__scheme__": cfg.get("scheme", "http"), **lb}, rules)
            if lb is not None:
                out[lb["__address__"]] = {k: v for k, v in lb.items() if not k.startswith("__") and v}
    return out


@pytest.mark.parametrize("role", ["endpoints", "endpointslice"])
def test_service_monitor_targets_and_labels_on_the_recorded_cluster(cluster, role, tmp_path):
    sm = next(o for o in STACK if o["metadata"]["name"] == "shop-api")
    secrets = Secrets({("secret", "monitoring", "shop-api-token", "token"): "t0k3n",
                       ("secret", "monitoring", "shop-api-tls", "ca.crt"): "CA"})
    http, side = translate(sm, MonitorOptions(default_role=role, secrets=secrets, files_dir=str(tmp_path)))
    common = {"namespace": "shop", "service": "api", "container": "api", "job": "api", "team": "checkout",
              "app_kubernetes_io_part_of": "shop"}
    assert scrape_targets(http, cluster) == {
        "10.1.0.5:8080": {**common, "pod": "api-7d9c5b6f4-abcde", "endpoint": "http", "node_name": "node-a"},
        "10.1.1.6:8080": {**common, "pod": "api-7d9c5b6f4-fghij", "endpoint": "http", "node_name": "node-b"},
    }
    # targetPort 9090: the pods' metrics port (a side port for the Endpoints, a listed port in the slice)
    assert scrape_targets(side, cluster) == {
        "10.1.0.5:9090": {**common, "pod": "api-7d9c5b6f4-abcde", "endpoint": "9090"},
        "10.1.1.6:9090": {**common, "pod": "api-7d9c5b6f4-fghij", "endpoint": "9090"},
    }
    assert side["bearer_token"] == "t0k3n" and open(side["tls_config"]["ca_file"]).read() == "CA"


def test_service_monitor_selector_and_namespace_leave_other_services_out(cluster):
    sm = copy.deepcopy(next(o for o in STACK if o["metadata"]["name"] == "shop-api"))
    sm["spec"]["endpoints"] = sm["spec"]["endpoints"][:1]
    extra = copy.deepcopy(cluster)
    for o in extra:  # a canary copy of the service: DoesNotExist(canary) drops it
        if o["kind"] in ("Service", "Endpoints") and o["metadata"]["name"] == "api":
            o["metadata"]["labels"]["canary"] = "true"
    (cfg,) = translate(sm)
    assert scrape_targets(cfg, extra) == {}
    sm["spec"]["namespaceSelector"] = {"matchNames": ["elsewhere"]}
    assert scrape_targets(translate(sm)[0], cluster) == {}


def test_pod_monitor_targets_and_labels_on_the_recorded_cluster(cluster):
    pm = next(o for o in STACK if o["kind"] == "PodMonitor")
    (cfg,) = translate(pm)
    # the finished Job's pod is dropped by phase; the pending one has no IP; container dropped by the user's rule
    assert scrape_targets(cfg, cluster) == {
        "10.1.0.5:9090": {"namespace": "shop", "pod": "api-7d9c5b6f4-abcde", "job": "shop/shop-workers",
                          "endpoint": "metrics", "team": "checkout"},
        "10.1.1.6:9090": {"namespace": "shop", "pod": "api-7d9c5b6f4-fghij", "job": "shop/shop-workers",
                          "endpoint": "metrics"},
    }
    cfg_all = translate({**pm, "spec": {**pm["spec"], "podMetricsEndpoints": [{"port": "metrics",
                                                                               "filterRunning": False}]}})[0]
    assert "10.1.0.9:9102" in scrape_targets(cfg_all, cluster)


def test_kubelet_service_monitor_of_the_chart_on_the_recorded_cluster(cluster):
    kubelet = next(o for o in STACK if o["metadata"]["name"] == "kube-prometheus-stack-kubelet")
    metrics, cadvisor = translate(kubelet)
    common = {"namespace": "kube-system", "service": "kube-prometheus-stack-kubelet", "job": "kubelet",
              "endpoint": "https-metrics"}
    assert scrape_targets(metrics, cluster) == {
        "10.0.0.1:10250": {**common, "node": "node-a", "metrics_path": "/metrics"},
        "10.0.0.2:10250": {**common, "node": "node-b", "metrics_path": "/metrics"},
    }
    assert {a: lb["node"] for a, lb in scrape_targets(cadvisor, cluster).items()} == {
        "10.0.0.1:10250": "node-a", "10.0.0.2:10250": "node-b"}


def test_every_generated_config_loads_in_the_scrape_engine(tmp_path):
    from kms.collect.config import load_jobs

    ca = tmp_path / "ca.crt"
    ca.write_text("CA")
    monitors = STACK + [c["monitor"] for c in CASES]
    errors: dict[str, str] = {}
    cfgs = monitors_to_scrape_configs([m for m in monitors if m["kind"] == "ServiceMonitor"],
                                      [m for m in monitors if m["kind"] == "PodMonitor"],
                                      MonitorOptions(secrets=Secrets({}), files_dir=str(tmp_path)), errors)
    assert list(errors) == ["ServiceMonitor monitoring/shop-api"]  # its secrets are missing here
    assert len(cfgs) == 6
    for cfg in cfgs:
        for sd in cfg.pop("kubernetes_sd_configs"):  # the Kubernetes half, checked by the SD parser
            assert parse_sd_config(sd).role in ("endpoints", "endpointslice", "pod")
        if cfg.get("tls_config", {}).get("ca_file"):
            cfg["tls_config"]["ca_file"] = str(ca)  # the pod's service account CA is not on this machine
        (job,) = load_jobs(None, [cfg])
        assert job.job_name == cfg["job_name"]
