"""``kms agent``: collection without a query side. It receives OTLP, reads the machine's metrics
and tails log files, adds its external labels (``cluster``, …) and forwards everything to a
central stack through a queue on disk, so a central outage of minutes to hours loses nothing and
is caught up in order.

    OTLP traces, logs ──► + resource attributes ─────────────► queue ─► OTLP/HTTP /v1/{traces,logs}
    OTLP metrics ───────► + data point attributes ───────────► queue ─► OTLP/HTTP /v1/metrics
    host metrics ───────► + labels ──────────────────────────► queue ─► remote write /api/v1/push
    tailed files ───────► Loki streams + labels ─────────────► queue ─► Loki push /loki/api/v1/push

A write is acknowledged to its sender once it is in the queue (fsynced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cramjam
import uvicorn
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.agent.forward import Forwarder
from kms.agent.hostmetrics import HostMetrics
from kms.agent.queue import DiskQueue
from kms.agent.tail import FileTailer, LogLine
from kms.logs.logproto import PushRequest
from kms.metrics.remote_write import encode_batch
from kms.metrics.samples import SampleBatch
from kms.otlp import OtlpGrpcServer, otlp_routes
from kms.tenancy import TenantResolver

__all__ = ["Agent", "AgentSettings", "with_labels"]

log = logging.getLogger("kms.agent")


@dataclass
class AgentSettings:
    remote: str  # the central stack's API URL (kms up's port 3200)
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


def with_labels(batch: SampleBatch, labels: dict[str, str]) -> SampleBatch:
    """The batch with ``labels`` added to every series that lacks them (Prometheus's external
    labels never override a series' own)."""
    if not labels:
        return batch
    series = []
    for ls in batch.series:
        have = dict(ls)
        series.append(tuple(sorted({**labels, **have}.items())))
    return SampleBatch(series, batch.series_idx, batch.ts_ms, batch.values, batch.exemplars, batch.metadata)


def _add_point_attributes(payload: bytes, labels: dict[str, str]) -> bytes:
    """External labels on OTLP metrics: as attributes of every data point (a point's own win), so
    the central stack's translation makes them series labels; resource attributes would only
    reach ``target_info``."""
    req = ExportMetricsServiceRequest.FromString(payload)
    extra = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items()]
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                for dp in getattr(m, kind).data_points if kind else ():
                    have = {kv.key for kv in dp.attributes}
                    dp.attributes.extend(kv for kv in extra if kv.key not in have)
    return req.SerializeToString()


def _add_resource_attributes(signal: str, payload: bytes, labels: dict[str, str]) -> bytes:
    req = (ExportTraceServiceRequest if signal == "traces" else ExportLogsServiceRequest).FromString(payload)
    for rs in (req.resource_spans if signal == "traces" else req.resource_logs):
        have = {kv.key for kv in rs.resource.attributes}
        rs.resource.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v))
                                      for k, v in labels.items() if k not in have)
    return req.SerializeToString()


def loki_push(lines: list[LogLine], labels: dict[str, str]) -> bytes:
    """Tailed lines as a snappy Loki push request, one stream per file."""
    req = PushRequest()
    streams: dict[str, object] = {}
    for ln in lines:
        s = streams.get(ln.path)
        if s is None:
            ls = {**labels, "filename": ln.path}
            s = streams[ln.path] = req.streams.add()
            s.labels = "{" + ", ".join(f'{k}="{_esc(v)}"' for k, v in sorted(ls.items())) + "}"
        e = s.entries.add()
        e.timestamp.seconds, e.timestamp.nanos = divmod(ln.ts_ns, 1_000_000_000)
        e.line = ln.line
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class _Queued:
    """What the OTLP receivers answer: the request is queued, nothing refused."""

    rejected: int = 0
    message: str = ""


class _AgentCollector(Collector):
    def __init__(self, agent: Agent):
        self.agent = agent

    def collect(self):
        q, f = self.agent.queue, self.agent.forwarder
        yield GaugeMetricFamily("kms_agent_queue_records", "Records waiting for the central stack.", value=q.pending())
        yield GaugeMetricFamily("kms_agent_queue_bytes", "Bytes of the queue's segments on disk.", value=q.bytes())
        yield CounterMetricFamily("kms_agent_queue_dropped_records", "Oldest records dropped at the queue's bound.",
                                  value=q.dropped_records)
        sent = CounterMetricFamily("kms_agent_sent_records", "Records the central stack took, by kind.", labels=["kind"])
        refused = CounterMetricFamily("kms_agent_refused_records", "Records the central stack refused for good.",
                                      labels=["kind"])
        for kind in sorted(set(f.sent) | set(f.refused)):
            sent.add_metric([kind], f.sent[kind])
            refused.add_metric([kind], f.refused[kind])
        yield sent
        yield refused
        yield CounterMetricFamily("kms_agent_send_retries", "Sends retried (central unavailable).", value=f.retries)


class Agent:
    def __init__(self, s: AgentSettings):
        self.s = s
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.queue = DiskQueue(s.data_dir / "queue", s.max_queue_bytes)
        self.forwarder = Forwarder(self.queue, s.remote)
        self.tenants = TenantResolver(s.tenant, False)
        self.labels = dict(s.external_labels)
        self.host = HostMetrics(instance=socket.gethostname()) if s.host_metrics else None
        self.tailer = (FileTailer(s.log_paths, s.data_dir / "positions.json", self._queue_lines)
                       if s.log_paths else None)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kms-agent")
        self.registry = CollectorRegistry()
        self.registry.register(_AgentCollector(self))
        self._stop = asyncio.Event()
        self._threads_stop = threading.Event()

    # -- inputs --
    def export(self, signal: str, tenant: str, payload: bytes) -> _Queued:
        """An OTLP request: queued durably before it is acknowledged."""
        if self.labels:
            payload = (_add_point_attributes(payload, self.labels) if signal == "metrics"
                       else _add_resource_attributes(signal, payload, self.labels))
        self.queue.append([({"traces": "t", "logs": "l", "metrics": "x"}[signal], tenant, payload)])
        return _Queued()

    def queue_samples(self, batch: SampleBatch, tenant: str | None = None) -> None:
        if len(batch):
            self.queue.append([("m", tenant or self.s.tenant, encode_batch(with_labels(batch, self.labels)))])

    def _queue_lines(self, lines: list[LogLine]) -> None:
        labels = {"job": self.s.log_job, "host": socket.gethostname(), **self.labels}
        self.queue.append([("p", self.s.tenant, loki_push(lines, labels))])

    def _host_loop(self) -> None:
        while True:
            try:
                self.queue_samples(self.host.collect())
            except Exception:  # noqa: BLE001 - keep collecting
                log.exception("host metrics")
            if self._threads_stop.wait(self.s.host_metrics_interval_s):
                return

    # -- lifecycle --
    def _app(self) -> Starlette:
        async def ready(_: Request) -> Response:
            return PlainTextResponse("ready")

        async def metrics(_: Request) -> Response:
            return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4; charset=utf-8")

        routes = [Route("/ready", ready), Route("/metrics", metrics)]
        routes += otlp_routes(self.export, self.tenants, self.s.max_request_bytes)
        return Starlette(routes=routes)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        self.forwarder.start()
        threads = []
        if self.host:
            threads.append(threading.Thread(target=self._host_loop, name="kms-agent-host", daemon=True))
        for t in threads:
            t.start()
        if self.tailer:
            self.tailer.start()
        grpc = OtlpGrpcServer(self.export, self.tenants, self.executor, self.s.max_request_bytes)
        if self.s.grpc_port:
            grpc.add_port(self.s.host, self.s.grpc_port)
        await grpc.start()
        server = uvicorn.Server(uvicorn.Config(self._app(), host=self.s.host, port=self.s.otlp_http_port,
                                               log_level="warning", lifespan="off", access_log=False))
        server.capture_signals = contextlib.nullcontext  # the agent owns SIGTERM/SIGINT
        serve = asyncio.create_task(server.serve())
        while not server.started:
            if serve.done():
                raise SystemExit(f"the agent's HTTP listener failed to start on port {self.s.otlp_http_port}")
            await asyncio.sleep(0.01)
        log.info("kms agent ready: OTLP/gRPC %s:%d, OTLP/HTTP and /metrics http://%s:%d; forwarding to %s "
                 "(%d records queued)", self.s.host, self.s.grpc_port, self.s.host, self.s.otlp_http_port,
                 self.s.remote, self.queue.pending())
        await self._stop.wait()
        t0 = time.perf_counter()
        server.should_exit = True
        await grpc.stop(5.0)
        await serve
        self._threads_stop.set()
        if self.tailer:
            await loop.run_in_executor(None, self.tailer.stop)
        await loop.run_in_executor(None, self.forwarder.stop)
        self.executor.shutdown(wait=True)
        self.queue.close()
        log.info("kms agent stopped in %.2fs; %d records stay queued for the next start", time.perf_counter() - t0,
                 self.queue.pending())
