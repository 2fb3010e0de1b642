"""Checks of an OpenTelemetry Collector config: components defined and spelled right (old and new
names), pipelines complete, memory_limiter first, exporter endpoints per backend."""

from __future__ import annotations

import difflib

from kms.deploy.lint.findings import Doc, get
from kms.deploy.lint.urls import backend_of, in_cluster, path_of

__all__ = ["check_collector", "check_collector_values"]

# Component types this stack's collectors use or commonly meet (contrib included).
_KNOWN = {
    "receivers": {"otlp", "prometheus", "k8sobjects", "k8s_cluster", "k8s_events", "kubeletstats", "hostmetrics",
                  "file_log", "jaeger", "zipkin", "journald", "filestats", "prometheus_simple", "receiver_creator"},
    "processors": {"batch", "memory_limiter", "k8s_attributes", "resource", "attributes", "filter", "transform",
                   "resourcedetection", "tail_sampling", "probabilistic_sampler", "groupbyattrs", "cumulativetodelta"},
    "exporters": {"otlp_grpc", "otlp_http", "debug", "prometheusremotewrite", "prometheus", "loki", "file", "nop"},
    "extensions": {"health_check", "pprof", "zpages", "file_storage", "basicauth", "bearertokenauth", "headers_setter"},
    "connectors": {"spanmetrics", "servicegraph", "forward", "count", "routing"},
}  # fmt: skip
# Old spelling -> current one (collector 0.15x renamed components to snake_case; old names still load).
_RENAMED = {
    "exporters": {"otlphttp": "otlp_http", "otlp": "otlp_grpc"},
    "processors": {"k8sattributes": "k8s_attributes"},
    "receivers": {"filelog": "file_log", "k8scluster": "k8s_cluster", "k8sevents": "k8s_events"},
}
_KINDS = ("receivers", "processors", "exporters", "connectors")


def _type(name: str) -> str:
    return name.split("/", 1)[0]


def _check_types(doc: Doc, cfg: dict) -> None:
    for kind in (*_KINDS, "extensions"):
        for name in cfg.get(kind) or {}:
            t = _type(name)
            new = _RENAMED.get(kind, {}).get(t)
            if new:
                doc.warn("collector-deprecated-name", f"{kind}.{name}", f"{t!r} is the deprecated name of {new!r}",
                         f"rename it to {new}{name[len(t):]} (and in the pipelines)")  # fmt: skip
            elif t not in _KNOWN[kind]:
                near = difflib.get_close_matches(t, _KNOWN[kind] | set(_RENAMED.get(kind, {})), n=1)
                doc.error("collector-unknown-type", f"{kind}.{name}", f"unknown {kind[:-1]} type {t!r}; the collector "
                          "exits with \"unknown type\"", f"use {near[0]!r}" if near else f"use one of {sorted(_KNOWN[kind])}")


def _check_pipelines(doc: Doc, cfg: dict) -> None:
    pipelines = get(cfg, "service.pipelines") or {}
    if not pipelines:
        doc.error("collector-no-pipelines", "service.pipelines", "no pipelines: the collector does nothing",
                  "add service.pipelines.{traces,metrics,logs} with receivers and exporters")
    connectors = set(cfg.get("connectors") or {})
    for pname, p in pipelines.items():
        base = f"service.pipelines.{pname}"
        p = p or {}
        for kind in ("receivers", "processors", "exporters"):
            defined = set(cfg.get(kind) or {}) | (connectors if kind != "processors" else set())
            for i, name in enumerate(p.get(kind) or []):
                if name not in defined:
                    near = difflib.get_close_matches(name, defined, n=1)
                    doc.error("collector-undefined-component", f"{base}.{kind}[{i}]",
                              f"{kind[:-1]} {name!r} is not defined; the collector exits with \"references "
                              f"{kind[:-1]} {name} which is not configured\"",
                              f"use {near[0]!r}" if near else f"define {name} under {kind}")  # fmt: skip
        for kind in ("receivers", "exporters"):
            if not p.get(kind):
                doc.error("collector-incomplete-pipeline", base, f"pipeline has no {kind}", f"add at least one of {kind}")
        procs = p.get("processors") or []
        if "memory_limiter" in [_type(x) for x in procs] and _type(procs[0]) != "memory_limiter":
            doc.warn("collector-memory-limiter-order", f"{base}.processors", "memory_limiter is not the first processor",
                     "put memory_limiter first so it refuses data before others buffer it")
    for i, ext in enumerate(get(cfg, "service.extensions") or []):
        if ext not in (cfg.get("extensions") or {}):
            doc.error("collector-undefined-extension", f"service.extensions[{i}]", f"extension {ext!r} is not defined",
                      "define it under extensions or remove it from service.extensions")  # fmt: skip


def _check_exporters(doc: Doc, cfg: dict) -> None:
    for name, ex in (cfg.get("exporters") or {}).items():
        ex = ex or {}
        t, url = _type(name), str(ex.get("endpoint") or "")
        path, backend, where = path_of(url), backend_of(url), f"exporters.{name}.endpoint"
        if not url:
            continue
        if t in ("otlp_http", "otlphttp"):
            if path.endswith(("/v1/metrics", "/v1/logs", "/v1/traces")):
                doc.error("collector-endpoint-path", where, f"{url!r} ends with the signal path, which otlp_http appends "
                          "again (404)", f"use the base, e.g. {url.rsplit('/v1/', 1)[0]}")
            elif backend in ("mimir", "loki") and path != "/otlp":
                doc.error("collector-endpoint-path", where, f"{url!r}: {backend}'s OTLP endpoint is /otlp",
                          f"use {url.split(path, 1)[0] if path else url.rstrip('/')}/otlp")
            elif backend == "tempo" and ":4317" in url:
                doc.error("collector-endpoint-port", where, "otlp_http to Tempo's gRPC port 4317", "use port 4318")
        elif t in ("otlp_grpc", "otlp"):
            if url.startswith("http://") and url.endswith(":4318"):
                doc.error("collector-endpoint-port", where, f"{url!r} is an OTLP/HTTP address for a gRPC exporter",
                          "use host:4317, or the otlp_http exporter")
            elif path:
                doc.error("collector-endpoint-path", where, f"{url!r}: a gRPC endpoint has no path", "use host:port")
            if not url.startswith("https://") and in_cluster(url) and not get(ex, "tls.insecure"):
                doc.error("collector-grpc-tls", f"exporters.{name}", "plaintext in-cluster gRPC endpoint without "
                          "tls.insecure: true fails the TLS handshake", "add tls: {insecure: true}")
        elif t == "prometheusremotewrite":
            if backend == "mimir" and path != "/api/v1/push":
                doc.error("collector-endpoint-path", where, f"{url!r}: Mimir receives remote write at /api/v1/push",
                          "use <gateway>/api/v1/push")


_CLUSTER_KEYS = ("k8s.cluster.name", "cluster")


def _stamps_cluster(proc: object) -> bool:
    """Whether a processor's config sets a cluster resource attribute (resource/attributes with
    insert or upsert, or a transform statement naming it)."""
    if not isinstance(proc, dict):
        return False
    for a in proc.get("attributes") or []:
        if isinstance(a, dict) and a.get("key") in _CLUSTER_KEYS and a.get("action", "upsert") in ("insert", "upsert"):
            return True
    text = str(proc.get("trace_statements", "")) + str(proc.get("log_statements", "")) + str(proc.get("metric_statements", ""))
    return any(f'"{k}"' in text for k in _CLUSTER_KEYS)


def _check_cluster_label(doc: Doc, cfg: dict) -> None:
    """A collector sending to a stack outside its cluster (a workload cluster writing to the central
    one) must stamp the cluster on everything, or its data mixes with every other cluster's."""
    exporters, processors = cfg.get("exporters") or {}, cfg.get("processors") or {}
    for pname, p in (get(cfg, "service.pipelines") or {}).items():
        remote = [e for e in (p or {}).get("exporters") or [] if isinstance(exporters.get(e), dict)
                  and (url := str(exporters[e].get("endpoint") or "")) and "${" not in url and not in_cluster(url)]
        if remote and not any(_stamps_cluster(processors.get(x)) for x in (p or {}).get("processors") or []):
            doc.error("collector-cluster-label", f"service.pipelines.{pname}.processors", f"{pname} goes to "
                      f"{', '.join(remote)} outside this cluster without a cluster attribute: the central stack cannot "
                      "tell this cluster's data from the others'", "add a resource processor that upserts "
                      "k8s.cluster.name and cluster (e.g. resource/cluster) to the pipeline")  # fmt: skip


def check_collector(doc: Doc) -> None:
    cfg = doc.data if isinstance(doc.data, dict) else {}
    _check_types(doc, cfg)
    _check_pipelines(doc, cfg)
    _check_exporters(doc, cfg)
    _check_cluster_label(doc, cfg)


_MODES = ("deployment", "daemonset", "statefulset")


def check_collector_values(doc: Doc) -> None:
    """opentelemetry-collector chart values, and the collector config inside them."""
    v = doc.data
    mode = v.get("mode")
    if mode not in _MODES:
        near = difflib.get_close_matches(str(mode), _MODES, n=1)
        doc.error("collector-mode", "mode", f"mode {mode!r} is not one of {', '.join(_MODES)}; the chart refuses to render",
                  f"set mode: {near[0] if near else 'deployment'}")
    if not get(v, "image.repository"):
        doc.error("collector-image", "image.repository", "image.repository is not set; the chart refuses to render",
                  "set image.repository: otel/opentelemetry-collector-k8s")
    if "rewriteDeprecatedProcessorNames" in v:
        doc.error("collector-renamed-key", "rewriteDeprecatedProcessorNames", "renamed key: the chart's strict schema "
                  "rejects it", "use rewriteDeprecatedComponentNames")
    if get(v, "presets.logsCollection.enabled") and mode == "deployment":
        doc.warn("collector-logs-deployment", "presets.logsCollection", "logsCollection in deployment mode reads only "
                 "the logs of the node the pod runs on", "collect pod logs with a daemonset collector or the kms agent")
    key = "alternateConfig" if v.get("alternateConfig") else "config"
    if not isinstance(v.get(key), dict) or not v[key]:
        return
    sub = doc.sub(key)
    cfg = dict(sub.data)
    # Components the chart itself defines: `config` merges into its defaults; presets add theirs.
    extra: dict[str, dict] = {}
    if key == "config":
        extra = {kind: dict.fromkeys(names) for kind, names in _CHART_DEFAULTS.items()}
    for preset, comps in _PRESETS.items():
        if get(v, f"presets.{preset}.enabled"):
            for kind, name in comps:
                extra.setdefault(kind, {})[name] = None
    for kind, comps in extra.items():
        cfg[kind] = {**comps, **(cfg.get(kind) or {})}
    sub.data = cfg
    check_collector(sub)


_CHART_DEFAULTS = {"receivers": ["otlp", "jaeger", "zipkin", "prometheus"], "processors": ["batch", "memory_limiter"],
                   "exporters": ["debug"], "extensions": ["health_check"]}  # fmt: skip
_PRESETS = {
    "kubernetesAttributes": [("processors", "k8s_attributes")],
    "kubernetesEvents": [("receivers", "k8sobjects")],
    "logsCollection": [("receivers", "file_log")],
    "hostMetrics": [("receivers", "hostmetrics")],
    "kubeletMetrics": [("receivers", "kubeletstats")],
    "clusterMetrics": [("receivers", "k8s_cluster")],
}
