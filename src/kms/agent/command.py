"""``kms agent``: flags and the YAML file (same keys as the flags, snake_case) -> AgentSettings."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from pathlib import Path

import yaml

from kms.agent.agent import Agent, AgentSettings
from kms.config import parse_duration
from kms.errors import BadInput
from kms.mallopt import release_large_buffers
from kms.pipeline.config import PipelineConfig, is_collector_layout, load_pipeline_config

__all__ = ["register", "settings_from"]

_FLAGS: list[tuple[str, str, str]] = [  # flag, setting, help
    ("--remote", "remote", "the central stack's API URL, e.g. http://central:3200 (required)"),
    ("--data-dir", "data_dir", "directory for the forwarding queue and file positions (default ./kms-agent-data)"),
    ("--host", "host", "address the OTLP listeners bind to (default 127.0.0.1; 0.0.0.0 for all)"),
    ("--grpc-port", "grpc_port", "OTLP/gRPC port (default 4317; 0 disables)"),
    ("--otlp-http-port", "otlp_http_port", "OTLP/HTTP port, also /ready and /metrics (default 4318)"),
    ("--tenant", "tenant", "X-Scope-OrgID of what the agent sends (default anonymous)"),
    ("--max-queue-bytes", "max_queue_bytes", "disk the queue may use; beyond it the oldest records are dropped (default 1 GiB)"),
    ("--host-metrics", "host_metrics", "true (default): this machine's metrics under node-exporter's names; false: off"),
    ("--host-metrics-interval", "host_metrics_interval_s", "how often host metrics are read (default 15s)"),
    ("--log-job", "log_job", "the job label of tailed log lines (default kms-agent)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agent",
        help="collect on this machine (OTLP, host metrics, log files) and forward to a central stack",
        description=(
            "A light collector with no query side: receives OTLP, reads this machine's metrics "
            "(node-exporter names) and tails log files, adds --external-label labels and forwards "
            "everything to a central kms up through a queue on disk that survives central outages and "
            "agent restarts. --config takes either the OpenTelemetry Collector's layout (receivers otlp, "
            "hostmetrics, file_log/filelog; processors batch, memory_limiter, attributes, resource; exporters "
            "otlp_http/otlphttp, prometheusremotewrite, debug, kms; extension health_check) or the flags' "
            "settings as YAML (keys as the flags in snake_case, external_labels a mapping, log_paths a list)."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="YAML settings file")
    for flag, dest, help_text in _FLAGS:
        p.add_argument(flag, dest=dest, default=None, help=help_text)
    p.add_argument("--external-label", dest="external_labels", action="append", metavar="NAME=VALUE",
                   help="label added to everything forwarded, e.g. cluster=eu-1 (repeatable)")
    p.add_argument("--log-path", dest="log_paths", action="append", metavar="GLOB",
                   help="log files to tail, e.g. '/var/log/app/*.log' (repeatable)")
    p.add_argument("--log-level", default="info", help="debug, info (default), warning or error")
    p.set_defaults(run=_run)


def _coerce(name: str, value: object, default: object) -> object:
    try:
        if name == "host_metrics_interval_s":
            return parse_duration(value if isinstance(value, str) else f"{value}s")
        if isinstance(default, bool):
            if str(value).lower() in ("1", "true", "yes", "on", "false", "0", "no", "off"):
                return str(value).lower() in ("1", "true", "yes", "on")
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, Path):
            return Path(str(value))
        return value
    except (TypeError, ValueError):
        raise BadInput(f"agent setting {name}: invalid value {value!r}") from None


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise BadInput(f"--external-label {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def settings_from(args: argparse.Namespace) -> tuple[AgentSettings, PipelineConfig | None]:
    """The agent's settings, and its pipelines when --config is in the collector's layout."""
    doc: dict = {}
    pipelines = None
    if args.config:
        try:
            doc = yaml.safe_load(Path(args.config).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise BadInput(f"cannot read agent config {args.config}: {e}") from None
        if not isinstance(doc, dict):
            raise BadInput(f"agent config {args.config}: expected a mapping")
        if is_collector_layout(doc):
            pipelines = load_pipeline_config(args.config, doc)
            doc = {}
    fields = {f.name: f for f in dataclasses.fields(AgentSettings)}
    aliases = {"host_metrics_interval": "host_metrics_interval_s"}
    values: dict = {}
    for key, value in doc.items():
        name = aliases.get(key.replace("-", "_"), key.replace("-", "_"))
        if name not in fields:
            raise BadInput(f"agent config {args.config}: unknown setting {key!r} (known: {', '.join(sorted(fields))})")
        values[name] = value
    for _, dest, _ in _FLAGS:
        if getattr(args, dest) is not None:
            values[dest] = getattr(args, dest)
    labels = dict(values.pop("external_labels", None) or {})
    labels.update(_labels(args.external_labels or []))
    paths = list(values.pop("log_paths", None) or []) + list(args.log_paths or [])
    if not values.get("remote") and pipelines is None:
        raise BadInput("kms agent needs --remote URL (the central stack's API, e.g. http://central:3200) or "
                       "--config in the OpenTelemetry Collector's layout")
    defaults = AgentSettings()
    kw = {k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()}
    return AgentSettings(**kw, external_labels=labels, log_paths=paths), pipelines


def _run(args: argparse.Namespace) -> int:
    settings, pipelines = settings_from(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    release_large_buffers()
    agent = Agent(settings, pipelines)  # a bad configuration fails here, before anything listens
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        pass
    return 0
