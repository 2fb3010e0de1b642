"""`kms render`: every profile renders, deterministically, with the wiring issue 7 asks for."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
import yaml
from deploy_stacks import PROFILES, SETS, stack_for

from kms.cli import main
from kms.deploy import RenderRefused, render
from kms.deploy.charts import CHARTS
from kms.deploy.render import CHART_SOURCE


def _values(d: Path, alias: str) -> dict:
    return yaml.safe_load((d / "values" / f"{alias}.yaml").read_text())


def _tree(d: Path) -> dict[str, bytes]:
    return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("profile", PROFILES)
def test_render_is_deterministic(profile: str, rendered: dict[str, Path], tmp_path: Path) -> None:
    render(stack_for(profile), tmp_path)
    assert _tree(tmp_path) == _tree(rendered[profile])


def test_render_refuses_a_broken_stack(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RenderRefused) as e:
        render(stack_for("single-cluster", "loki.write_replicas=1"), out)
    assert "loki-write-replicas" in e.value.message and not out.exists()
    assert main(["render", "--profile", "single-cluster", "--set", "loki.write_replicas=1", "-o", str(out)]) == 2


def test_single_cluster_wiring(rendered: dict[str, Path]) -> None:
    d = rendered["single-cluster"]
    ns, tenant = "monitoring", {"X-Scope-OrgID": "anonymous"}
    mimir = f"http://kms-mimir-gateway.{ns}.svc:80"
    store = f"kms-seaweedfs-all-in-one.{ns}.svc:8333"

    kps = _values(d, "prometheus")["prometheus"]["prometheusSpec"]
    assert kps["remoteWrite"] == [{"url": f"{mimir}/api/v1/push", "sendExemplars": True, "headers": tenant}]
    assert "exemplar-storage" in kps["enableFeatures"] and kps["externalLabels"] == {"cluster": "local"}

    m = _values(d, "mimir")
    assert m["kafka"] == {"enabled": False} and m["mimir"]["structuredConfig"]["ingest_storage"] == {"enabled": False}
    assert m["mimir"]["structuredConfig"]["limits"]["max_global_exemplars_per_user"] > 0
    assert m["mimir"]["structuredConfig"]["common"]["storage"]["s3"]["endpoint"] == store

    loki = _values(d, "loki")
    assert loki["deploymentMode"] == "SimpleScalable" and loki["write"]["replicas"] == 3
    assert loki["loki"]["schemaConfig"]["configs"][0]["schema"] == "v13"
    assert set(loki["loki"]["storage"]["bucketNames"]) == {"chunks", "ruler", "admin"}

    tempo = _values(d, "tempo")["tempo"]
    assert tempo["overrides"]["defaults"]["metrics_generator"]["processors"] == ["service-graphs", "span-metrics", "local-blocks"]
    assert tempo["metricsGenerator"]["storage"]["remote_write"][0]["send_exemplars"] is True
    assert "remoteWriteUrl" not in tempo["metricsGenerator"]
    assert tempo["storage"]["trace"]["s3"]["endpoint"] == store  # no scheme

    col = _values(d, "collector")
    assert col["mode"] == "deployment" and col["presets"]["kubernetesEvents"]["enabled"] is True
    ex = col["alternateConfig"]["exporters"]
    assert ex["otlp_http/mimir"]["endpoint"] == f"{mimir}/otlp"
    assert ex["otlp_http/loki"]["endpoint"] == f"http://kms-loki-gateway.{ns}.svc:80/otlp"
    assert ex["otlp_grpc/tempo"] == {"endpoint": f"kms-tempo.{ns}.svc:4317", "tls": {"insecure": True}, "headers": tenant}
    assert col["alternateConfig"]["service"]["pipelines"]["metrics"]["processors"][0] == "memory_limiter"

    op = _values(d, "operator")["admissionWebhooks"]
    assert op["certManager"] == {"enabled": False} and op["autoGenerateCert"]["enabled"] is True

    g = _values(d, "grafana")
    urls = {s["type"]: s["url"] for s in g["datasources"]["datasources.yaml"]["datasources"]}
    assert urls == {"prometheus": f"{mimir}/prometheus", "loki": f"http://kms-loki-gateway.{ns}.svc:80",
                    "tempo": f"http://kms-tempo.{ns}.svc:3200"}  # fmt: skip
    assert "dashboards" not in g  # nothing downloaded at start: only ConfigMaps
    for folder, cm in g["dashboardsConfigMaps"].items():
        assert (d / "manifests" / f"configmap-{cm}.yaml").is_file()
        assert sorted(p.name for p in (d / "chart" / "dashboards" / folder).iterdir())
    assert (d / "manifests" / "instrumentation-kms.yaml").is_file()
    assert (d / "manifests" / "endpointslice-kms-node-db1-1.yaml").is_file()


def test_chart_yaml_pins(rendered: dict[str, Path]) -> None:
    committed = yaml.safe_load((CHART_SOURCE / "Chart.yaml").read_text())
    assert [(x["alias"], x["name"], x["version"], x["repository"]) for x in committed["dependencies"]] == [
        (p.alias, p.chart, p.version, p.repository) for p in CHARTS.values()]
    chart = yaml.safe_load((rendered["single-cluster"] / "chart" / "Chart.yaml").read_text())
    for dep in chart["dependencies"]:
        pin = CHARTS[dep["alias"].split("-")[0] + "-exporter" if dep["alias"].startswith(("postgres-", "redis-")) else dep["alias"]]
        assert (dep["name"], dep["version"], dep["repository"]) == (pin.chart, pin.version, pin.repository)
    assert [t.name for t in sorted((rendered["small"] / "chart" / "templates").iterdir())] == sorted(
        t.name for t in (CHART_SOURCE / "templates").iterdir())
    assert filecmp.cmp(CHART_SOURCE / "templates" / "kms-agent.yaml", rendered["small"] / "chart/templates/kms-agent.yaml")


def test_small_profile(rendered: dict[str, Path]) -> None:
    d = rendered["small"]
    deps = {x["alias"] for x in yaml.safe_load((d / "chart" / "Chart.yaml").read_text())["dependencies"]}
    # The PrometheusRule CRD (no operator): kms evaluates the default rules from those objects.
    assert deps == {"kube-state-metrics", "grafana", "postgres-orders", "prometheus-crds"}
    sts = yaml.safe_load((d / "manifests" / "statefulset-kms.yaml").read_text())
    assert sts["spec"]["template"]["spec"]["containers"][0]["args"][:1] == ["up"]
    assert sts["spec"]["template"]["spec"]["serviceAccountName"] == "kms"
    role = yaml.safe_load((d / "manifests" / "clusterrole-kms.yaml").read_text())
    assert role["rules"] == [{"apiGroups": ["monitoring.coreos.com"], "resources": ["prometheusrules"],
                              "verbs": ["get", "list", "watch"]}]  # fmt: skip
    server_cm = yaml.safe_load((d / "manifests" / "configmap-kms.yaml").read_text())
    assert yaml.safe_load(server_cm["data"]["kms.yaml"])["rules"] == {"kubernetes": True}
    agent_cm = yaml.safe_load((d / "manifests" / "configmap-kms-agent.yaml").read_text())
    agent = yaml.safe_load(agent_cm["data"]["agent.yaml"])
    jobs = {j["job_name"] for j in agent["receivers"]["prometheus"]["config"]["scrape_configs"]}
    assert {"kubelet", "cadvisor", "kube-state-metrics", "node-db1", "postgres-exporter", "kms"} <= jobs
    assert set(agent["service"]["pipelines"]) == {"metrics", "logs"}
    ds = yaml.safe_load((d / "manifests" / "daemonset-kms-agent.yaml").read_text())
    assert "cluster=local" in ds["spec"]["template"]["spec"]["containers"][0]["args"]
    g = _values(d, "grafana")
    assert {s["url"] for s in g["datasources"]["datasources.yaml"]["datasources"]} == {
        "http://kms.monitoring.svc:3200/prometheus", "http://kms.monitoring.svc:3200"}
    assert _values(d, "postgres-orders")["serviceMonitor"]["enabled"] is False  # no operator CRDs in small


def test_multi_cluster(rendered: dict[str, Path]) -> None:
    d = rendered["multi-cluster"]
    assert (d / "central" / "values" / "mimir.yaml").is_file() and (d / "central" / "values" / "grafana.yaml").is_file()
    for cluster in ("prod-eu", "prod-us"):
        part = d / "clusters" / cluster
        assert not (part / "values" / "grafana.yaml").exists()  # Grafana only centrally
        kps = _values(part, "prometheus")["prometheus"]
        assert kps["agentMode"] is True
        assert kps["prometheusSpec"]["externalLabels"] == {"cluster": cluster}
        assert kps["prometheusSpec"]["remoteWrite"][0]["url"] == "https://mimir.example.com/api/v1/push"
        # Logs and traces: a collector per node, straight to the central Loki and Tempo, stamped and with the tenant.
        col = _values(part, "collector")
        assert col["mode"] == "daemonset" and col["presets"]["logsCollection"]["enabled"] is True
        cfg = col["alternateConfig"]
        assert cfg["exporters"] == {
            "otlp_http/loki": {"endpoint": "https://loki.example.com/otlp", "headers": {"X-Scope-OrgID": "anonymous"}},
            "otlp_http/tempo": {"endpoint": "https://tempo-otlp.example.com", "headers": {"X-Scope-OrgID": "anonymous"}}}
        assert {a["key"]: a["value"] for a in cfg["processors"]["resource/cluster"]["attributes"]} == {
            "k8s.cluster.name": cluster, "cluster": cluster}
        for pipeline in ("logs", "traces"):
            assert "resource/cluster" in cfg["service"]["pipelines"][pipeline]["processors"]


def test_multi_cluster_with_kms_agents(tmp_path: Path) -> None:
    render(stack_for("multi-cluster", "multi_cluster.agent=kms", "exporters.node[0].name=db1",
                     "exporters.node[0].addresses={10.0.0.5}"), tmp_path)  # fmt: skip
    cm = yaml.safe_load((tmp_path / "clusters/prod-eu/manifests/configmap-kms-agent.yaml").read_text())
    agent = yaml.safe_load(cm["data"]["agent.yaml"])
    assert agent["exporters"]["otlp_http/remote"]["endpoint"] == "https://mimir.example.com/otlp"
    assert set(agent["service"]["pipelines"]) == {"metrics"}  # pod logs: the collector DaemonSet tails them
    assert _values(tmp_path / "clusters/prod-eu", "collector")["mode"] == "daemonset"
    assert not (tmp_path / "clusters/prod-eu/manifests/statefulset-kms.yaml").exists()
    # No Prometheus operator in an agent-only cluster: external node exporters are static targets.
    assert {j["job_name"] for j in agent["receivers"]["prometheus"]["config"]["scrape_configs"]} >= {"node-db1"}
    assert not list((tmp_path / "clusters/prod-eu/manifests").glob("servicemonitor-*"))
    assert (tmp_path / "central/manifests/servicemonitor-kms-node-db1.yaml").is_file()


@pytest.mark.parametrize("bad, message", [
    ([], "multi_cluster.clusters"),
    (["multi_cluster.clusters={a}"], "central_url"),
    (["multi_cluster.clusters={a}", "multi_cluster.central_url=https://m"], "central_loki_url"),
    (["multi_cluster.clusters={a}", "multi_cluster.central_url=https://m", "multi_cluster.central_loki_url=https://l"],
     "central_tempo_url"),
    (["multi_cluster.clusters={local}", "multi_cluster.central_url=https://m", "multi_cluster.central_loki_url=https://l",
      "multi_cluster.central_tempo_url=https://t"], "also listed"),
])  # fmt: skip
def test_multi_cluster_needs(bad: list[str], message: str, tmp_path: Path) -> None:
    from kms.deploy import StackFileError, load_stack

    with pytest.raises(StackFileError, match=message):
        render(load_stack(None, ["profile=multi-cluster", *bad]), tmp_path)


def test_airgapped_render_pulls_everything_from_the_registry(tmp_path: Path) -> None:
    reg = "registry.example.com/mirror"
    for profile in PROFILES:
        out = tmp_path / profile
        render(stack_for(profile, f"registry={reg}"), out)
        for images in out.rglob("images.txt"):
            lines = images.read_text().split()
            assert lines and all(i.startswith(reg + "/") for i in lines), images
        for f in out.rglob("manifests/*.yaml"):
            for obj in yaml.safe_load_all(f.read_text()):
                for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                    assert c["image"].startswith(reg + "/")
    m = yaml.safe_load((tmp_path / "single-cluster/values/mimir.yaml").read_text())
    assert m["image"]["repository"] == f"{reg}/grafana/mimir"  # no global key in mimir-distributed
    assert yaml.safe_load((tmp_path / "single-cluster/values/loki.yaml").read_text())["global"] == {"imageRegistry": reg}


def test_set_applies_to_render(tmp_path: Path) -> None:
    assert SETS  # the conftest stacks are what golden files show
    assert main(["render", "--profile", "single-cluster", "--set", "loki.write_replicas=5", "--set", "tenant=team-a",
                 "-o", str(tmp_path)]) == 0  # fmt: skip
    loki = yaml.safe_load((tmp_path / "values/loki.yaml").read_text())
    assert loki["write"]["replicas"] == 5
    g = yaml.safe_load((tmp_path / "values/grafana.yaml").read_text())
    assert {d["secureJsonData"]["httpHeaderValue1"] for d in g["datasources"]["datasources.yaml"]["datasources"]} == {"team-a"}


@pytest.mark.parametrize("store, release", [("external", None), ("minio", "minio"), ("seaweedfs", "seaweedfs")])
def test_object_store_choices(store: str, release: str | None, tmp_path: Path) -> None:
    endpoint = "s3.eu-west-1.amazonaws.com:443"
    render(stack_for("single-cluster", f"storage.type={store}", f"storage.endpoint={endpoint if store == 'external' else ''}",
                     "storage.insecure=false" if store == "external" else "storage.insecure=true"), tmp_path)  # fmt: skip
    deps = {d["alias"] for d in yaml.safe_load((tmp_path / "chart/Chart.yaml").read_text())["dependencies"]}
    assert ({"minio", "seaweedfs"} & deps) == ({release} if release else set())
    tempo = _values(tmp_path, "tempo")["tempo"]["storage"]["trace"]["s3"]["endpoint"]
    mimir = _values(tmp_path, "mimir")["mimir"]["structuredConfig"]["common"]["storage"]["s3"]["endpoint"]
    loki = _values(tmp_path, "loki")["loki"]["storage"]["s3"]["endpoint"]
    assert tempo == mimir == loki and "://" not in tempo
    if store == "external":
        assert tempo == endpoint
    else:  # the in-cluster store creates every bucket the engines use
        created = _values(tmp_path, release)
        names = ({b["name"] for b in created["allInOne"]["s3"]["createBuckets"]} if store == "seaweedfs"
                 else {b["name"] for b in created["buckets"]})  # fmt: skip
        assert names == {"mimir-blocks", "mimir-ruler", "loki-chunks", "loki-ruler", "loki-admin", "tempo-traces"}


def test_cert_manager_switch(tmp_path: Path) -> None:
    render(stack_for("single-cluster", "cert_manager=true"), tmp_path)
    aw = _values(tmp_path, "operator")["admissionWebhooks"]
    assert aw == {"certManager": {"enabled": True}, "autoGenerateCert": {"enabled": False}}
