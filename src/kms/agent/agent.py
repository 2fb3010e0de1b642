"""``kms agent``: collection without a query side. It receives OTLP, reads the machine's metrics
and tails log files, adds its external labels (``cluster``, …) and forwards everything through
queues on disk, so a central outage of minutes to hours loses nothing and is caught up in order.

What goes where is a pipeline configuration (:mod:`kms.pipeline`): the OpenTelemetry
Collector's layout given with ``--config``, or, from the flags alone, this one:

    receivers otlp, hostmetrics, file_log ──► exporter kms (the central stack's API port):
      OTLP traces, logs, metrics ──► OTLP/HTTP /v1/{traces,logs,metrics}
      host metrics ──────────────► remote write /api/v1/push
      tailed lines ──────────────► Loki push /loki/api/v1/push (filename, host, job + labels)

A write is acknowledged to its sender once it is in a queue (fsynced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.agent.labels import with_labels
from kms.errors import BadInput
from kms.otlp import OtlpGrpcServer, otlp_routes
from kms.pipeline.config import Component, Pipeline, PipelineConfig
from kms.pipeline.exporters import QueuedExporter
from kms.pipeline.items import Item
from kms.pipeline.receivers import Receivers, endpoint
from kms.pipeline.runtime import Pipelines
from kms.tenancy import TenantResolver

__all__ = ["Agent", "AgentSettings", "with_labels", "flags_config"]

log = logging.getLogger("kms.agent")


@dataclass
class AgentSettings:
    remote: str = ""  # the central stack's API URL (kms up's port 3200); not needed with --config
    data_dir: Path = Path("./kms-agent-data")
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    otlp_http_port: int = 4318
    tenant: str = "anonymous"  # X-Scope-OrgID of what the agent sends (OTLP senders may name their own)
    external_labels: dict[str, str] = field(default_factory=dict)
    max_queue_bytes: int = 1 << 30
    host_metrics: bool = True
    host_metrics_interval_s: float = 15.0
    log_paths: list[str] = field(default_factory=list)
    log_job: str = "kms-agent"
    max_request_bytes: int = 16 << 20


def flags_config(s: AgentSettings) -> PipelineConfig:
    """The pipelines of an agent configured by flags alone."""
    cfg = PipelineConfig("(flags)")

    def add(kind: str, cid: str, ctype: str, settings: dict) -> None:
        cfg.components[(kind, cid)] = Component(kind, cid, ctype, settings, 0)

    add("receivers", "otlp", "otlp", {"protocols": {"grpc": {"endpoint": f"{s.host}:{s.grpc_port}"} if s.grpc_port
                                                    else None, "http": {"endpoint": f"{s.host}:{s.otlp_http_port}"}}})
    metrics = ["otlp"]
    logs = ["otlp"]
    if s.host_metrics:
        add("receivers", "hostmetrics", "hostmetrics", {"collection_interval": f"{s.host_metrics_interval_s}s"})
        metrics.append("hostmetrics")
    if s.log_paths:
        add("receivers", "file_log", "file_log", {"include": list(s.log_paths), "start_at": "beginning",
                                                  "include_file_name": False})  # filename is a stream label
        logs.append("file_log")
    add("exporters", "kms", "kms", {"endpoint": s.remote,
                                    "line_labels": {"job": s.log_job, "host": socket.gethostname()}})
    cfg.pipelines = [Pipeline("traces", "traces", ["otlp"], [], ["kms"]),
                     Pipeline("metrics", "metrics", metrics, [], ["kms"]),
                     Pipeline("logs", "logs", logs, [], ["kms"])]
    return cfg


@dataclass
class _Queued:
    """What the OTLP receivers answer: the request is queued, nothing refused."""

    rejected: int = 0
    message: str = ""


class _AgentCollector(Collector):
    def __init__(self, agent: Agent):
        self.agent = agent

    def collect(self):
        queued = [e for e in self.agent.pipelines.exporters.values() if isinstance(e, QueuedExporter)]
        families = {
            "records": GaugeMetricFamily("kms_agent_queue_records", "Records waiting to be sent.", labels=["exporter"]),
            "bytes": GaugeMetricFamily("kms_agent_queue_bytes", "Bytes of the queue's segments on disk.",
                                       labels=["exporter"]),
            "dropped": CounterMetricFamily("kms_agent_queue_dropped_records", "Oldest records dropped at the "
                                           "queue's bound.", labels=["exporter"]),
            "retries": CounterMetricFamily("kms_agent_send_retries", "Sends retried (receiver unavailable).",
                                           labels=["exporter"]),
        }
        sent = CounterMetricFamily("kms_agent_sent_records", "Records delivered, by kind.", labels=["exporter", "kind"])
        refused = CounterMetricFamily("kms_agent_refused_records", "Records refused for good.",
                                      labels=["exporter", "kind"])
        for e in queued:
            q, f = e.queue, e.forwarder
            families["records"].add_metric([e.cid], q.pending())
            families["bytes"].add_metric([e.cid], q.bytes())
            families["dropped"].add_metric([e.cid], q.dropped_records)
            families["retries"].add_metric([e.cid], f.retries)
            for kind in sorted(set(f.sent) | set(f.refused)):
                sent.add_metric([e.cid, kind], f.sent[kind])
                refused.add_metric([e.cid, kind], f.refused[kind])
        yield from families.values()
        yield sent
        yield refused


class Agent:
    def __init__(self, s: AgentSettings, cfg: PipelineConfig | None = None):
        self.s = s
        if cfg is None and not s.remote:
            raise BadInput("kms agent needs --remote URL (the central stack's API) or --config with exporters")
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg or flags_config(s)
        self.pipelines = Pipelines(self.cfg, s.data_dir, s.max_queue_bytes, s.external_labels)
        self.tenants = TenantResolver(s.tenant, False)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kms-agent")
        self.registry = CollectorRegistry()
        self.registry.register(_AgentCollector(self))
        self._stop = asyncio.Event()
        self.receivers = Receivers(self.pipelines, s.data_dir, s.tenant)
        self.otlp = self.receivers.otlp

    def export(self, signal_name: str, tenant: str, payload: bytes) -> _Queued:
        """An OTLP request: through the pipelines into the exporters' queues before it is acknowledged."""
        self.pipelines.receive(self.otlp[0], Item(signal_name, tenant, otlp=payload))
        return _Queued()

    # -- lifecycle --
    def _app(self) -> Starlette:
        async def ready(_: Request) -> Response:
            return PlainTextResponse("ready")

        async def metrics(_: Request) -> Response:
            return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4; charset=utf-8")

        routes = [Route("/ready", ready), Route("/metrics", metrics)]
        if self.otlp is not None:
            routes += otlp_routes(self.export, self.tenants, self.s.max_request_bytes)
        return Starlette(routes=routes)

    def _listeners(self) -> tuple[tuple[str, int] | None, tuple[str, int]]:
        protocols = self.otlp[1] if self.otlp else {}
        cid = self.otlp[0] if self.otlp else "otlp"
        grpc = endpoint(cid, (protocols.get("grpc") or {}).get("endpoint", "0.0.0.0:4317")) \
            if "grpc" in protocols and protocols["grpc"] is not None else None
        http = endpoint(cid, (protocols.get("http") or {}).get("endpoint", "0.0.0.0:4318")) \
            if protocols.get("http") is not None or "http" in protocols else None
        return grpc, http or (self.s.host, self.s.otlp_http_port)  # /ready and /metrics are always served

    async def _health_check(self, cid: str) -> tuple[uvicorn.Server, asyncio.Task]:
        """The collector's health_check extension: 200 on its endpoint once the agent runs."""
        at = endpoint(cid, self.cfg.get("extensions", cid).settings.get("endpoint") or "localhost:13133")

        async def health(_: Request) -> Response:
            return Response('{"status":"Server available"}', media_type="application/json")

        srv = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/", health)]), host=at[0], port=at[1],
                                            log_level="warning", lifespan="off", access_log=False))
        srv.capture_signals = contextlib.nullcontext
        task = asyncio.create_task(srv.serve())
        while not srv.started and not task.done():
            await asyncio.sleep(0.01)
        return srv, task

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        self.pipelines.start()
        self.receivers.start()
        grpc_at, http_at = self._listeners()
        grpc = OtlpGrpcServer(self.export, self.tenants, self.executor, self.s.max_request_bytes)
        if grpc_at and self.otlp:
            grpc.add_port(*grpc_at)
        await grpc.start()
        server = uvicorn.Server(uvicorn.Config(self._app(), host=http_at[0], port=http_at[1], log_level="warning",
                                               lifespan="off", access_log=False))
        server.capture_signals = contextlib.nullcontext  # the agent owns SIGTERM/SIGINT
        serve = asyncio.create_task(server.serve())
        extra = []
        for host, port, app in self.receivers.listeners:  # zipkin
            srv = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                                access_log=False))
            srv.capture_signals = contextlib.nullcontext
            extra.append((srv, asyncio.create_task(srv.serve())))
        while not server.started or not all(srv.started for srv, _ in extra):
            if serve.done() or any(t.done() for _, t in extra):
                raise SystemExit("an agent listener failed to start (is the port in use?)")
            await asyncio.sleep(0.01)
        health = [await self._health_check(c) for c in self.cfg.extensions
                  if self.cfg.components.get(("extensions", c)) is not None]
        log.info("kms agent ready: %s; /ready and /metrics on http://%s:%d; exporters %s",
                 f"OTLP/gRPC {grpc_at[0]}:{grpc_at[1]}" if grpc_at else "no OTLP/gRPC", http_at[0], http_at[1],
                 ", ".join(self.pipelines.exporters))
        await self._stop.wait()
        t0 = time.perf_counter()
        server.should_exit = True
        for srv, task in [*health, *extra]:
            srv.should_exit = True
            await task
        await grpc.stop(5.0)
        await serve
        await loop.run_in_executor(None, self.receivers.stop)
        await loop.run_in_executor(None, self.pipelines.stop)
        self.executor.shutdown(wait=True)
        log.info("kms agent stopped in %.2fs", time.perf_counter() - t0)
