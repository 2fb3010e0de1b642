"""``kms lint``: recognises each YAML document (collector config, chart values of one chart or of
the umbrella chart, Grafana provisioning, Kubernetes manifests), runs its checks and the
cross-file tenant check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from kms.deploy.lint.buckets import check_buckets
from kms.deploy.lint.charts import check_loki, check_mimir, check_operator, check_prometheus, check_tempo
from kms.deploy.lint.collector import check_collector, check_collector_values
from kms.deploy.lint.custom import check_custom
from kms.deploy.lint.findings import Doc, Finding, get, positions
from kms.deploy.lint.grafana import check_datasources, check_grafana_values, datasource_tenant
from kms.deploy.lint.manifests import check_manifests
from kms.deploy.lint.secrets import check_env_refs, check_plain_secrets
from kms.deploy.lint.tenants import Tenants
from kms.deploy.lint.urls import backend_of

__all__ = ["detect", "lint_docs", "lint_paths", "read_docs"]

_CHECKS = {"prometheus": check_prometheus, "mimir": check_mimir, "loki": check_loki, "tempo": check_tempo,
           "operator": check_operator, "collector": check_collector_values}  # fmt: skip


def _chart(d: Any) -> str:
    """Which chart's values ``d`` is, or ''."""
    if not isinstance(d, dict):
        return ""
    if get(d, "prometheus.prometheusSpec") is not None or "agentMode" in (d.get("prometheus") or {}):
        return "prometheus"
    if get(d, "mimir.structuredConfig") is not None:
        return "mimir"
    if "deploymentMode" in d or any(k in (d.get("loki") or {}) for k in ("storage", "schemaConfig", "commonConfig")):
        return "loki"
    if any(k in (d.get("tempo") or {}) for k in ("metricsGenerator", "storage", "overrides")):
        return "tempo"
    if "admissionWebhooks" in d:
        return "operator"
    if "alternateConfig" in d or "presets" in d or ("mode" in d and "config" in d):
        return "collector"
    if isinstance(d.get("datasources"), dict) or "dashboardProviders" in d or "dashboardsConfigMaps" in d:
        return "grafana"
    return ""


def detect(d: Any) -> str:
    """umbrella | <chart alias> | collector-config | datasources | manifest | ''."""
    if not isinstance(d, dict):
        return ""
    if "apiVersion" in d and "kind" in d:
        return "manifest"
    if "service" in d and ("receivers" in d or "exporters" in d):
        return "collector-config"
    if isinstance(d.get("datasources"), list):
        return "datasources"
    if "kms" in d or any(_chart(v) == k for k, v in d.items()):
        return "umbrella"
    return _chart(d)


def _writers(t: Tenants, doc: Doc, chart: str) -> None:
    v = doc.data
    if chart == "prometheus":
        for i, rw in enumerate(get(v, "prometheus.prometheusSpec.remoteWrite") or []):
            if b := backend_of(str(rw.get("url", ""))):
                t.write(b, _header(rw.get("headers")), doc, f"prometheus.prometheusSpec.remoteWrite[{i}]")
    elif chart == "tempo":
        for i, rw in enumerate(get(v, "tempo.metricsGenerator.storage.remote_write") or []):
            if b := backend_of(str(rw.get("url", ""))):
                t.write(b, _header(rw.get("headers")), doc, f"tempo.metricsGenerator.storage.remote_write[{i}]")
    elif chart in ("collector", "collector-config"):
        sub = doc if chart == "collector-config" else doc.sub("alternateConfig" if v.get("alternateConfig") else "config")
        for name, ex in (sub.data.get("exporters") or {}).items():
            if b := backend_of(str((ex or {}).get("endpoint", ""))):
                t.write(b, _header((ex or {}).get("headers")), sub, f"exporters.{name}")


def _header(headers: Any) -> str | None:
    for k, val in (headers or {}).items():
        if str(k).lower() == "x-scope-orgid":
            return str(val)
    return None


def _readers(t: Tenants, doc: Doc, sources: dict) -> None:
    for i, d in enumerate(sources.get("datasources") or []):
        b = backend_of(str(d.get("url", "")))
        if b:
            tenant = datasource_tenant(d)
            if tenant != "":  # a header name without value is grafana-tenant-header's finding
                t.read(b, tenant, doc, f"datasources[{i}]")


def _lint_one(doc: Doc, kind: str, t: Tenants, airgapped: bool) -> None:
    if kind == "collector-config":
        check_collector(doc)
        _writers(t, doc, kind)
    elif kind == "datasources":
        check_datasources(doc)
        _readers(t, doc, doc.data)
    elif kind == "grafana":
        check_grafana_values(doc, airgapped)
        for fname, content in (doc.data.get("datasources") or {}).items():
            if isinstance(content, dict):
                _readers(t, doc.sub("datasources").sub(fname), content)
    elif kind in _CHECKS:
        _CHECKS[kind](doc)
        check_env_refs(doc, kind)
        _writers(t, doc, kind)


def read_docs(path: Path) -> list[Doc]:
    text = path.read_text()
    if path.suffix == ".json":
        return [Doc(str(path), json.loads(text))]
    data = list(yaml.safe_load_all(text))
    pos = positions(text)
    return [Doc(str(path), d, pos[i] if i < len(pos) else {}) for i, d in enumerate(data) if d is not None]


def lint_docs(docs: list[Doc], registry: str = "") -> list[Finding]:
    t = Tenants()
    manifests = []
    for doc in docs:
        kind = detect(doc.data)
        if kind == "manifest":
            manifests.append(doc)
        elif kind == "umbrella":
            airgapped = bool(registry) or any(get(v, "global.imageRegistry") for v in doc.data.values() if isinstance(v, dict))
            for key, v in doc.data.items():
                # The umbrella's keys are chart aliases: trust them over the shape of the values.
                sub_kind = key if key in _CHECKS or key == "grafana" else _chart(v)
                if key != "kms" and isinstance(v, dict):
                    check_plain_secrets(doc.sub(key), sub_kind or key)
                if sub_kind and isinstance(v, dict) and v.get("enabled", True) is not False:
                    _lint_one(doc.sub(key), sub_kind, t, airgapped)
            check_buckets(doc)
        else:
            if kind in _CHECKS or kind == "grafana":
                check_plain_secrets(doc, kind)
            _lint_one(doc, kind, t, bool(registry))
    check_manifests(manifests, registry)
    for doc in manifests:  # after check_manifests: its more specific findings win on a shared line
        check_custom(doc)
    t.check()
    out: list[Finding] = []
    for doc in docs:
        out += doc.findings
    return sorted(set(out))


def _files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml")
                          and "templates" not in f.parts and f.name != "Chart.yaml")  # fmt: skip
        else:
            out.append(p)
    return out


def lint_paths(paths: list[Path], registry: str = "") -> tuple[list[Finding], list[str]]:
    """Findings, and problems reading files (missing, not YAML) reported as errors by the caller."""
    docs, problems = [], []
    for f in _files(paths):
        try:
            docs += read_docs(f)
        except FileNotFoundError:
            problems.append(f"{f}: no such file")
        except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as e:
            problems.append(f"{f}: not valid YAML/JSON: {e}")
    return lint_docs(docs, registry), problems
