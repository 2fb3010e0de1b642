"""The ``kms`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
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
]


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
        up.add_argument(flag, dest=path, type=typ, default=None, metavar=path.rsplit(".", 1)[-1].upper(),
                        help=f"{help_text} [{path}; env {env_name(path)}]")
    return p


def _up(args: argparse.Namespace) -> int:
    overrides = {path: getattr(args, path) for _, path, _, _ in _UP_FLAGS}
    cfg = load_config(args.config, overrides)
    from kms.server import Stack  # after the config is known good: a bad flag fails fast
    logging.basicConfig(level=cfg.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stack = Stack(cfg)
    try:
        asyncio.run(stack.run())
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "up":
            return _up(args)
    except KmsError as e:
        print(f"kms: {e.message}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
