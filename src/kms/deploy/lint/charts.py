"""Checks of chart values: kube-prometheus-stack, mimir-distributed, loki, tempo and the operator.
Each names the key, the symptom and the fix (shared/specs/k8s-charts.md section 4)."""

from __future__ import annotations

import difflib

from kms.deploy.lint.findings import Doc, get
from kms.deploy.lint.urls import backend_of, in_cluster, path_of, s3_endpoint_problem

__all__ = ["check_prometheus", "check_mimir", "check_loki", "check_tempo", "check_operator", "LOKI_MODES"]

LOKI_MODES = ("SingleBinary", "SimpleScalable", "Distributed", "Monolithic", "SingleBinary<->SimpleScalable",
              "SimpleScalable<->Distributed")  # fmt: skip


def _push_url(doc: Doc, where: str, url: str) -> None:
    if backend_of(url) == "mimir" and path_of(url) != "/api/v1/push":
        doc.error("remote-write-path", where, f"{url!r}: Mimir receives remote write at /api/v1/push (404 otherwise)",
                  "use http://<release>-mimir-gateway.<namespace>.svc/api/v1/push")


def check_prometheus(doc: Doc) -> None:
    spec = get(doc.data, "prometheus.prometheusSpec") or {}
    base = "prometheus.prometheusSpec"
    agent = bool(get(doc.data, "prometheus.agentMode"))
    for i, rw in enumerate(spec.get("remoteWrite") or []):
        where = f"{base}.remoteWrite[{i}]"
        if rw.get("sendExemplars") is not True:
            doc.error("prometheus-send-exemplars", where, "remote write without sendExemplars: exemplars never reach Mimir",
                      "add sendExemplars: true")
        _push_url(doc, f"{where}.url", str(rw.get("url", "")))
    if spec.get("remoteWrite") and not agent and "exemplar-storage" not in (spec.get("enableFeatures") or []):
        doc.warn("prometheus-exemplar-storage", f"{base}.enableFeatures", "exemplar-storage is off: scraped exemplars "
                 "are dropped before remote write", "add enableFeatures: [exemplar-storage]")
    if not get(spec, "externalLabels.cluster"):
        # An agent writes into a central store shared with other clusters, a Thanos sidecar uploads
        # into a shared bucket: there, series collide (and Thanos cannot tell the blocks apart).
        report = doc.error if agent or spec.get("thanos") else doc.warn
        report("prometheus-cluster-label", f"{base}.externalLabels", "no `cluster` external label: series of "
               "several clusters collide and the Kubernetes dashboards' cluster picker is empty",
               "set externalLabels.cluster: <cluster name>")
    for sel in ("serviceMonitor", "podMonitor", "rule"):
        if spec.get(f"{sel}SelectorNilUsesHelmValues", True) is not False:
            doc.warn("prometheus-selector", f"{base}.{sel}SelectorNilUsesHelmValues", f"{sel}s without the "
                     "`release: <name>` label are ignored", f"set {sel}SelectorNilUsesHelmValues: false")


def check_mimir(doc: Doc) -> None:
    cfg = get(doc.data, "mimir.structuredConfig") or {}
    base = "mimir.structuredConfig"
    if not get(cfg, "limits.max_global_exemplars_per_user"):
        doc.error("mimir-exemplars", f"{base}.limits", "max_global_exemplars_per_user is 0 (the default): Mimir drops "
                  "every exemplar", f"set {base}.limits.max_global_exemplars_per_user: 100000")
    if "nginx" in doc.data:
        doc.error("mimir-nginx", "nginx", "the top-level nginx section was removed in mimir-distributed 6.0",
                  "move its settings to gateway")
    s3 = get(cfg, "common.storage.s3") or {}
    ep = str(s3.get("endpoint") or "")
    if ep and (why := s3_endpoint_problem(ep)):
        doc.error("s3-endpoint-scheme", f"{base}.common.storage.s3.endpoint", why, "write host:port and set insecure")
    elif ep and in_cluster(ep) and not s3.get("insecure"):
        doc.warn("s3-insecure", f"{base}.common.storage.s3", "in-cluster store over http without insecure: true",
                 "add insecure: true (TLS errors otherwise)")
    if get(doc.data, "kafka.enabled", True) is not False and get(cfg, "ingest_storage.enabled") is not False:
        doc.warn("mimir-kafka", "kafka", "mimir-distributed 6 runs ingest storage on Kafka by default",
                 f"for small installs set kafka.enabled: false and {base}.ingest_storage.enabled: false")


def check_loki(doc: Doc) -> None:
    v = doc.data
    mode = v.get("deploymentMode", "Monolithic")
    if mode not in LOKI_MODES:
        near = difflib.get_close_matches(str(mode), LOKI_MODES, n=1)
        doc.error("loki-deployment-mode", "deploymentMode", f"{mode!r} is not a deployment mode: the chart renders "
                  "silently with no write, read or backend workloads", f"use {near[0] if near else 'SimpleScalable'!r}")
    storage = get(v, "loki.storage") or {}
    if mode == "SimpleScalable":
        if storage.get("type", "s3") == "filesystem":
            doc.error("loki-ssd-storage", "loki.storage.type", "SimpleScalable needs object storage", "use type: s3")
        rf = get(v, "loki.commonConfig.replication_factor", 3)
        writes = get(v, "write.replicas", 3)
        if writes < rf or (rf >= 3 and writes < 2):
            doc.error("loki-write-replicas", "write.replicas", f"{writes} write replicas for replication_factor {rf}: "
                      "pushes fail with \"at least 2 live replicas required\"", f"set write.replicas: {max(rf, 3)}")
    if storage.get("type", "s3") == "s3":
        names = storage.get("bucketNames") or {}
        for b in ("chunks", "ruler", "admin"):
            if not names.get(b):
                doc.error("loki-bucket-names", f"loki.storage.bucketNames.{b}", f"bucket for {b} is not set; the chart "
                          f"fails with \"Please define loki.storage.bucketNames.{b}\"", f"set loki.storage.bucketNames.{b}")
        s3 = storage.get("s3") or {}
        ep = str(s3.get("endpoint") or "")
        if ep and (why := s3_endpoint_problem(ep)):
            doc.error("s3-endpoint-scheme", "loki.storage.s3.endpoint", why, "write host:port and set insecure: true for http")
        elif ep and in_cluster(ep) and not s3.get("s3ForcePathStyle"):
            doc.warn("s3-path-style", "loki.storage.s3", "in-cluster store without s3ForcePathStyle: bucket names "
                     "become host names that do not resolve", "add s3ForcePathStyle: true")
    configs = get(v, "loki.schemaConfig.configs")
    if not configs and not get(v, "loki.useTestSchema"):
        doc.error("loki-schema", "loki.schemaConfig", "no schemaConfig: the chart refuses to render",
                  "add loki.schemaConfig.configs: [{from: 2024-04-01, store: tsdb, object_store: s3, schema: v13, "
                  "index: {prefix: loki_index_, period: 24h}}]")
    elif configs and configs[-1].get("schema") != "v13":
        doc.warn("loki-schema", "loki.schemaConfig.configs", f"newest schema is {configs[-1].get('schema')!r}; "
                 "structured metadata (trace ids of OTLP logs) needs v13", "add a v13/tsdb period starting tomorrow")
    if get(v, "minio.enabled") and not v.get("ignoreMinioDeprecation"):
        doc.error("loki-minio", "minio.enabled", "MinIO is archived; the community chart refuses minio.enabled "
                  "without ignoreMinioDeprecation", "use an external S3 endpoint or the stack's seaweedfs store")
    if get(v, "loki.limits_config.allow_structured_metadata") is False:
        doc.warn("loki-structured-metadata", "loki.limits_config.allow_structured_metadata", "structured metadata is "
                 "off: OTLP logs lose trace_id and the Logs -> Traces link", "set it to true (schema v13)")


def check_tempo(doc: Doc) -> None:
    t = doc.data.get("tempo") or {}
    gen = t.get("metricsGenerator") or {}
    if gen.get("enabled"):
        procs = get(t, "overrides.defaults.metrics_generator.processors") or []
        if not {"service-graphs", "span-metrics"} <= set(procs):
            doc.error("tempo-generator-processors", "tempo.overrides.defaults.metrics_generator.processors",
                      f"metrics generator on with processors {procs}: no span metrics or service graph are produced",
                      "set processors: [service-graphs, span-metrics, local-blocks]")
        if gen.get("remoteWriteUrl"):
            doc.error("tempo-remote-write-shortcut", "tempo.metricsGenerator.remoteWriteUrl", "the remoteWriteUrl "
                      "shortcut cannot send exemplars", "use tempo.metricsGenerator.storage.remote_write with send_exemplars: true")
        rws = get(gen, "storage.remote_write") or []
        if not rws and not gen.get("remoteWriteUrl"):
            doc.error("tempo-remote-write", "tempo.metricsGenerator.storage", "the generator writes nowhere",
                      "add storage.remote_write: [{url: <mimir>/api/v1/push, send_exemplars: true}]")
        for i, rw in enumerate(rws):
            where = f"tempo.metricsGenerator.storage.remote_write[{i}]"
            if rw.get("send_exemplars") is not True:
                doc.error("tempo-send-exemplars", where, "remote write without send_exemplars: span-metric exemplars "
                          "never reach Mimir", "add send_exemplars: true")
            _push_url(doc, f"{where}.url", str(rw.get("url", "")))
    s3 = get(t, "storage.trace.s3") or {}
    ep = str(s3.get("endpoint") or "")
    if ep and (why := s3_endpoint_problem(ep)):
        doc.error("s3-endpoint-scheme", "tempo.storage.trace.s3.endpoint", why, "write host:port and set insecure: true")
    elif ep and in_cluster(ep) and not s3.get("insecure"):
        doc.warn("s3-insecure", "tempo.storage.trace.s3", "in-cluster store over http without insecure: true",
                 "add insecure: true (TLS errors otherwise)")


def check_operator(doc: Doc) -> None:
    aw = doc.data.get("admissionWebhooks") or {}
    if "autoGenerateCert" in (aw.get("certManager") or {}):
        doc.error("operator-cert-key", "admissionWebhooks.certManager.autoGenerateCert", "wrong key: the chart's schema "
                  "rejects it", "use admissionWebhooks.autoGenerateCert.enabled with certManager.enabled: false")
    if get(aw, "certManager.enabled", True) is not False and get(aw, "autoGenerateCert.enabled") is not False:
        doc.warn("operator-cert-manager", "admissionWebhooks.certManager.enabled", "cert-manager is required (the "
                 "default); without it install fails with \"no matches for kind Certificate\"",
                 "set certManager.enabled: false and autoGenerateCert.enabled: true unless cert-manager is installed")
