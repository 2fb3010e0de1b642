"""The umbrella chart's own templates, rendered by Helm's Go SDK (helm-python-sdk, no helm binary),
produce exactly the plain manifests `kms render` writes, for every part of every profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from deploy_stacks import PROFILES

from kms.deploy.render import CHART_SOURCE

helm = pytest.importorskip("helm_python")


def _own_chart(part_dir: Path, tmp: Path) -> Path:
    """The rendered chart without its upstream dependencies (their sources are not vendored)."""
    chart = tmp / "chart"
    shutil.copytree(part_dir / "chart", chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta.pop("dependencies")
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    values = yaml.safe_load((chart / "values.yaml").read_text())
    (chart / "values.yaml").write_text(yaml.safe_dump({"kms": values["kms"]}))
    return chart


def _objects(manifests: dict[str, str]) -> list[dict]:
    out = []
    for name, text in manifests.items():
        if name.endswith(".yaml") and text.strip():
            out += [o for o in yaml.safe_load_all(text) if o]
    return out


def _key(o: dict) -> tuple:
    return (o["kind"], o["metadata"]["name"])


@pytest.mark.parametrize("profile", PROFILES)
def test_templates_render_the_plain_manifests(profile: str, rendered: dict[str, Path], tmp_path: Path) -> None:
    for n, part_dir in enumerate(sorted({m.parent.parent for m in rendered[profile].rglob("manifests/*.yaml")})):
        chart = helm.Chart.load(str(_own_chart(part_dir, tmp_path / str(n))))
        got = sorted(_objects(chart.render(name="kms", namespace="monitoring")), key=_key)
        want = sorted((o for f in (part_dir / "manifests").glob("*.yaml") for o in yaml.safe_load_all(f.read_text())),
                      key=_key)  # fmt: skip
        assert [_key(o) for o in got] == [_key(o) for o in want]
        for g, w in zip(got, want, strict=True):
            assert g == w, _key(g)


def test_committed_chart_renders_nothing_by_default() -> None:
    chart = helm.Chart.load(str(CHART_SOURCE))
    assert _objects(chart.render(name="kms", namespace="monitoring")) == []


@pytest.mark.parametrize("profile", PROFILES)
def test_helm_lint(profile: str, rendered: dict[str, Path], tmp_path: Path) -> None:
    """helm lint (severity 3 = error) of the committed chart with each rendered part's own values."""
    for n, part_dir in enumerate(sorted(rendered[profile].rglob("chart"))):
        values = {"kms": yaml.safe_load((part_dir / "values.yaml").read_text())["kms"]}
        result = helm.lint(str(_own_chart(part_dir.parent, tmp_path / str(n))), values, strict=True)
        assert result["errors"] == [] and [m for m in result["messages"] if m["severity"] >= 3] == [], result
    result = helm.lint(str(CHART_SOURCE))
    assert [m for m in result["messages"] if m["severity"] >= 3] == [], result


def test_helm_keeps_alert_templates_literal(rendered: dict[str, Path], tmp_path: Path) -> None:
    """The rules' own {{ $labels.x }} pass through Helm's template engine untouched (toYaml)."""
    chart = helm.Chart.load(str(_own_chart(rendered["small"], tmp_path)))
    rules = {o["metadata"]["name"]: o for o in _objects(chart.render(name="kms", namespace="monitoring"))
             if o["kind"] == "PrometheusRule"}  # fmt: skip
    assert sorted(rules) == ["kms-kubernetes", "kms-stack"]
    summaries = {r["alert"]: r["annotations"]["summary"] for g in rules["kms-kubernetes"]["spec"]["groups"]
                 for r in g["rules"] if "alert" in r}  # fmt: skip
    assert summaries["KubeNodeNotReady"] == "Node {{ $labels.node }} is not ready"
    assert summaries["TargetDown"] == "{{ $value | humanize }}% of the {{ $labels.job }} targets are down"
