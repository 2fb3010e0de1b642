"""Dashboards imported from JSON files at render time (e.g. the dotdc Kubernetes dashboards), made
fit for file provisioning: ``${DS_*}`` inputs resolved to kms's data source uids and datasource
variables preselected, then embedded in a ConfigMap like kms's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kms.deploy.load import StackFileError
from kms.deploy.output import dump_json
from kms.grafana import LOKI_UID, PROM_UID, TEMPO_UID

__all__ = ["CONFIGMAP_LIMIT", "import_dashboards"]

# A ConfigMap holds at most 1 MiB (etcd's object limit); keep room for metadata.
CONFIGMAP_LIMIT = 1_000_000
_UIDS = {"prometheus": PROM_UID, "loki": LOKI_UID, "tempo": TEMPO_UID}
_NAMES = {"prometheus": "Metrics", "loki": "Logs", "tempo": "Traces"}


def _prepare(model: dict) -> dict:
    """Resolve export-time inputs (``${DS_PROMETHEUS}``), which file provisioning leaves unresolved."""
    inputs = {i["name"]: _UIDS[i["pluginId"]] for i in model.pop("__inputs", []) if i.get("pluginId") in _UIDS}
    model.pop("__requires", None)
    text = json.dumps(model)
    for name, uid in inputs.items():
        text = re.sub(r"\$\{" + re.escape(name) + r"\}", uid, text)
    model = json.loads(text)
    model["id"] = None
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") == "datasource" and var.get("query") in _UIDS:
            var["current"] = {"selected": True, "text": _NAMES[var["query"]], "value": _UIDS[var["query"]]}
    return model


def import_dashboards(paths: list[str]) -> dict[str, dict]:
    """File name -> prepared model for every ``*.json`` under ``paths`` (files or directories)."""
    files: list[Path] = []
    for i, p in enumerate(paths):
        path = Path(p)
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise StackFileError(f"grafana.import_dashboards[{i}]: {p} is neither a JSON file nor a directory")
    out: dict[str, dict] = {}
    for f in files:
        try:
            model = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StackFileError(f"grafana.import_dashboards: {f} is not dashboard JSON: {e}") from None
        if f.name in out:
            raise StackFileError(f"grafana.import_dashboards: two files are named {f.name}")
        out[f.name] = _prepare(model)
    size = sum(len(dump_json(m).encode()) for m in out.values())
    if size > CONFIGMAP_LIMIT:
        raise StackFileError(f"grafana.import_dashboards: {size} bytes of JSON exceed one ConfigMap's 1 MiB; "
                             "import fewer dashboards")  # fmt: skip
    return out
