"""Rendered objects against the Kubernetes schemas (kubernetes-validate, strict) and the custom
resources against the CRD schemas (kms.deploy.crds), for every profile."""

from __future__ import annotations

import copy

import pytest
from deploy_stacks import PROFILES

from kms.deploy.crds import custom_kinds, validate_custom

kv = pytest.importorskip("kubernetes_validate")
K8S_VERSION = "1.33"  # the oldest version the charts' minimums allow (mimir-distributed 6 needs >= 1.29)


def _builtin_errors(obj: dict) -> str:
    try:
        kv.validate(obj, K8S_VERSION, strict=True)
    except kv.ValidationError as e:
        return f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
    return ""


@pytest.mark.parametrize("profile", PROFILES)
def test_every_object_validates(profile: str, parts: dict) -> None:
    seen_custom = set()
    for part in parts[profile]:
        for obj in part.objects + part.secrets:
            kind = f"{obj['apiVersion']}/{obj['kind']}"
            if kind in custom_kinds():
                seen_custom.add(obj["kind"])
                assert validate_custom(obj) == [], kind
            else:
                assert _builtin_errors(obj) == "", f"{kind} {obj['metadata']['name']}"
    if profile == "single-cluster":
        assert seen_custom == {"ServiceMonitor", "PrometheusRule", "Instrumentation"}


def test_validators_catch_mistakes(parts: dict) -> None:
    objs = {o["kind"]: o for p in parts["single-cluster"] + parts["small"] for o in p.objects}
    svc = copy.deepcopy(objs["Service"])
    svc["spec"]["ports"][0]["port"] = "9100"  # wrong type
    assert "is not of type" in _builtin_errors(svc)
    sts = copy.deepcopy(objs["StatefulSet"])
    sts["spec"]["replica"] = 1  # unknown field: strict
    assert "replica" in _builtin_errors(sts)
    sm = copy.deepcopy(objs["ServiceMonitor"])
    sm["spec"]["endpoint"] = sm["spec"].pop("endpoints")
    assert any("endpoint" in e for e in validate_custom(sm))
    inst = copy.deepcopy(objs["Instrumentation"])
    inst["spec"]["sampler"]["argument"] = 1
    inst["spec"]["propagators"] = ["w3c"]
    errs = validate_custom(inst)
    assert any("sampler.argument" in e for e in errs) and any("propagators.0" in e for e in errs)
    rule = copy.deepcopy(objs["PrometheusRule"])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    assert any("for" in e for e in validate_custom(rule))


def test_podmonitor_schema() -> None:
    pm = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "app"},
          "spec": {"selector": {"matchLabels": {"app": "shop"}},
                   "podMetricsEndpoints": [{"port": "metrics", "interval": "30s"}]}}  # fmt: skip
    assert validate_custom(pm) == []
    pm["spec"]["podMetricsEndpoints"][0]["portName"] = "metrics"
    assert validate_custom(pm)
