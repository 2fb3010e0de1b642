"""multi_cluster.central thanos: workload Prometheus with a sidecar uploading to the external
store, the central query / store gateway / compactor as own objects, the ruler from
kube-prometheus-stack, Grafana on the query; no Mimir anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from deploy_stacks import SETS, stack_for

from kms.cli import main
from kms.deploy import StackFileError, build, render
from kms.deploy.crds import custom_kinds, validate_custom
from kms.deploy.lint import lint_paths
from kms.deploy.thanos import THANOS_IMAGE

THANOS = ["multi_cluster.central=thanos", "storage.type=external", "storage.endpoint=s3.eu-west-1.amazonaws.com:443",
          "storage.insecure=false", "multi_cluster.thanos_sidecar_address=thanos-{cluster}.example.com:10901"]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("thanos")
    render(stack_for("multi-cluster", *THANOS), d)
    return d


def _values(d: Path, alias: str) -> dict:
    return yaml.safe_load((d / "values" / f"{alias}.yaml").read_text())


def _objects(d: Path) -> dict[str, dict]:
    return {f.stem: yaml.safe_load(f.read_text()) for f in (d / "manifests").glob("*.yaml")}


def test_central_side(out: Path) -> None:
    c = out / "central"
    assert not (c / "values" / "mimir.yaml").exists()
    objs = _objects(c)
    query = objs["deployment-kms-thanos-query"]["spec"]["template"]["spec"]["containers"][0]
    assert query["image"] == THANOS_IMAGE and query["args"][0] == "query"
    endpoints = [a.split("=", 1)[1] for a in query["args"] if a.startswith("--endpoint=")]
    assert endpoints == ["kms-thanos-store.monitoring.svc:10901", "dnssrv+_grpc._tcp.thanos-ruler-operated.monitoring.svc",
                         "kms-prometheus-thanos-discovery.monitoring.svc:10901",
                         "thanos-prod-eu.example.com:10901", "thanos-prod-us.example.com:10901"]  # fmt: skip
    for component in ("store", "compact"):
        sts = objs[f"statefulset-kms-thanos-{component}"]["spec"]
        assert sts["replicas"] == 1 and sts["template"]["spec"]["volumes"] == [
            {"name": "objstore", "secret": {"secretName": "kms-thanos-objstore"}}]
    kps = _values(c, "prometheus")
    spec = kps["prometheus"]["prometheusSpec"]
    assert "remoteWrite" not in spec and spec["enableRemoteWriteReceiver"] and spec["enableOTLPReceiver"]
    assert spec["thanos"] == {"objectStorageConfig": {"existingSecret": {"name": "kms-thanos-objstore", "key": "objstore.yml"}}}
    ruler = kps["thanosRuler"]["thanosRulerSpec"]
    assert kps["thanosRuler"]["enabled"] and ruler["queryEndpoints"] == ["kms-thanos-query.monitoring.svc:9090"]
    # Without Mimir the central Prometheus takes Tempo's remote write and the collector's OTLP metrics.
    prom = "http://kms-prometheus-prometheus.monitoring.svc:9090"
    assert _values(c, "tempo")["tempo"]["metricsGenerator"]["storage"]["remote_write"][0]["url"] == f"{prom}/api/v1/write"
    assert _values(c, "collector")["alternateConfig"]["exporters"]["otlp_http/prometheus"]["endpoint"] == f"{prom}/api/v1/otlp"
    sources = _values(c, "grafana")["datasources"]["datasources.yaml"]["datasources"]
    assert {s["type"]: s["url"] for s in sources}["prometheus"] == "http://kms-thanos-query.monitoring.svc:9090"
    objstore = yaml.safe_load((c / "secrets" / "secret-kms-thanos-objstore.yaml").read_text())["stringData"]["objstore.yml"]
    assert yaml.safe_load(objstore)["config"]["bucket"] == "thanos-blocks"


def test_workload_clusters_keep_a_full_prometheus_with_sidecar(out: Path) -> None:
    for cluster in ("prod-eu", "prod-us"):
        d = out / "clusters" / cluster
        prom = _values(d, "prometheus")["prometheus"]
        assert prom["agentMode"] is False and "remoteWrite" not in prom["prometheusSpec"]
        assert prom["prometheusSpec"]["externalLabels"] == {"cluster": cluster}
        assert prom["thanosServiceExternal"] == {"enabled": True}
        assert (d / "secrets" / "secret-kms-thanos-objstore.yaml").is_file()
        assert THANOS_IMAGE in (d / "images.txt").read_text().split()  # the sidecar, to mirror when air-gapped
        assert _values(d, "collector")["mode"] == "daemonset"  # logs and traces as with Mimir


def test_lint_clean_and_valid(out: Path) -> None:
    assert lint_paths([out]) == ([], [])
    kv = pytest.importorskip("kubernetes_validate")
    for part in build(stack_for("multi-cluster", *THANOS)):
        for obj in part.objects + part.secrets:
            if f"{obj['apiVersion']}/{obj['kind']}" in custom_kinds():
                assert validate_custom(obj) == []
            else:
                kv.validate(obj, "1.33", strict=True)


def _own_chart(out: Path, tmp_path: Path) -> Path:
    """The central part's chart without its upstream dependencies (not vendored here)."""
    chart = tmp_path / "chart"
    shutil.copytree(out / "central" / "chart", chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta.pop("dependencies")
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    values = yaml.safe_load((chart / "values.yaml").read_text())
    (chart / "values.yaml").write_text(yaml.safe_dump({"kms": values["kms"]}))
    return chart


def test_chart_renders_the_thanos_objects(out: Path, tmp_path: Path) -> None:
    helm = pytest.importorskip("helm_python")
    chart = _own_chart(out, tmp_path)
    got = [o for name, text in helm.Chart.load(str(chart)).render(name="kms", namespace="monitoring").items()
           if name.endswith("thanos.yaml") for o in yaml.safe_load_all(text) if o]  # fmt: skip
    want = [o for name, o in _objects(out / "central").items() if "thanos" in name]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key) and len(got) == 6


@pytest.mark.parametrize("bad, message", [
    (["storage.type=seaweedfs"], "external store"),
    (["multi_cluster.agent=kms"], "sidecar runs next to it"),
    (["multi_cluster.thanos_sidecar_address=thanos.example.com:10901"], "{cluster}"),
])  # fmt: skip
def test_thanos_needs(bad: list[str], message: str) -> None:
    with pytest.raises(StackFileError, match=message):
        build(stack_for("multi-cluster", *THANOS, *bad))


def test_deploy_verifies_through_the_query(tmp_path: Path, capsys) -> None:
    sets = [a for s in SETS["multi-cluster"] + THANOS for a in ("--set", s)]
    assert main(["deploy", "--profile", "multi-cluster", *sets, "-o", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "svc/kms-thanos-query 19090:9090" in out and "--prometheus http://127.0.0.1:19090 " in out
    assert "kms-mimir" not in out


def test_helm_lint_of_the_thanos_part(out: Path, tmp_path: Path) -> None:
    helm = pytest.importorskip("helm_python")
    values = {"kms": yaml.safe_load((out / "central" / "chart" / "values.yaml").read_text())["kms"]}
    result = helm.lint(str(_own_chart(out, tmp_path)), values, strict=True)
    assert result["errors"] == [] and [m for m in result["messages"] if m["severity"] >= 3] == [], result
