"""The OpenTelemetry Collector's configuration layout (receivers, processors, exporters,
extensions, service.pipelines), checked at load: a component of an unknown type, a pipeline
naming a component that is not defined, or a component kms cannot run is an error that says
which and where (file:line), never a pipeline that silently drops data. Old and new component
names are both accepted (``otlphttp`` and ``otlp_http``, ``filelog`` and ``file_log``, …), and
``${env:NAME}`` is expanded as the collector does."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kms.errors import BadInput
from kms.yamlpos import positions

__all__ = ["Component", "Pipeline", "PipelineConfig", "load_pipeline_config", "is_collector_layout", "SUPPORTED"]

# component kind -> canonical type -> accepted spellings (collector 0.15x renamed to snake_case)
SUPPORTED: dict[str, dict[str, tuple[str, ...]]] = {
    "receivers": {"otlp": ("otlp",), "prometheus": ("prometheus",), "hostmetrics": ("hostmetrics",),
                  "file_log": ("file_log", "filelog"), "zipkin": ("zipkin",)},
    "processors": {"batch": ("batch",), "memory_limiter": ("memory_limiter",), "attributes": ("attributes",),
                   "resource": ("resource",), "filter": ("filter",), "transform": ("transform",),
                   "k8s_attributes": ("k8s_attributes", "k8sattributes")},
    "exporters": {"otlp": ("otlp_grpc", "otlp"), "otlp_http": ("otlp_http", "otlphttp"),
                  "prometheusremotewrite": ("prometheusremotewrite",), "debug": ("debug", "logging"), "kms": ("kms",)},
    "extensions": {"health_check": ("health_check",)},
}
# Types the collector has but kms does not run (yet): refused by name rather than mistaken for typos.
KNOWN_ELSEWHERE = {
    "receivers": {"jaeger", "kubeletstats", "k8s_cluster", "k8scluster", "k8s_events", "k8sevents",
                  "k8sobjects", "journald", "filestats", "receiver_creator"},
    "processors": {"resourcedetection", "tail_sampling",
                   "probabilistic_sampler", "groupbyattrs", "cumulativetodelta"},
    "exporters": {"prometheus", "loki", "file", "nop"},
    "extensions": {"pprof", "zpages", "file_storage", "basicauth", "bearertokenauth", "headers_setter"},
}  # fmt: skip
SIGNALS = ("traces", "metrics", "logs")
_KINDS = ("receivers", "processors", "exporters", "extensions")


@dataclass
class Component:
    kind: str  # receivers | processors | exporters | extensions
    id: str  # as written, e.g. otlphttp/central
    type: str  # canonical, e.g. otlp_http
    settings: dict
    line: int


@dataclass
class Pipeline:
    name: str  # e.g. metrics/scrape
    signal: str
    receivers: list[str]
    processors: list[str]
    exporters: list[str]


@dataclass
class PipelineConfig:
    file: str
    components: dict[tuple[str, str], Component] = field(default_factory=dict)  # (kind, id) -> component
    pipelines: list[Pipeline] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)

    def get(self, kind: str, cid: str) -> Component:
        return self.components[(kind, cid)]


def is_collector_layout(doc: object) -> bool:
    return isinstance(doc, dict) and "service" in doc and any(k in doc for k in ("receivers", "exporters"))


def _canonical(kind: str, t: str) -> str | None:
    for canon, names in SUPPORTED[kind].items():
        if t in names:
            return canon
    return None


_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value):
    """The collector's ``${env:NAME}`` (``${env:NAME:-default}``) in every string of ``value``;
    an unset variable without a default becomes empty, as there. Other ``$`` forms stay as
    written (Prometheus relabel replacements use ``${1}``)."""
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def load_pipeline_config(path: str | Path, doc: dict | None = None) -> PipelineConfig:
    text = Path(path).read_text()
    if doc is None:
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise BadInput(f"{path}: invalid YAML: {e}") from None
    doc = expand_env(doc)
    lines = (positions(text) or [{}])[0]
    errors: list[str] = []
    cfg = PipelineConfig(str(path))

    def where(key: str) -> str:
        return f"{path}:{lines[key]}" if key in lines else str(path)

    for kind in _KINDS:
        section = doc.get(kind) or {}
        if not isinstance(section, dict):
            errors.append(f"{where(kind)}: {kind} must be a mapping")
            continue
        for cid, settings in section.items():
            t = str(cid).split("/", 1)[0]
            canon = _canonical(kind, t)
            if canon is None:
                if t in KNOWN_ELSEWHERE[kind]:
                    errors.append(f"{where(f'{kind}.{cid}')}: {kind[:-1]} {cid!r}: type {t!r} is not supported by "
                                  f"kms (supported: {', '.join(sorted(n for v in SUPPORTED[kind].values() for n in v))})")
                else:
                    near = difflib.get_close_matches(t, [n for v in SUPPORTED[kind].values() for n in v]
                                                     + sorted(KNOWN_ELSEWHERE[kind]), n=1)
                    errors.append(f"{where(f'{kind}.{cid}')}: unknown {kind[:-1]} type {t!r} in {cid!r}"
                                  + (f" (did you mean {near[0]!r}?)" if near else ""))
                continue
            if settings is not None and not isinstance(settings, dict):
                errors.append(f"{where(f'{kind}.{cid}')}: {kind[:-1]} {cid!r}: settings must be a mapping")
                continue
            cfg.components[(kind, str(cid))] = Component(kind, str(cid), canon, settings or {},
                                                         lines.get(f"{kind}.{cid}", 0))
    service = doc.get("service") or {}
    for i, ext in enumerate(service.get("extensions") or []):
        if ("extensions", ext) not in cfg.components and ext not in (doc.get("extensions") or {}):
            errors.append(f"{where(f'service.extensions[{i}]')}: extension {ext!r} is not defined under extensions")
        cfg.extensions.append(ext)
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        errors.append(f"{where('service') if 'service' in lines else path}: service.pipelines is empty: nothing would "
                      "be collected")
    for pname, p in pipelines.items():
        base = f"service.pipelines.{pname}"
        signal = str(pname).split("/", 1)[0]
        if signal not in SIGNALS:
            errors.append(f"{where(base)}: pipeline {pname!r}: the signal must be one of {', '.join(SIGNALS)}")
            continue
        p = p or {}
        refs: dict[str, list[str]] = {}
        for kind in ("receivers", "processors", "exporters"):
            refs[kind] = [str(x) for x in p.get(kind) or []]
            defined = [cid for (k, cid) in cfg.components if k == kind]
            written = list(doc.get(kind) or {})
            for i, cid in enumerate(refs[kind]):
                if cid not in written:
                    near = difflib.get_close_matches(cid, written, n=1)
                    errors.append(f"{where(f'{base}.{kind}[{i}]')}: pipeline {pname!r} names {kind[:-1]} {cid!r}, "
                                  f"which is not defined under {kind}" + (f" (did you mean {near[0]!r}?)" if near
                                                                         else f" (defined: {', '.join(defined) or 'none'})"))
        for kind in ("receivers", "exporters"):
            if not refs[kind]:
                errors.append(f"{where(base)}: pipeline {pname!r} has no {kind}")
        cfg.pipelines.append(Pipeline(str(pname), signal, refs["receivers"], refs["processors"], refs["exporters"]))
    if errors:
        raise BadInput("invalid collector configuration:\n  " + "\n  ".join(errors))
    return cfg
