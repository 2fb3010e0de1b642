"""One process: receivers -> store -> APIs. Components start in dependency order and stop in
reverse; startup and shutdown durations are logged.

    telemetry -> object store -> store (WAL replay) -> metrics generator -> receiver
      -> HTTP API (Tempo, Prometheus, Loki, remote write, Loki push, OTLP/HTTP, rules) + OTLP/HTTP + OTLP/gRPC
      -> notifier -> ruler (rule files are checked at construction; evaluation starts once the store is open)
      -> scrape manager (Prometheus scrape_configs; scraped samples take the remote-write path)
      -> ServiceMonitor/PodMonitor watcher (their scrape configs become jobs of the scrape manager)
      -> collector pipelines (--config in the collector's layout: OTLP and pull receivers -> processors
         -> this store and/or forwarding exporters)

Listeners open first and answer 503 until the store has replayed its WAL, so ``GET /ready``
is 200 exactly when writes can be accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.collect import CONFIG_GROUP, MonitorJobs, ScrapeManager, load_jobs, reload_jobs
from kms.config import Config, GeneratorConfig, parse_duration
from kms.errors import KmsError
from kms.generator import Generator, GeneratorSettings
from kms.generator.remote import RemoteWriter
from kms.limits import MemoryLimiter, RateLimiter, SeriesLimits
from kms.logs import bytecopy, record_wire, recordids
from kms.logs.api import LokiApi
from kms.logs.push import push_routes
from kms.logs.schema import LOGS
from kms.logs.storage import StoreLogSource, chunkread, chunks, linevars
from kms.logs.validate import LogLimits, Validator
from kms.mallopt import keep_freed_memory
from kms.metrics.admission import SampleAdmission
from kms.metrics.api import PrometheusApi
from kms.metrics.federate import federate_routes
from kms.metrics.push import remote_write_routes
from kms.metrics.store import EXEMPLARS, HISTOGRAMS, SAMPLES, SampleCache, StoreSeriesSource
from kms.otlp import OtlpGrpcServer, otlp_routes
from kms.pipeline.stack import StackPipelines
from kms.receive import Receiver
from kms.rules import EvalContext, Notifier, Ruler, RulerSettings, RuleStore, rules_routes
from kms.rules.kubernetes import PrometheusRuleWatcher, client_factory
from kms.rules.metrics import RulerCollector
from kms.storage import LocalObjectStore, ObjectStore, S3ObjectStore, Store, StoreConfig
from kms.telemetry import RequestTimer, Telemetry
from kms.tenancy import TenantResolver
from kms.traces.api import TempoApi
from kms.traces.schema import TRACES

__all__ = ["Stack", "make_object_store"]

log = logging.getLogger("kms")


def make_object_store(cfg: Config) -> ObjectStore:
    st = cfg.storage
    if st.backend == "s3":
        s3 = st.s3
        return S3ObjectStore(
            s3.bucket, endpoint=s3.endpoint, region=s3.region, access_key=s3.access_key,
            secret_key=s3.secret_key, path_style=s3.path_style, scheme="http" if s3.insecure else "https",
            prefix=s3.prefix,
        )
    return LocalObjectStore(Path(cfg.data_dir) / "blocks")


def _log_limits(cfg: Config) -> LogLimits:
    lg = cfg.logs
    return LogLimits(
        max_line_size=lg.max_line_size, max_label_names_per_series=lg.max_label_names_per_series,
        max_label_name_length=lg.max_label_name_length, max_label_value_length=lg.max_label_value_length,
        max_structured_metadata_size=lg.max_structured_metadata_size,
        max_structured_metadata_entries=lg.max_structured_metadata_entries,
        reject_old_samples_max_age_s=parse_duration(lg.reject_old_samples_max_age),
        creation_grace_period_s=parse_duration(lg.creation_grace_period),
        out_of_order_window_s=parse_duration(lg.out_of_order_window),
    )


def _generator_settings(g: GeneratorConfig) -> GeneratorSettings:
    s = GeneratorSettings(
        collection_interval_s=parse_duration(g.collection_interval), stale_s=parse_duration(g.stale_duration),
        span_metrics_dimensions=list(g.span_metrics_dimensions), duration_alias=g.span_metrics_duration_alias,
        service_graph_dimensions=list(g.service_graph_dimensions), wait_s=parse_duration(g.service_graph_wait),
        max_items=g.service_graph_max_items, client_server_prefix=g.enable_client_server_prefix,
        peer_attributes=list(g.peer_attributes), virtual_node_label=g.enable_virtual_node_label,
    )
    if g.span_metrics_buckets:
        s.span_metrics_buckets = [float(b) for b in g.span_metrics_buckets]
    if g.service_graph_buckets:
        s.service_graph_buckets = [float(b) for b in g.service_graph_buckets]
    return s


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the Stack owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class Stack:
    def __init__(self, cfg: Config):
        # Arrow's bundled allocator keeps freed memory for reuse; after a block cut that is
        # hundreds of MiB never returned. The system allocator gives large blocks back
        # (bench_traces: peak RSS at 1M spans fell from 1.19 GiB to 0.89 GiB in-process).
        pa.set_memory_pool(pa.system_memory_pool())
        keep_freed_memory()  # ... but blocks under 32 MiB stay in the heap for reuse
        self.cfg = cfg
        self.telemetry = Telemetry()
        self.tenants = TenantResolver(cfg.tenancy.default_tenant, cfg.tenancy.required)
        self.objstore = make_object_store(cfg)
        retention = parse_duration(cfg.storage.retention)
        self.store = Store(
            StoreConfig(
                data_dir=Path(cfg.data_dir),
                head_max_rows=cfg.storage.head_max_rows,
                # Compaction holds a whole merged block in memory: merging only up to the size
                # of a cut keeps that bounded (bench_traces: 1M-row merges peaked at 1.2 GiB).
                compaction_target_rows=cfg.storage.head_max_rows,
                head_max_age_s=parse_duration(cfg.storage.block_max_age),
                retention_s=retention or None,
                max_rows={EXEMPLARS.name: cfg.limits.max_exemplars_per_tenant} if cfg.limits.max_exemplars_per_tenant else {},
            ),
            self.objstore,
            [TRACES, LOGS, SAMPLES, EXEMPLARS, HISTOGRAMS],
        )
        self.telemetry.watch_store(self.store.stats)
        lim = cfg.limits
        # the generator writes through the receiver's sample path into the spans' own tenant
        gen = cfg.generator
        self.generator = (Generator(_generator_settings(gen),
                                    lambda tenant, batch: self.receiver.store_samples(tenant, batch),
                                    remote=RemoteWriter(gen.remote_write_url, gen.send_exemplars)
                                    if gen.remote_write_url else None)
                          if gen.enabled else None)
        self.receiver = Receiver(
            self.store,
            RateLimiter(lim.ingestion_rate_bytes, lim.ingestion_burst_bytes),
            MemoryLimiter.from_mib(lim.memory_limit_mib),
            self.telemetry,
            otlp_metric_suffixes=cfg.metrics.otlp_metric_suffixes,
            series_limits=SeriesLimits(lim.max_label_names_per_series, lim.max_label_name_length,
                                       lim.max_label_value_length),
            admission=SampleAdmission(int(parse_duration(cfg.metrics.out_of_order_window) * 1000),
                                      lim.max_series_per_tenant, lim.max_samples_per_request),
            log_validator=Validator(_log_limits(cfg)),
            log_rate=RateLimiter(cfg.logs.ingestion_rate_bytes, cfg.logs.ingestion_burst_bytes
                                 or 2 * cfg.logs.ingestion_rate_bytes) if cfg.logs.ingestion_rate_bytes else None,
            log_stream_rate=RateLimiter(cfg.logs.per_stream_rate_bytes, cfg.logs.per_stream_burst_bytes)
            if cfg.logs.per_stream_rate_bytes else None,
            on_spans=self.generator.consume if self.generator else None,
        )
        self.tempo = TempoApi(self.store, self.tenants.for_read, self.telemetry, lim.max_search_traces,
                              parse_duration(lim.query_timeout))
        self.sample_cache = SampleCache(cfg.metrics.sample_cache_mib << 20)
        self.prometheus = PrometheusApi(
            lambda tenants: StoreSeriesSource(self.store, tenants, self.sample_cache),
            self.tenants.for_read,
            self.telemetry,
            lookback_delta_ms=int(parse_duration(cfg.metrics.lookback_delta) * 1000),
            query_timeout_s=parse_duration(lim.query_timeout),
        )
        self.loki = LokiApi(lambda tenants: StoreLogSource(self.store, tenants), self.tenants.for_read, self.telemetry,
                            query_timeout_s=parse_duration(lim.query_timeout),
                            max_entries_limit=cfg.logs.max_entries_limit_per_query)
        # the ruler reads and writes the store like the APIs and receivers do; bad rule files fail here
        self.notifier = Notifier(cfg.rules.alertmanager_urls, cfg.rules.webhook_urls)
        self.ruler = self._make_ruler(cfg)
        self.ruler.reload()
        self.rule_watcher = self._make_rule_watcher(cfg)
        self.telemetry.registry.register(RulerCollector(self.ruler, self.notifier))
        # scraped samples go through the remote-write door (readiness, memory and rate limits,
        # series limits, admission) into one tenant
        sc = cfg.scrape
        scrape_tenant = sc.tenant or cfg.tenancy.default_tenant
        jobs = load_jobs(sc.global_section, sc.scrape_configs, sc.config_files,
                         str(Path(sc.config_file).parent) if sc.config_file else "")
        # a manager wherever jobs may come (a reload of the files may add the first ones)
        self.scraper = (ScrapeManager(jobs, lambda batch: self.receiver.export_samples(scrape_tenant, batch))
                        if jobs or sc.kubernetes_monitors or sc.config_file or sc.config_files else None)
        self.monitor_jobs = (MonitorJobs(self.scraper, cfg.kubernetes.kubeconfig, list(sc.monitor_namespaces),
                                         sc.monitor_selector, sc.monitor_role, sc.global_section)
                             if self.scraper and sc.kubernetes_monitors else None)
        self.prometheus.scrape_targets = lambda: self.scraper
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kms-write")
        # --config in the OpenTelemetry Collector's layout: OTLP through its pipelines
        self.pipelines = (StackPipelines(cfg.pipeline_file, cfg.pipeline, Path(cfg.data_dir), self.receiver,
                                         cfg.tenancy.default_tenant) if cfg.pipeline else None)
        self.otlp_export = self.pipelines.export if self.pipelines else self.receiver.export
        self.app = self._http_app()
        self._stop = asyncio.Event()
        self._servers: list[_Uvicorn] = []
        self.grpc: OtlpGrpcServer | None = None

    def _make_ruler(self, cfg: Config) -> Ruler:
        from kms.logs.logql import LogQLEngine
        from kms.metrics.promql import Engine

        rc = cfg.rules
        lookback_ms = int(parse_duration(cfg.metrics.lookback_delta) * 1000)

        def source(tenant: str) -> StoreSeriesSource:
            return StoreSeriesSource(self.store, [tenant], self.sample_cache)

        ctx = EvalContext(
            promql=lambda tenant, q, t_ms: Engine(source(tenant), lookback_delta_ms=lookback_ms).instant(q, t_ms),
            logql=lambda tenant, q, t_ms: LogQLEngine(StoreLogSource(self.store, [tenant])).instant(
                q, t_ms * 1_000_000)[0],
            select=lambda tenant, matchers, lo, hi: source(tenant).select(matchers, lo, hi),
            write=lambda tenant, batch: self.receiver.store_samples(tenant, batch),
            send=self.notifier.send,
            external_labels=dict(item.split("=", 1) for item in rc.external_labels),
            external_url=(rc.external_url or f"http://{cfg.server.host}:{cfg.server.port}").rstrip("/"),
            resend_s=parse_duration(rc.resend_delay),
            for_grace_s=parse_duration(rc.for_grace_period),
            outage_tolerance_s=parse_duration(rc.outage_tolerance),
        )
        settings = RulerSettings(list(rc.files), cfg.tenancy.default_tenant, parse_duration(rc.evaluation_interval),
                                 parse_duration(rc.poll_interval))
        return Ruler(settings, ctx, RuleStore(Path(cfg.data_dir) / "rules"))

    def _make_rule_watcher(self, cfg: Config) -> PrometheusRuleWatcher | None:
        """PrometheusRule objects from the Kubernetes API; missing credentials fail the start."""
        rc = cfg.rules
        if not rc.kubernetes:
            return None
        return PrometheusRuleWatcher(self.ruler, client_factory(cfg.kubernetes.kubeconfig), cfg.tenancy.default_tenant,
                                     parse_duration(rc.evaluation_interval), list(rc.kubernetes_namespaces),
                                     rc.kubernetes_selector)

    def _refused(self, signal_name: str, err: Exception) -> None:
        reason = getattr(err, "reason", "internal")
        if reason != "unavailable":
            log.debug("refused %s write: %s", signal_name, err)

    def _http_app(self) -> RequestTimer:
        async def ready(_: Request) -> Response:
            if self.receiver.ready:
                return PlainTextResponse("ready")
            return PlainTextResponse("not ready: replaying the write-ahead log", status_code=503)

        async def metrics(_: Request) -> Response:
            return Response(self.telemetry.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

        routes = [Route("/ready", ready), Route("/metrics", metrics)]
        routes += otlp_routes(self.otlp_export, self.tenants, self.cfg.limits.max_request_bytes, self._refused)
        routes += remote_write_routes(self.receiver.export_samples, self.tenants,
                                      self.cfg.limits.max_request_bytes, self._refused)
        routes += push_routes(self.receiver.export_logs, self.tenants, self.cfg.limits.max_request_bytes, self._refused)
        # /api/v1/rules, /api/v1/alerts (also under /prometheus) and the Mimir/Loki ruler APIs
        routes += rules_routes(self.ruler, self.tenants.for_read, self.tenants)
        routes += self.tempo.routes()
        routes += self.prometheus.routes()
        routes += federate_routes(lambda tenants: StoreSeriesSource(self.store, tenants, self.sample_cache),
                                  self.tenants.for_read, int(parse_duration(self.cfg.metrics.lookback_delta) * 1000))
        routes += self.loki.routes()
        return RequestTimer(Starlette(routes=routes), self.telemetry)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        t0 = time.perf_counter()
        s = self.cfg.server
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)

        grpc_at, http_at = self.pipelines.listen_addresses() if self.pipelines else (None, None)
        grpc_at = grpc_at or ((s.host, s.grpc_port) if s.grpc_port else None)
        listeners = [(s.host, s.port)]
        if http_at or (s.otlp_http_port and s.otlp_http_port != s.port):
            listeners.append(http_at or (s.host, s.otlp_http_port))
        apps = [(host, port, self.app) for host, port in listeners]
        apps += self.pipelines.receivers.listeners if self.pipelines else []  # zipkin receivers
        for host, port, app in apps:
            srv = _Uvicorn(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                          lifespan="off", access_log=False, timeout_graceful_shutdown=30))
            self._servers.append(srv)
        tasks = [asyncio.create_task(srv.serve()) for srv in self._servers]
        self.grpc = OtlpGrpcServer(self.otlp_export, self.tenants, self.executor,
                                   self.cfg.limits.max_request_bytes, self._refused)
        if grpc_at:
            self.grpc.add_port(*grpc_at)
        await self.grpc.start()
        while not all(srv.started for srv in self._servers):
            if any(t.done() for t in tasks):
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()
                raise SystemExit("an HTTP listener failed to start (is the port in use?)")
            await asyncio.sleep(0.01)

        t_store = time.perf_counter()
        # compiled kernels, loaded before the first use
        for warm in (linevars.warm, record_wire.warm, bytecopy.warm, chunkread.warm, chunks.warm, recordids.warm):
            await loop.run_in_executor(None, warm)
        await loop.run_in_executor(None, self.store.open)
        log.info("storage opened in %.2fs (backend %s, data dir %s)", time.perf_counter() - t_store,
                 self.cfg.storage.backend, Path(self.cfg.data_dir).resolve())
        self.receiver.ready = True
        self.telemetry.ready.set(1)
        if self.generator:
            self.generator.start()
        self.notifier.start()
        await loop.run_in_executor(None, self.ruler.start)
        if self.rule_watcher:
            self.rule_watcher.start()
        if self.scraper:
            await loop.run_in_executor(None, self.scraper.start)
        if self.monitor_jobs:
            self.monitor_jobs.start()
        if self.pipelines:
            self.pipelines.start()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # SIGHUP re-reads the rule and scrape files
            loop.add_signal_handler(signal.SIGHUP, lambda: (loop.run_in_executor(None, self.ruler.reload),
                                                            loop.run_in_executor(None, self._reload_scrape)))
        api = f"http://{s.host}:{s.port}"
        log.info("kms %s ready in %.2fs", self._version(), time.perf_counter() - t0)
        log.info("  HTTP API (Tempo /api/*, Prometheus /prometheus/api/v1/*, remote write /api/v1/push, "
                 "OTLP/HTTP /v1/*, /ready, /metrics): %s", api)
        if s.otlp_http_port and s.otlp_http_port != s.port:
            log.info("  OTLP/HTTP: http://%s:%d/v1/{traces,metrics,logs}", s.host, s.otlp_http_port)
        if s.grpc_port:
            log.info("  OTLP/gRPC: %s:%d", s.host, s.grpc_port)
        log.info("  Grafana data sources: Tempo %s, Prometheus %s/prometheus, Loki %s", api, api, api)

        warm = asyncio.create_task(self._warm_sample_cache())
        await self._stop.wait()
        warm.cancel()
        await self.shutdown(tasks)

    def _reload_scrape(self) -> None:
        """SIGHUP: the scrape jobs as the config files say now; a file that does not load keeps
        the running jobs (and says why)."""
        sc = self.cfg.scrape
        try:
            jobs = reload_jobs(sc.config_file, list(sc.config_files))
        except KmsError as e:
            log.error("scrape configuration not reloaded (the running jobs stay): %s", e)
            return
        if self.scraper is not None:
            self.scraper.set_jobs(CONFIG_GROUP, jobs)
            log.info("scrape configuration reloaded: %d jobs", len(jobs))

    async def _warm_sample_cache(self, every_s: float = 5.0) -> None:
        """Decode new sample blocks for queries in the background (after start, cuts, merges)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.sample_cache.warm, self.store)
            except KmsError as e:  # the object store may be unavailable for a while
                log.warning("warming the sample cache: %s", e)
            await asyncio.sleep(every_s)

    async def shutdown(self, tasks) -> None:
        t0 = time.perf_counter()
        log.info("shutting down: finishing in-flight writes")
        for srv in self._servers:
            srv.should_exit = True
        if self.grpc:
            await self.grpc.stop(10.0)
        await asyncio.gather(*tasks, return_exceptions=True)
        self.receiver.ready = False
        self.telemetry.ready.set(0)
        self.executor.shutdown(wait=True)
        if self.monitor_jobs:
            await asyncio.get_running_loop().run_in_executor(None, self.monitor_jobs.stop)
        if self.scraper:  # the last scrapes finish before the store closes
            await asyncio.get_running_loop().run_in_executor(None, self.scraper.stop)
        if self.pipelines:  # pull receivers stop; forwarding queues keep what is not sent yet
            await asyncio.get_running_loop().run_in_executor(None, self.pipelines.stop)
        # rules stop before the store closes (their last outputs reach the head); queued alerts are sent
        if self.rule_watcher:
            await asyncio.get_running_loop().run_in_executor(None, self.rule_watcher.stop)
        await asyncio.get_running_loop().run_in_executor(None, self.ruler.stop)
        await asyncio.get_running_loop().run_in_executor(None, self.notifier.stop)
        if self.generator:  # the last generated samples, before the head is flushed
            await asyncio.get_running_loop().run_in_executor(None, self.generator.stop)
        t_flush = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        log.info("flushed the head to blocks in %.2fs; stopped in %.2fs", time.perf_counter() - t_flush,
                 time.perf_counter() - t0)

    @staticmethod
    def _version() -> str:
        from kms import __version__

        return __version__
