"""``kms render``: each part of a profile becomes an umbrella chart (Chart.yaml with pinned
dependencies, values.yaml, the own templates and embedded dashboards), the rendered values of
each chart, plain manifests of the own objects, the Secrets (secrets/) and the image list. Lint runs on the result first;
a stack with errors is not written."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kms.deploy.charts import UMBRELLA, UMBRELLA_VERSION
from kms.deploy.images import IMAGES, own_images, rewrite
from kms.deploy.lint import Doc, Finding, lint_docs
from kms.deploy.lint.findings import get
from kms.deploy.model import Stack
from kms.deploy.output import dump_all, dump_json, dump_yaml
from kms.deploy.profiles import Part, build
from kms.deploy.templates import template_values
from kms.deploy.thanos import THANOS_IMAGE
from kms.errors import BadInput

__all__ = ["CHART_SOURCE", "RenderRefused", "Rendered", "chart_yaml", "umbrella_values", "part_images", "render"]

# The umbrella chart's own templates: the repository's charts/ folder, or KMS_CHART_DIR.
CHART_SOURCE = Path(os.environ.get("KMS_CHART_DIR") or Path(__file__).resolve().parents[3] / "charts" / UMBRELLA)


class RenderRefused(BadInput):
    def __init__(self, findings: list[Finding]) -> None:
        errors = [f for f in findings if f.severity == "error"]
        super().__init__(f"the rendered stack has {len(errors)} lint error(s); nothing was written:\n"
                         + "\n".join(str(f) for f in errors))  # fmt: skip
        self.findings = findings


@dataclass
class Rendered:
    files: list[Path]
    findings: list[Finding]  # warnings only (errors refuse)
    parts: list[Part]


def chart_yaml(part: Part) -> dict:
    return {
        "apiVersion": "v2",
        "name": UMBRELLA,
        "description": f"kube-monitoring-stack ({part.stack.profile if not part.path else part.path}) for cluster {part.stack.cluster}",
        "type": "application",
        "version": UMBRELLA_VERSION,
        "dependencies": [{"name": r.pin.chart, "alias": r.alias, "version": r.pin.version,
                          "repository": r.pin.repository} for r in part.releases],  # fmt: skip
    }


def umbrella_values(part: Part) -> dict:
    values = {r.alias: r.values for r in part.releases}
    values["kms"] = template_values(part)
    return values


def part_images(part: Part) -> list[str]:
    """Every image of the part, rewritten to the private registry when one is set."""
    refs = {img.ref for r in part.releases for img in IMAGES.get(r.chart_key, [])}
    refs |= set(own_images(part.objects))
    if any(get(r.values, "prometheus.prometheusSpec.thanos") for r in part.releases if r.chart_key == "prometheus"):
        refs.add(THANOS_IMAGE)  # the sidecar the operator adds to the Prometheus pods
    reg = part.stack.registry
    return sorted(rewrite(r, reg) if reg and not r.startswith(reg.rstrip("/") + "/") else r for r in refs)


def _docs(part: Part) -> list[Doc]:
    where = part.path or "."
    docs = [Doc(f"{where}/chart/values.yaml", umbrella_values(part))]
    docs += [Doc(f"{where}/manifests/{o['kind'].lower()}-{o['metadata']['name']}.yaml", o) for o in part.objects]
    return docs


def _write(path: Path, text: str, files: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    files.append(path)


def _write_part(part: Part, out: Path, files: list[Path]) -> None:
    root = out / part.path if part.path else out
    chart = root / "chart"
    _write(chart / "Chart.yaml", dump_yaml(chart_yaml(part)), files)
    _write(chart / "values.yaml", dump_yaml(umbrella_values(part)), files)
    for src in sorted((CHART_SOURCE / "templates").iterdir()):
        _write(chart / "templates" / src.name, src.read_text(), files)
    for folder, dashes in sorted(part.dashboards.items()):
        for name, model in sorted(dashes.items()):
            _write(chart / "dashboards" / folder / name, dump_json(model), files)
    for r in part.releases:
        _write(root / "values" / f"{r.alias}.yaml", dump_yaml(r.values), files)
    for o in part.objects:
        _write(root / "manifests" / f"{o['kind'].lower()}-{o['metadata']['name']}.yaml", dump_all([o]), files)
    for o in part.secrets:  # apart from manifests/: keep them out of git, or replace them with your own
        _write(root / "secrets" / f"secret-{o['metadata']['name']}.yaml", dump_all([o]), files)
    _write(root / "images.txt", "".join(f"{i}\n" for i in part_images(part)), files)


def render(stack: Stack, out: Path, profile: str | None = None) -> Rendered:
    if not (CHART_SOURCE / "templates").is_dir():
        raise BadInput(f"the umbrella chart's templates are not at {CHART_SOURCE}; "
                       "set KMS_CHART_DIR to the charts/kms-stack folder of the kube-monitoring-stack source")
    parts = build(stack, profile)
    registry = stack.registry
    findings = lint_docs([d for p in parts for d in _docs(p)], registry)
    if any(f.severity == "error" for f in findings):
        raise RenderRefused(findings)
    out = Path(out)
    for p in parts:  # replace what a previous render left, so removed objects do not linger
        target = out / p.path if p.path else out
        for sub in ("chart", "values", "manifests", "secrets"):
            if (target / sub).is_dir():
                shutil.rmtree(target / sub)
    files: list[Path] = []
    for p in parts:
        _write_part(p, out, files)
    return Rendered(files, findings, parts)
