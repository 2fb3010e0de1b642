"""kms's default rule set in rendered stacks: the stack groups wherever alerting is on, the
Kubernetes groups only where kube-prometheus-stack's default rules are not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from deploy_stacks import stack_for

from kms.deploy import build, render
from kms.deploy.rules import PIPELINE_GROUP
from kms.rules.defaults import rule_groups
from kms.rules.kubernetes import groups_of


def _rules(part) -> dict[str, list[dict]]:
    return {o["metadata"]["name"]: o["spec"]["groups"] for o in part.objects if o["kind"] == "PrometheusRule"}


def _names(groups: list[dict]) -> list[str]:
    return [g["name"] for g in groups]


def test_single_cluster_ships_the_stack_groups_next_to_kps_defaults(parts: dict) -> None:
    (part,) = parts["single-cluster"]
    rules = _rules(part)
    assert list(rules) == ["kms-stack"]
    assert _names(rules["kms-stack"]) == [PIPELINE_GROUP] + _names(rule_groups("stack"))
    kps = next(r for r in part.releases if r.alias == "prometheus").values
    assert kps["defaultRules"]["create"] is True  # the cluster's alerts come from kube-prometheus-stack


def test_small_ships_stack_and_kubernetes_groups(parts: dict) -> None:
    (part,) = parts["small"]
    rules = _rules(part)
    assert rules == {"kms-stack": rule_groups("stack"), "kms-kubernetes": rule_groups("kubernetes")}
    alerts = {r["alert"] for g in rules["kms-kubernetes"] for r in g["rules"] if "alert" in r}
    assert {"TargetDown", "KubeNodeNotReady", "KubePodCrashLooping", "KubeDeploymentReplicasMismatch",
            "KubePersistentVolumeFillingUp", "NodeFilesystemSpaceFillingUp", "NodeMemoryHighUtilization"} <= alerts


def test_multi_cluster_rules_only_centrally(parts: dict) -> None:
    central, *clusters = parts["multi-cluster"]
    assert list(_rules(central)) == ["kms-stack"]
    assert all(_rules(c) == {} for c in clusters)  # agents evaluate no rules


@pytest.mark.parametrize("profile", ["single-cluster", "small", "multi-cluster"])
def test_alerting_off_ships_no_rules(profile: str) -> None:
    for part in build(stack_for(profile, "alerting=false")):
        assert _rules(part) == {}
        assert "prometheus-crds" not in {r.alias for r in part.releases}
        assert not [o for o in part.objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "kms"]


@pytest.mark.parametrize("profile", ["single-cluster", "small"])
def test_kms_rule_loader_accepts_every_shipped_rule(profile: str, parts: dict) -> None:
    for part in parts[profile]:
        for obj in part.objects:
            if obj["kind"] == "PrometheusRule":
                _, groups = groups_of(obj, "anonymous", 60.0)
                assert [g.name for g in groups] == _names(obj["spec"]["groups"])


def test_templates_stay_literal_in_the_written_manifest(rendered: dict[str, Path]) -> None:
    obj = yaml.safe_load((rendered["small"] / "manifests" / "prometheusrule-kms-kubernetes.yaml").read_text())
    rule = next(r for g in obj["spec"]["groups"] for r in g["rules"] if r.get("alert") == "KubeNodeNotReady")
    assert rule["annotations"]["summary"] == "Node {{ $labels.node }} is not ready"


def test_small_without_alerting_renders(tmp_path: Path) -> None:
    render(stack_for("small", "alerting=false"), tmp_path)
    cm = yaml.safe_load((tmp_path / "manifests" / "configmap-kms.yaml").read_text())
    assert "rules" not in yaml.safe_load(cm["data"]["kms.yaml"])
    assert not list((tmp_path / "manifests").glob("prometheusrule-*"))


@pytest.mark.parametrize("alerting", [True, False])
def test_engines_are_scraped_for_the_stack_alerts(alerting: bool) -> None:
    (part,) = build(stack_for("single-cluster", f"alerting={str(alerting).lower()}"))
    values = {r.alias: r.values for r in part.releases}
    monitors = [values["mimir"].get("metaMonitoring"), values["loki"].get("monitoring"), values["tempo"].get("serviceMonitor")]
    assert monitors == ([{"serviceMonitor": {"enabled": True}}] * 2 + [{"enabled": True}] if alerting else [None] * 3)
