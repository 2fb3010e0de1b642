"""Dashboards imported at render time: export inputs resolved, embedded in a ConfigMap that
validates and that the chart's template renders the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kms.deploy import StackFileError, load_stack, render
from kms.grafana import PROM_UID

DOTDC = Path("/work/shared/conformance/dashboards/dotdc")


def _exported(tmp_path: Path) -> Path:
    d = tmp_path / "dash"
    d.mkdir()
    (d / "app.json").write_text(json.dumps({
        "__inputs": [{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}],
        "__requires": [], "id": 7, "uid": "app", "title": "App",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [{"datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, "targets": [{"expr": "up"}]}],
    }))  # fmt: skip
    return d


def test_inputs_resolved_and_embedded(tmp_path: Path) -> None:
    src = _exported(tmp_path)
    out = tmp_path / "out"
    render(load_stack(None, [f"grafana.import_dashboards={{{src}}}", "profile=small"]), out)
    cm = yaml.safe_load((out / "manifests" / "configmap-kms-dashboards-imported.yaml").read_text())
    model = json.loads(cm["data"]["app.json"])
    assert "__inputs" not in model and model["id"] is None
    assert model["panels"][0]["datasource"]["uid"] == PROM_UID
    assert model["templating"]["list"][0]["current"]["value"] == PROM_UID
    g = yaml.safe_load((out / "values" / "grafana.yaml").read_text())
    assert g["dashboardsConfigMaps"]["imported"] == "kms-dashboards-imported"
    assert (out / "chart" / "dashboards" / "imported" / "app.json").read_text() == cm["data"]["app.json"]


def test_missing_path_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"grafana.import_dashboards\[0\]"):
        render(load_stack(None, [f"grafana.import_dashboards={{{tmp_path / 'nope'}}}"]), tmp_path / "out")


@pytest.mark.skipif(not DOTDC.is_dir(), reason="dotdc dashboards not present")
def test_dotdc_kubernetes_dashboards(tmp_path: Path) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    render(load_stack(None, [f"grafana.import_dashboards={{{DOTDC}}}"]), tmp_path)
    text = (tmp_path / "manifests" / "configmap-kms-dashboards-imported.yaml").read_text()
    cm = yaml.safe_load(text)
    assert len(cm["data"]) == len(list(DOTDC.glob("*.json"))) >= 4
    assert "${DS_PROMETHEUS}" not in text
    kv.validate(cm, "1.33", strict=True)
