"""One typed configuration model: defaults < YAML file (``--config``) < environment < flags.

Every setting has a dotted path (``storage.s3.bucket``), an environment variable
(``KMS_STORAGE_S3_BUCKET``) and, for the common ones, a command-line flag.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kms.errors import BadInput

__all__ = [
    "Config",
    "ServerConfig",
    "StorageConfig",
    "S3Config",
    "LimitsConfig",
    "TenancyConfig",
    "MetricsConfig",
    "GeneratorConfig",
    "RulesConfig",
    "KubernetesConfig",
    "ScrapeConfig",
    "load_config",
    "parse_duration",
    "env_name",
]


@dataclass
class S3Config:
    endpoint: str = ""  # host:port or URL of any S3-compatible store; empty = AWS
    bucket: str = "kms"
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    path_style: bool = True  # MinIO and most S3-compatible stores want path-style addressing
    insecure: bool = False  # plain http
    prefix: str = ""  # key prefix inside the bucket


@dataclass
class StorageConfig:
    backend: str = "local"  # local | s3
    retention: str = "0"  # Go-style duration (e.g. 720h, 30d); 0 keeps data forever
    block_max_age: str = "5m"  # cut the head into a block at least this often
    head_max_rows: int = 500_000  # ... or when a tenant's head of one signal holds this many rows
    s3: S3Config = field(default_factory=S3Config)


@dataclass
class LimitsConfig:
    max_request_bytes: int = 16 * 1024 * 1024  # per request, after decompression (413 above)
    ingestion_rate_bytes: int = 64 * 1024 * 1024  # per tenant, per second (429 above)
    ingestion_burst_bytes: int = 128 * 1024 * 1024
    memory_limit_mib: int = 0  # refuse writes (429) above this RSS; 0 = 80% of the machine's memory
    max_search_traces: int = 1000  # upper bound for a search's limit
    max_label_names_per_series: int = 30  # metric writes: Mimir's defaults, 400 above
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_series_per_tenant: int = 150_000  # metric series a tenant may hold (Mimir's default); 400 above
    max_samples_per_request: int = 1_000_000  # metric samples in one write request; 400 above
    max_exemplars_per_tenant: int = 100_000  # newest exemplars kept (to within one block); 0 = no bound
    query_timeout: str = "60s"


@dataclass
class TenancyConfig:
    required: bool = False  # when true, a write or read without X-Scope-OrgID gets 401
    default_tenant: str = "anonymous"


@dataclass
class MetricsConfig:
    otlp_metric_suffixes: bool = True  # Prometheus's OTLP names (unit, _total, _ratio); false = Mimir's, without
    lookback_delta: str = "5m"  # how far back an instant selector looks for a sample
    sample_cache_mib: int = 1024  # decoded sample blocks kept in memory for queries (16 B a sample)
    out_of_order_window: str = "0s"  # accept samples this much older than their series' newest; 0 = in order only


@dataclass
class LogsConfig:
    """Loki's push validation and query limits, with Loki's defaults (400 / 429 above them)."""

    max_line_size: int = 256 * 1024  # bytes of one log line
    max_label_names_per_series: int = 15  # index labels of one stream
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_structured_metadata_size: int = 64 * 1024  # bytes of one entry's structured metadata
    max_structured_metadata_entries: int = 128
    reject_old_samples_max_age: str = "168h"  # refuse older entries; 0 = any age
    creation_grace_period: str = "10m"  # refuse entries this far in the future; 0 = no check
    out_of_order_window: str = "1h"  # accept entries this far behind their stream's newest; 0 = any
    ingestion_rate_bytes: int = 0  # per tenant, line bytes/s; 0 = only limits.ingestion_rate_bytes
    ingestion_burst_bytes: int = 0  # 0 = twice the rate
    per_stream_rate_bytes: int = 3 * 1024 * 1024  # per stream, line bytes/s; 0 = off
    per_stream_burst_bytes: int = 15 * 1024 * 1024
    max_entries_limit_per_query: int = 5000  # largest ``limit`` a Loki query may ask for


@dataclass
class GeneratorConfig:
    """The metrics generator (Tempo's span metrics and service graphs) writing into the same tenant."""

    enabled: bool = True
    collection_interval: str = "15s"  # samples are written this often (Tempo's default)
    stale_duration: str = "15m"  # a series idle this long is dropped with a staleness marker
    span_metrics_dimensions: list[str] = field(default_factory=list)  # extra labels: resource, then span attributes
    span_metrics_buckets: list[str] = field(default_factory=list)  # seconds; empty = Tempo's 0.002 .. 16.384
    span_metrics_duration_alias: bool = False  # also write traces_spanmetrics_duration_seconds_*
    service_graph_dimensions: list[str] = field(default_factory=list)
    service_graph_buckets: list[str] = field(default_factory=list)  # seconds; empty = Tempo's 0.1 .. 12.8
    service_graph_wait: str = "10s"  # how long a half edge waits for its other half
    service_graph_max_items: int = 10_000  # half edges waiting at most; spans beyond are dropped (counted)
    enable_client_server_prefix: bool = False  # service-graph dimensions as client_<dim> and server_<dim>
    enable_virtual_node_label: bool = False  # virtual_node="client"|"server" on virtual-node edges
    peer_attributes: list[str] = field(default_factory=lambda: ["peer.service", "db.name", "db.system",
                                                                  "db.system.name"])
    remote_write_url: str = ""  # also send the generated series to this Prometheus/Mimir remote-write URL
    send_exemplars: bool = False  # ... with their exemplars


@dataclass
class RulesConfig:
    """The ruler: Prometheus-format rule files (PromQL and LogQL), alert notification."""

    files: list[str] = field(default_factory=list)  # rule files, directories or globs (default tenant's rules)
    evaluation_interval: str = "1m"  # for groups without their own interval (Prometheus's default)
    poll_interval: str = "5s"  # re-read rule files whose mtime changed this often; 0 = only on SIGHUP
    alertmanager_urls: list[str] = field(default_factory=list)  # Alertmanager base URLs (POST <url>/api/v2/alerts)
    webhook_urls: list[str] = field(default_factory=list)  # plain webhooks get Alertmanager's webhook payload
    external_labels: list[str] = field(default_factory=list)  # NAME=VALUE added to alerts (e.g. cluster=prod)
    external_url: str = ""  # alerts' generatorURL base; empty = http://<host>:<port>
    resend_delay: str = "1m"  # re-send firing and resolved alerts this often (Prometheus's default)
    for_grace_period: str = "10m"  # after a restart, an alert fires no sooner than this (alerts with a longer for)
    outage_tolerance: str = "1h"  # restore alerts' for state across outages up to this long
    kubernetes: bool = False  # also evaluate PrometheusRule objects read from the Kubernetes API
    kubernetes_namespaces: list[str] = field(default_factory=list)  # namespaces to read them from; empty = all
    kubernetes_selector: str = ""  # label selector of the PrometheusRule objects, e.g. role=alert-rules


@dataclass
class KubernetesConfig:
    """How kms reaches the Kubernetes API (PrometheusRule objects)."""

    kubeconfig: str = ""  # empty: in-cluster service account in a pod, else $KUBECONFIG or ~/.kube/config


@dataclass
class ScrapeConfig:
    """Prometheus pull scraping (``kms.collect``). The jobs are Prometheus's own ``global`` and
    ``scrape_configs`` sections: at the top level of the ``--config`` file and/or in Prometheus
    config files named here (their other sections are not read)."""

    config_files: list[str] = field(default_factory=list)  # Prometheus config files: their global + scrape_configs
    tenant: str = ""  # tenant the scraped samples are stored in; empty = tenancy.default_tenant
    # ServiceMonitor and PodMonitor objects read from the Kubernetes API (credentials: kubernetes.kubeconfig)
    kubernetes_monitors: bool = False  # scrape what they select, as the Prometheus Operator would
    monitor_namespaces: list[str] = field(default_factory=list)  # namespaces to read them from; empty = all
    monitor_selector: str = ""  # label selector of the monitors, e.g. release=kube-prometheus-stack
    monitor_role: str = "endpoints"  # ServiceMonitors' discovery role: endpoints or endpointslice
    # The --config file's own sections, as written (not settings: no flag, no environment variable),
    # and the file (relative kubeconfig_file paths in them are read from its directory; SIGHUP re-reads it).
    global_section: dict = field(default_factory=dict, metadata={"raw": True})
    scrape_configs: list = field(default_factory=list, metadata={"raw": True})
    config_file: str = field(default="", metadata={"raw": True})


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3200  # the one HTTP API port: Tempo, Prometheus/Mimir, Loki, OTLP/HTTP, /ready, /metrics
    grpc_port: int = 4317  # OTLP/gRPC
    otlp_http_port: int = 4318  # OTLP/HTTP (also served on the API port)
    log_level: str = "info"


@dataclass
class Config:
    data_dir: Path = Path("./kms-data")
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    tenancy: TenancyConfig = field(default_factory=TenancyConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    # The --config file's OpenTelemetry Collector sections (receivers, processors, exporters,
    # extensions, service), as written, and the file; kms.pipeline reads them.
    pipeline: dict = field(default_factory=dict, metadata={"raw": True})
    pipeline_file: str = field(default="", metadata={"raw": True})


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


#: Top-level sections of an OpenTelemetry Collector configuration (accepted in kms up's --config).
COLLECTOR_SECTIONS = ("receivers", "processors", "exporters", "extensions", "connectors", "service")


def parse_duration(text: str | int | float) -> float:
    """Go/Prometheus-style duration ("1h30m", "720h", "15d", "250ms", "0") -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip()
    if s in ("0", ""):
        return 0.0
    total, num, i = 0.0, "", 0
    while i < len(s):
        c = s[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = next((u for u in ("ms", "us", "µs", "ns") if s.startswith(u, i)), c)
        if not num or unit not in _UNITS:
            raise BadInput(f"invalid duration {text!r}")
        total += float(num) * _UNITS[unit]
        num = ""
        i += len(unit)
    if num:
        raise BadInput(f"invalid duration {text!r}: missing unit")
    return total


def env_name(path: str) -> str:
    return "KMS_" + path.replace(".", "_").upper()


def _fields(cls) -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls) if not f.metadata.get("raw")}


def _coerce(value: Any, typ: Any, path: str) -> Any:
    try:
        if typing.get_origin(typ) is list:  # a YAML list, or a comma-separated string (flags, environment)
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(v).strip() for v in items if str(v).strip()]
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if typ is int:
            return int(value)
        if typ is Path:
            return Path(value)
        return str(value)
    except (TypeError, ValueError) as e:
        raise BadInput(f"config {path}: invalid value {value!r}") from e


def _apply(obj: Any, doc: dict, prefix: str) -> None:
    fields = _fields(type(obj))
    for key, value in doc.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise BadInput(f"config: unknown setting {prefix}{key!r} (known: {', '.join(sorted(fields))})")
        _, typ = fields[name]
        if dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise BadInput(f"config {prefix}{key}: expected a mapping")
            _apply(getattr(obj, name), value, f"{prefix}{name}.")
        else:
            setattr(obj, name, _coerce(value, typ, prefix + name))


def _apply_env(obj: Any, prefix: str, environ: typing.Mapping[str, str]) -> None:
    for name, (_, typ) in _fields(type(obj)).items():
        path = prefix + name
        if dataclasses.is_dataclass(typ):
            _apply_env(getattr(obj, name), path + ".", environ)
        elif env_name(path) in environ:
            setattr(obj, name, _coerce(environ[env_name(path)], typ, path))


def set_path(cfg: Config, path: str, value: Any) -> None:
    """Set one dotted setting (used by command-line flags)."""
    *parents, last = path.split(".")
    obj = cfg
    for p in parents:
        obj = getattr(obj, p)
    _, typ = _fields(type(obj))[last]
    setattr(obj, last, _coerce(value, typ, path))


def all_paths(cls=Config, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, type, default) for every leaf setting."""
    out = []
    inst = cls()
    for name, (_, typ) in _fields(cls).items():
        if dataclasses.is_dataclass(typ):
            out += all_paths(typ, prefix + name + ".")
        else:
            out.append((prefix + name, typ, getattr(inst, name)))
    return out


def load_config(
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: typing.Mapping[str, str] | None = None,
) -> Config:
    cfg = Config()
    if file:
        try:
            doc = yaml.safe_load(Path(file).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise BadInput(f"cannot read config file {file}: {e}") from e
        if not isinstance(doc, dict):
            raise BadInput(f"config file {file}: expected a mapping at the top level")
        # Prometheus's scrape sections, kept as written (kms.collect reads them)
        cfg.scrape.global_section = doc.pop("global", None) or {}
        cfg.scrape.scrape_configs = doc.pop("scrape_configs", None) or []
        cfg.scrape.config_file = str(file)
        collector = {k: doc.pop(k) for k in COLLECTOR_SECTIONS if k in doc}
        if collector:
            cfg.pipeline, cfg.pipeline_file = collector, str(file)
        _apply(cfg, doc, "")
    _apply_env(cfg, "", os.environ if environ is None else environ)
    for path, value in (overrides or {}).items():
        if value is not None:
            set_path(cfg, path, value)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    if cfg.storage.backend not in ("local", "s3"):
        raise BadInput(f"config storage.backend: {cfg.storage.backend!r} is not one of local, s3")
    if cfg.storage.backend == "s3" and not cfg.storage.s3.bucket:
        raise BadInput("config storage.s3.bucket: required for the s3 backend")
    for p in ("storage.retention", "storage.block_max_age", "limits.query_timeout", "metrics.lookback_delta",
              "logs.reject_old_samples_max_age", "logs.creation_grace_period", "logs.out_of_order_window",
              "generator.collection_interval", "generator.stale_duration", "generator.service_graph_wait",
              "rules.evaluation_interval", "rules.poll_interval", "rules.resend_delay", "rules.for_grace_period",
              "rules.outage_tolerance"):
        obj = cfg
        for part in p.split("."):
            obj = getattr(obj, part)
        parse_duration(obj)
    for name in ("span_metrics_buckets", "service_graph_buckets"):
        try:
            [float(b) for b in getattr(cfg.generator, name)]
        except ValueError:
            raise BadInput(f"config generator.{name}: {getattr(cfg.generator, name)} are not numbers (seconds)") from None
    for item in cfg.rules.external_labels:
        name, eq, _ = item.partition("=")
        if not eq or not name.strip():
            raise BadInput(f"config rules.external_labels: {item!r} is not NAME=VALUE")
    for name in ("port", "grpc_port", "otlp_http_port"):
        v = getattr(cfg.server, name)
        if not 0 <= v < 65536:
            raise BadInput(f"config server.{name}: {v} is not a port number")
    if cfg.scrape.scrape_configs or cfg.scrape.global_section or cfg.scrape.config_files:
        from kms.collect import load_jobs  # the scrape jobs fail here, before anything starts

        load_jobs(cfg.scrape.global_section, cfg.scrape.scrape_configs, cfg.scrape.config_files,
                  str(Path(cfg.scrape.config_file).parent) if cfg.scrape.config_file else "")
    if cfg.scrape.monitor_role not in ("endpoints", "endpointslice"):
        raise BadInput(f"config scrape.monitor_role: {cfg.scrape.monitor_role!r} is not endpoints or endpointslice")
