"""Writes a Grafana provisioning folder: data sources, a dashboard file provider and the dashboards."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kms.grafana.dashboards import dashboards
from kms.grafana.datasources import DEFAULT_URL, datasources

__all__ = ["dashboard_provider", "write"]

FOLDER = "kms"


def dashboard_provider(path: str) -> dict:
    """The provisioning file ``dashboards/kms.yaml``: a file provider reading the JSON files at ``path``."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "kms",
                "orgId": 1,
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": True,
                "updateIntervalSeconds": 30,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }


def _dump(data: dict) -> str:
    # width: no folded lines, so the PromQL in the file reads as written
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=10_000)


def write(out: Path, url: str = DEFAULT_URL, tenant: str | None = None) -> list[Path]:
    """Write ``out/provisioning/{datasources,dashboards}/kms.yaml`` and ``out/dashboards/*.json``;
    returns the files written. The provider's path is absolute so Grafana finds it from any cwd."""
    out = Path(out).resolve()
    ds_file = out / "provisioning" / "datasources" / "kms.yaml"
    prov_file = out / "provisioning" / "dashboards" / "kms.yaml"
    dash_dir = out / "dashboards"
    for d in (ds_file.parent, prov_file.parent, dash_dir):
        d.mkdir(parents=True, exist_ok=True)
    ds_file.write_text(_dump(datasources(url, tenant)))
    prov_file.write_text(_dump(dashboard_provider(str(dash_dir))))
    written = [ds_file, prov_file]
    for name, model in dashboards().items():
        f = dash_dir / name
        f.write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n")
        written.append(f)
    return written
