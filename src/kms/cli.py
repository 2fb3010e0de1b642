"""The ``kms`` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys

from kms import __version__
from kms.config import env_name, load_config
from kms.errors import KmsError

__all__ = ["main", "build_parser"]

# (flag, dotted config path, type, help). Each is also settable in the --config YAML file
# (same dotted path as nested keys) and by the environment variable KMS_<PATH>.
_UP_FLAGS: list[tuple[str, str, type, str]] = [
    ("--data-dir", "data_dir", str, "directory for the write-ahead log and, with the local backend, blocks (default ./kms-data)"),
    ("--host", "server.host", str, "address every listener binds to (default 127.0.0.1; 0.0.0.0 for all interfaces)"),
    ("--port", "server.port", int, "the HTTP API port: Tempo, OTLP/HTTP, /ready, /metrics (default 3200)"),
    ("--grpc-port", "server.grpc_port", int, "OTLP/gRPC port (default 4317; 0 disables)"),
    ("--otlp-http-port", "server.otlp_http_port", int, "OTLP/HTTP port (default 4318; 0 disables; OTLP/HTTP is also on --port)"),
    ("--storage", "storage.backend", str, "block storage backend: local (default) or s3"),
    ("--s3-endpoint", "storage.s3.endpoint", str, "S3-compatible endpoint, host:port or URL (MinIO, Ceph, AWS...)"),
    ("--s3-bucket", "storage.s3.bucket", str, "bucket for blocks (default kms)"),
    ("--s3-region", "storage.s3.region", str, "S3 region (default us-east-1)"),
    ("--s3-access-key", "storage.s3.access_key", str, "S3 access key"),
    ("--s3-secret-key", "storage.s3.secret_key", str, "S3 secret key (prefer KMS_STORAGE_S3_SECRET_KEY)"),
    ("--s3-path-style", "storage.s3.path_style", str, "path-style addressing: true (default) or false for virtual-hosted"),
    ("--s3-insecure", "storage.s3.insecure", str, "use plain http to the S3 endpoint: true or false (default)"),
    ("--s3-prefix", "storage.s3.prefix", str, "key prefix inside the bucket"),
    ("--retention", "storage.retention", str, "delete data older than this, e.g. 720h or 30d (default 0 = keep forever)"),
    ("--block-max-age", "storage.block_max_age", str, "cut the in-memory head into a block at least this often (default 5m)"),
    ("--head-max-rows", "storage.head_max_rows", int, "... or when one tenant's head of one signal holds this many rows (default 500000)"),
    ("--max-request-bytes", "limits.max_request_bytes", int, "largest accepted request body after decompression, 413 above (default 16 MiB)"),
    ("--ingestion-rate-bytes", "limits.ingestion_rate_bytes", int, "per-tenant ingestion rate in bytes/s, 429 above (default 64 MiB/s; 0 = unlimited)"),
    ("--ingestion-burst-bytes", "limits.ingestion_burst_bytes", int, "per-tenant ingestion burst in bytes (default 128 MiB)"),
    ("--memory-limit-mib", "limits.memory_limit_mib", int, "refuse writes (429 / RESOURCE_EXHAUSTED) above this resident memory (default 0 = 80%% of RAM)"),
    ("--max-label-names-per-series", "limits.max_label_names_per_series", int, "metric writes: most labels per series, 400 above (default 30)"),
    ("--max-label-name-length", "limits.max_label_name_length", int, "metric writes: longest label name (default 1024)"),
    ("--max-label-value-length", "limits.max_label_value_length", int, "metric writes: longest label value (default 2048)"),
    ("--max-series-per-tenant", "limits.max_series_per_tenant", int, "metric series one tenant may hold, 400 above (default 150000)"),
    ("--max-samples-per-request", "limits.max_samples_per_request", int, "metric samples in one write request, 400 above (default 1000000)"),
    ("--max-exemplars-per-tenant", "limits.max_exemplars_per_tenant", int, "newest exemplars kept per tenant, older ones dropped (default 100000; 0 = no bound)"),
    ("--max-search-traces", "limits.max_search_traces", int, "upper bound of a trace search's limit (default 1000)"),
    ("--query-timeout", "limits.query_timeout", str, "longest a query may run (default 60s)"),
    ("--multitenancy", "tenancy.required", str, "true: require X-Scope-OrgID on every request (401 without); default false"),
    ("--default-tenant", "tenancy.default_tenant", str, "tenant for requests without X-Scope-OrgID (default anonymous)"),
    ("--otlp-metric-suffixes", "metrics.otlp_metric_suffixes", str, "true (default): OTLP metric names get Prometheus's unit and _total suffixes; false: Mimir's names without"),
    ("--lookback-delta", "metrics.lookback_delta", str, "how far back PromQL instant selectors look for a sample (default 5m)"),
    ("--sample-cache-mib", "metrics.sample_cache_mib", int, "memory for decoded sample blocks that queries read (default 1024; 16 bytes a sample)"),
    ("--out-of-order-window", "metrics.out_of_order_window", str, "accept metric samples this much older than their series' newest (default 0s: in order only)"),
    ("--logs-max-line-size", "logs.max_line_size", int, "Loki push: longest log line in bytes, 400 above (default 262144)"),
    ("--logs-max-label-names-per-series", "logs.max_label_names_per_series", int, "Loki push: most index labels per stream (default 15)"),
    ("--logs-max-label-name-length", "logs.max_label_name_length", int, "Loki push: longest label name (default 1024)"),
    ("--logs-max-label-value-length", "logs.max_label_value_length", int, "Loki push: longest label value (default 2048)"),
    ("--logs-max-structured-metadata-size", "logs.max_structured_metadata_size", int, "Loki push: bytes of one entry's structured metadata (default 65536)"),
    ("--logs-max-structured-metadata-entries", "logs.max_structured_metadata_entries", int, "Loki push: structured metadata entries per line (default 128)"),
    ("--logs-reject-old-samples-max-age", "logs.reject_old_samples_max_age", str, "Loki push: refuse entries older than this (default 168h; 0 = any age)"),
    ("--logs-creation-grace-period", "logs.creation_grace_period", str, "Loki push: refuse entries this far in the future (default 10m; 0 = no check)"),
    ("--logs-out-of-order-window", "logs.out_of_order_window", str, "Loki push: accept entries this far behind their stream's newest (default 1h; 0 = any)"),
    ("--logs-ingestion-rate-bytes", "logs.ingestion_rate_bytes", int, "per-tenant log line bytes/s, 429 above (default 0 = only --ingestion-rate-bytes)"),
    ("--logs-ingestion-burst-bytes", "logs.ingestion_burst_bytes", int, "per-tenant log line burst in bytes (default 0 = twice the rate)"),
    ("--logs-per-stream-rate-bytes", "logs.per_stream_rate_bytes", int, "per-stream log line bytes/s, 429 above (default 3 MiB; 0 = off)"),
    ("--logs-per-stream-burst-bytes", "logs.per_stream_burst_bytes", int, "per-stream log line burst in bytes (default 15 MiB)"),
    ("--logs-max-entries-limit-per-query", "logs.max_entries_limit_per_query", int, "largest limit a Loki query may ask for (default 5000)"),
    ("--log-level", "server.log_level", str, "debug, info (default), warning or error"),
    ("--generator-enabled", "generator.enabled", str, "true (default): span metrics and service graphs from every span, into the same tenant; false: off"),
    ("--generator-collection-interval", "generator.collection_interval", str, "write the generated series this often (default 15s)"),
    ("--generator-stale-duration", "generator.stale_duration", str, "drop a generated series idle this long, with a staleness marker (default 15m)"),
    ("--generator-span-metrics-dimensions", "generator.span_metrics_dimensions", str, "comma-separated attributes added as span-metrics labels (resource, then span)"),
    ("--generator-span-metrics-buckets", "generator.span_metrics_buckets", str, "comma-separated latency buckets in seconds (default Tempo's 0.002,...,16.384)"),
    ("--generator-span-metrics-duration-alias", "generator.span_metrics_duration_alias", str, "true: also write traces_spanmetrics_duration_seconds_* (default false)"),
    ("--generator-service-graph-dimensions", "generator.service_graph_dimensions", str, "comma-separated attributes added as service-graph labels"),
    ("--generator-service-graph-buckets", "generator.service_graph_buckets", str, "comma-separated service-graph buckets in seconds (default 0.1,...,12.8)"),
    ("--generator-service-graph-wait", "generator.service_graph_wait", str, "how long half an edge waits for its other half (default 10s)"),
    ("--generator-service-graph-max-items", "generator.service_graph_max_items", int, "half edges waiting at most; more spans are dropped and counted (default 10000)"),
    ("--generator-enable-client-server-prefix", "generator.enable_client_server_prefix", str, "true: service-graph dimensions as client_<dim> and server_<dim> (default false)"),
    ("--generator-enable-virtual-node-label", "generator.enable_virtual_node_label", str, "true: label virtual-node edges virtual_node=client|server (default false)"),
    ("--generator-peer-attributes", "generator.peer_attributes", str, "comma-separated span attributes naming an uninstrumented peer (virtual nodes)"),
    ("--generator-remote-write-url", "generator.remote_write_url", str, "also send the generated series to this Prometheus/Mimir remote-write URL (tenant in X-Scope-OrgID)"),
    ("--generator-send-exemplars", "generator.send_exemplars", str, "true: remote write sends exemplars too (default false)"),
    ("--rules", "rules.files", str, "Prometheus-format rule file, directory or glob (repeatable or comma-separated); PromQL and LogQL metric rules"),
    ("--rules-evaluation-interval", "rules.evaluation_interval", str, "evaluation interval of groups without their own (default 1m)"),
    ("--rules-poll-interval", "rules.poll_interval", str, "reload rule files whose mtime changed this often (default 5s; 0 = only on SIGHUP)"),
    ("--alertmanager-url", "rules.alertmanager_urls", str, "Alertmanager base URL to send alerts to (API v2), or file:PATH of a Prometheus file-SD list (repeatable or comma-separated)"),
    ("--alert-webhook-url", "rules.webhook_urls", str, "URL that gets alerts as Alertmanager's webhook payload (repeatable or comma-separated)"),
    ("--external-label", "rules.external_labels", str, "NAME=VALUE label added to every alert sent, e.g. cluster=prod (repeatable)"),
    ("--external-url", "rules.external_url", str, "base URL of this stack for alerts' generatorURL (default http://<host>:<port>)"),
    ("--rules-resend-delay", "rules.resend_delay", str, "re-send firing and resolved alerts this often (default 1m)"),
    ("--rules-for-grace-period", "rules.for_grace_period", str, "after a restart an alert with a longer for fires no sooner than this (default 10m)"),
    ("--rules-outage-tolerance", "rules.outage_tolerance", str, "restore alerts' for state across outages up to this long (default 1h)"),
    ("--rules-from-kubernetes", "rules.kubernetes", str, "true: also evaluate PrometheusRule objects read from the Kubernetes API (default false)"),
    ("--rules-kubernetes-namespace", "rules.kubernetes_namespaces", str, "namespace to read PrometheusRule objects from (repeatable; default all)"),
    ("--rules-kubernetes-selector", "rules.kubernetes_selector", str, "label selector of the PrometheusRule objects, e.g. role=alert-rules"),
    ("--kubeconfig", "kubernetes.kubeconfig", str, "kubeconfig file (default: the pod's service account in a cluster, else $KUBECONFIG or ~/.kube/config)"),
    ("--scrape-config", "scrape.config_files", str, "Prometheus config file(s) whose global and scrape_configs are scraped (comma-separated); scrape_configs may also sit at the top level of --config"),
    ("--scrape-tenant", "scrape.tenant", str, "tenant the scraped samples are stored in (default: the default tenant)"),
    ("--scrape-kubernetes-monitors", "scrape.kubernetes_monitors", str, "true: also scrape what ServiceMonitor and PodMonitor objects in the Kubernetes API select (default false)"),
    ("--scrape-monitor-namespace", "scrape.monitor_namespaces", str, "namespace to read ServiceMonitors and PodMonitors from (repeatable; default all)"),
    ("--scrape-monitor-selector", "scrape.monitor_selector", str, "label selector of the ServiceMonitors and PodMonitors, e.g. release=kube-prometheus-stack"),
    ("--scrape-monitor-role", "scrape.monitor_role", str, "discovery role of ServiceMonitors: endpoints (default) or endpointslice"),
]

#: Modules that add further commands: each has ``register(subparsers)``, which adds its parsers
#: and sets ``run`` (a function of the parsed arguments returning the exit code) as their default.
_COMMAND_MODULES: list[str] = ["kms.verify.command", "kms.demo.command", "kms.deploy.commands", "kms.agent.command"]

#: Flags that may be given several times; their values are joined with commas (list settings).
_REPEATABLE = {"rules.files", "rules.alertmanager_urls", "rules.webhook_urls", "rules.external_labels",
               "rules.kubernetes_namespaces", "scrape.config_files", "scrape.monitor_namespaces"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kms",
        description="kube-monitoring-stack: traces, metrics and logs in one place, linked by trace id.",
    )
    p.add_argument("--version", action="version", version=f"kms {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser(
        "up",
        help="run the whole stack in this process (OTLP and remote write receivers, storage, query APIs)",
        description=(
            "Run the embedded stack in one process: OTLP/gRPC and OTLP/HTTP receivers, durable storage "
            "(write-ahead log + blocks on local disk or S3), Prometheus remote write, and the Tempo- and "
            "Prometheus-compatible HTTP APIs. Every option is "
            "also settable in the YAML file given with --config (nested keys of the dotted path shown as "
            "[path]) and by the environment variable KMS_<PATH> (dots become underscores, upper case). "
            "Precedence: flag > environment > file > default."
        ),
    )
    up.add_argument("--config", metavar="FILE", help="YAML configuration file")
    for flag, path, typ, help_text in _UP_FLAGS:
        extra = {"action": "append"} if path in _REPEATABLE else {}
        up.add_argument(flag, dest=path, type=typ, default=None, metavar=path.rsplit(".", 1)[-1].upper(),
                        help=f"{help_text} [{path}; env {env_name(path)}]", **extra)
    gr = sub.add_parser(
        "grafana",
        help="write a Grafana provisioning folder: data sources linked by trace id, and kms's dashboards",
        description=(
            "Write DIR/provisioning/datasources/kms.yaml (Prometheus, Loki and Tempo data sources pointed "
            "at kms, with exemplar, log and span links between them), DIR/provisioning/dashboards/kms.yaml "
            "(a file provider) and DIR/dashboards/*.json (application RED and stack self-monitoring)."
        ),
    )
    gr.add_argument("-o", "--output", metavar="DIR", default="grafana", help="output directory (default ./grafana)")
    gr.add_argument("--url", default="http://localhost:3200",
                    help="kms's HTTP API as Grafana reaches it (default http://localhost:3200)")
    gr.add_argument("--tenant", default=None, help="send X-Scope-OrgID: TENANT from every data source")
    up.set_defaults(run=_up)
    gr.set_defaults(run=_grafana)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def _up(args: argparse.Namespace) -> int:
    overrides = {path: getattr(args, path) for _, path, _, _ in _UP_FLAGS}
    for path in _REPEATABLE:
        if overrides.get(path) is not None:
            overrides[path] = ",".join(overrides[path])
    cfg = load_config(args.config, overrides)
    from kms.server import Stack  # after the config is known good: a bad flag fails fast
    logging.basicConfig(level=cfg.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stack = Stack(cfg)
    try:
        asyncio.run(stack.run())
    except KeyboardInterrupt:
        pass
    # Stopped cleanly: every row is in blocks or the WAL, every file closed. Leave without the
    # interpreter's teardown, which spent ~0.3 s of CPU freeing memory the OS takes back at once.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _grafana(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kms.grafana import write

    files = write(Path(args.output), args.url, args.tenant)
    root = files[0].parents[2]
    for f in files:
        print(f"wrote {f}")
    print(
        f"\nPoint Grafana at it (GF_PATHS_PROVISIONING={root / 'provisioning'} or copy the two kms.yaml files "
        "into its provisioning/datasources and provisioning/dashboards folders; the dashboard provider "
        f"reads {root / 'dashboards'}), e.g.:\n"
        f"  docker run --network host -v {root}:{root} -e GF_PATHS_PROVISIONING={root / 'provisioning'} "
        "grafana/grafana\n"
        f"Data sources Metrics, Logs and Traces query kms at {args.url}; the dashboards are in the 'kms' folder."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KmsError as e:
        print(f"kms: {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
