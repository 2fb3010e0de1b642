"""`kms deploy` / `kms status` against a recording double of helm, kubectl and kms (no cluster
here): the exact command sequence, stop on failure, port-forwards stopped, readiness parsed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_stacks import SETS

from kms.cli import build_parser
from kms.deploy.execute import Result


class Recorder:
    """Answers every command with a canned result and records argv; background starts too."""

    def __init__(self, fail_on: str = "", outputs: dict[str, str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.stopped: list[list[str]] = []
        self.fail_on, self.outputs = fail_on, outputs or {}

    def run(self, argv: list[str]) -> Result:
        self.calls.append(argv)
        if self.fail_on and self.fail_on in " ".join(argv):
            return Result(1, "", "Error: UPGRADE FAILED: timed out waiting for the condition")
        return Result(0, self.outputs.get(" ".join(argv[:2]), ""), "")

    def start(self, argv: list[str], wait_port: int):
        self.calls.append(argv)
        rec = self

        class H:
            def stop(self) -> None:
                rec.stopped.append(argv)

        return H()


def _run(argv: list[str], runner: Recorder) -> int:
    args = build_parser().parse_args(argv)
    args.runner = runner
    return args.run(args)


def _sets(profile: str) -> list[str]:
    return [a for s in SETS[profile] for a in ("--set", s)]


def test_single_cluster_command_sequence(tmp_path: Path) -> None:
    rec = Recorder()
    assert _run(["deploy", "--profile", "single-cluster", *_sets("single-cluster"), "-o", str(tmp_path),
                 "--context", "kind-kms"], rec) == 0  # fmt: skip
    heads = [" ".join(c[:4]) if c[0] == "helm" else " ".join(c[:3]) for c in rec.calls]
    assert heads == [
        "helm upgrade --install kms-prometheus",
        "kubectl apply --server-side",  # the S3 Secret: after the namespace exists, before the store
        "helm upgrade --install kms-operator",
        "helm upgrade --install kms-seaweedfs",
        "helm upgrade --install kms-mimir",
        "helm upgrade --install kms-loki",
        "helm upgrade --install kms-tempo",
        "helm upgrade --install kms-collector",
        "helm upgrade --install kms-postgres-orders",
        "helm upgrade --install kms-redis-cache",
        "kubectl apply --server-side",
        "helm upgrade --install kms-grafana",
        "kubectl port-forward --namespace",
        "kubectl port-forward --namespace",
        "kubectl port-forward --namespace",
        "kubectl port-forward --namespace",
        "kms verify --prometheus",
    ]
    assert rec.calls[1][-3] == str(tmp_path / "secrets") and (tmp_path / "secrets" / "secret-kms-s3.yaml").is_file()
    mimir = rec.calls[4]
    assert mimir == ["helm", "upgrade", "--install", "kms-mimir", "mimir-distributed", "--repo",
                     "https://grafana.github.io/helm-charts", "--version", "6.2.0", "--namespace", "monitoring",
                     "--create-namespace", "--values", str(tmp_path / "values" / "mimir.yaml"),
                     "--set", "nameOverride=mimir", "--wait", "--timeout", "10m", "--kube-context", "kind-kms"]  # fmt: skip
    assert (tmp_path / "values" / "mimir.yaml").is_file()  # rendered before installing
    assert rec.calls[10][-2:] == ["--context", "kind-kms"] and rec.calls[10][-3] == str(tmp_path / "manifests")
    assert rec.calls[-1] == ["kms", "verify", "--prometheus", "http://127.0.0.1:18080/prometheus",
                             "--loki", "http://127.0.0.1:13100", "--tempo", "http://127.0.0.1:13200",
                             "--otlp", "http://127.0.0.1:14318", "--tenant", "anonymous"]  # fmt: skip
    assert len(rec.stopped) == 4  # every port-forward stopped after verify


def test_small_waits_for_its_workloads(tmp_path: Path) -> None:
    rec = Recorder()
    assert _run(["deploy", "--profile", "small", "-o", str(tmp_path), "--skip-verify"], rec) == 0
    assert [c[:4] for c in rec.calls if c[0] == "kubectl"] == [
        ["kubectl", "apply", "--server-side", "--field-manager"],
        ["kubectl", "rollout", "status", "statefulset/kms"],
        ["kubectl", "rollout", "status", "daemonset/kms-agent"]]
    assert rec.calls[-1][3] == "kms-grafana"  # Grafana last: it mounts the dashboard ConfigMaps


def test_multi_cluster_contexts(tmp_path: Path) -> None:
    rec = Recorder()
    assert _run(["deploy", "--profile", "multi-cluster", *_sets("multi-cluster"), "-o", str(tmp_path),
                 "--context", "central=ctx-c", "--context", "prod-eu=ctx-eu", "--context", "prod-us=ctx-us",
                 "--skip-verify"], rec) == 0  # fmt: skip
    agents = [c for c in rec.calls if c[3] == "kms-prometheus"]
    assert [c[-1] for c in agents] == ["ctx-c", "ctx-eu", "ctx-us"]
    assert agents[1][agents[1].index("--values") + 1] == str(tmp_path / "clusters/prod-eu/values/prometheus.yaml")


def test_stops_at_the_first_failure(tmp_path: Path, capsys) -> None:
    rec = Recorder(fail_on="kms-loki")
    assert _run(["deploy", "--profile", "single-cluster", "-o", str(tmp_path)], rec) == 1
    assert rec.calls[-1][3] == "kms-loki" and "timed out" in capsys.readouterr().out


def test_dry_run_runs_nothing(tmp_path: Path, capsys) -> None:
    rec = Recorder()
    assert _run(["deploy", "--profile", "small", "-o", str(tmp_path), "--dry-run"], rec) == 0
    out = capsys.readouterr().out
    assert rec.calls == [] and "[1/9]" in out and "$ helm upgrade --install kms-kube-state-metrics" in out
    # The PrometheusRule CRD before the own objects that include PrometheusRules (alerting is on).
    assert out.index("install kms-prometheus-crds prometheus-operator-crds") < out.index("kubectl apply")


@pytest.mark.parametrize("ready, code", [(True, 0), (False, 1)])
def test_status(ready: bool, code: int, capsys) -> None:
    releases = [{"name": n, "status": "deployed", "chart": "x-1"}
                for n in ("kms-prometheus-crds", "kms-kube-state-metrics", "kms-grafana")]  # fmt: skip
    pods = {"items": [{"metadata": {"name": "kms-0"},
                       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}}]}
    rec = Recorder(outputs={"helm list": json.dumps(releases), "kubectl get": json.dumps(pods)})
    assert _run(["status", "--profile", "small"], rec) == code
    assert rec.calls == [["helm", "list", "--namespace", "monitoring", "--output", "json"],
                         ["kubectl", "get", "pods", "--namespace", "monitoring", "--output", "json"]]
    assert ("NOT READY" in capsys.readouterr().out) is not ready


def test_status_reports_missing_release(capsys) -> None:
    rec = Recorder(outputs={"helm list": "[]", "kubectl get": '{"items": []}'})
    assert _run(["status", "--profile", "small"], rec) == 1
    assert "not installed" in capsys.readouterr().out
