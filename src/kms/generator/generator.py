"""The metrics generator: span tables in, span metrics and service graphs out, per tenant.

``consume(tenant, table)`` is called with every stored span table (from the receiver's worker
threads); tables are buffered and processed together (at each flush, or by the writer once
``batch_rows`` wait). A background thread calls ``flush()`` every ``collection_interval_s``, handing each
tenant's samples to ``sink(tenant, batch)`` (the receiver's sample path, so the series land in
the same tenant's metrics store). ``stop()`` flushes once more.

A failure in the generator never fails a span write: the spans are already durable; it is
logged and counted in ``errors``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from kms.generator.names import PEER_ATTRIBUTES, SERVICE_GRAPH_BUCKETS, SPAN_METRICS_BUCKETS
from kms.generator.registry import Registry
from kms.generator.remote import RemoteWriter
from kms.generator.servicegraphs import ServiceGraphs
from kms.generator.spanmetrics import SpanMetrics
from kms.metrics.samples import SampleBatch

__all__ = ["Generator", "GeneratorSettings", "TenantGenerator"]

log = logging.getLogger("kms.generator")


@dataclass
class GeneratorSettings:
    collection_interval_s: float = 15.0  # Tempo's registry default
    stale_s: float = 900.0  # drop series idle this long (Tempo's stale_duration, 15m)
    span_metrics_dimensions: list[str] = field(default_factory=list)
    span_metrics_buckets: list[float] = field(default_factory=lambda: list(SPAN_METRICS_BUCKETS))
    duration_alias: bool = False  # also write traces_spanmetrics_duration_seconds_*
    service_graph_dimensions: list[str] = field(default_factory=list)
    service_graph_buckets: list[float] = field(default_factory=lambda: list(SERVICE_GRAPH_BUCKETS))
    wait_s: float = 10.0
    max_items: int = 10_000
    client_server_prefix: bool = False
    peer_attributes: list[str] = field(default_factory=lambda: list(PEER_ATTRIBUTES))
    virtual_node_label: bool = False
    # spans buffered before they are processed as one table (besides at every flush); bench_generator:
    # per-request processing cost 2-3x more CPU per span than batches of ~16k spans
    batch_rows: int = 16_384


class TenantGenerator:
    """The registry and both processors of one tenant."""

    def __init__(self, s: GeneratorSettings, clock: Callable[[], float] = time.monotonic):
        self.registry = Registry(int(s.stale_s * 1000))
        self.span_metrics = SpanMetrics(self.registry, s.span_metrics_dimensions, s.span_metrics_buckets,
                                        s.duration_alias)
        self.service_graphs = ServiceGraphs(
            self.registry, s.service_graph_dimensions, s.service_graph_buckets, s.wait_s, s.max_items,
            s.client_server_prefix, s.peer_attributes, s.virtual_node_label, clock)
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._buffer_lock = threading.Lock()
        self._process_lock = threading.Lock()

    def consume(self, table: pa.Table, now_ms: int) -> None:
        self.span_metrics.consume(table, now_ms)
        self.service_graphs.consume(table, now_ms)

    def add(self, table: pa.Table) -> int:
        """Buffer a span table; returns the rows now buffered."""
        with self._buffer_lock:
            self._buffer.append(table)
            self._buffered += table.num_rows
            return self._buffered

    def process(self, now_ms: int) -> None:
        """Run the buffered tables through both processors as one table: the processors' fixed
        costs are paid once per batch instead of once per request."""
        with self._process_lock:
            with self._buffer_lock:
                tables, self._buffer, self._buffered = self._buffer, [], 0
            if tables:
                self.consume(tables[0] if len(tables) == 1 else pa.concat_tables(tables), now_ms)

    def collect(self, now_ms: int) -> SampleBatch:
        self.process(now_ms)
        self.service_graphs.expire(now_ms)
        return self.registry.collect(now_ms)


class Generator:
    def __init__(self, settings: GeneratorSettings, sink: Callable[[str, SampleBatch], object],
                 clock: Callable[[], float] = time.monotonic, wall_ms: Callable[[], int] = lambda: time.time_ns() // 10**6,
                 remote: RemoteWriter | None = None):
        self.settings = settings
        self.sink = sink
        self.remote = remote  # also send each collection to another Prometheus/Mimir
        self.clock = clock
        self.wall_ms = wall_ms
        self.errors = 0
        self.remote_errors = 0
        self._tenants: dict[str, TenantGenerator] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tenant(self, tenant: str) -> TenantGenerator:
        with self._lock:
            t = self._tenants.get(tenant)
            if t is None:
                t = self._tenants[tenant] = TenantGenerator(self.settings, self.clock)
            return t

    def tenants(self) -> list[str]:
        with self._lock:
            return list(self._tenants)

    def consume(self, tenant: str, table: pa.Table) -> None:
        """Take a stored span table: buffered, processed at the next flush or, once
        ``batch_rows`` are waiting, here (which also bounds the buffer)."""
        t = self.tenant(tenant)
        if t.add(table) >= self.settings.batch_rows:
            self._process(tenant, t)

    def _process(self, name: str, t: TenantGenerator) -> None:
        try:
            t.process(self.wall_ms())
        except Exception:  # the spans are stored; losing their metrics must not fail the write
            self.errors += 1
            log.exception("metrics generator: could not process the spans of tenant %s", name)

    def flush(self) -> int:
        """Collect every tenant and hand the samples to the sink; returns the samples written."""
        written = 0
        with self._flush_lock:  # one collection at a time keeps timestamps increasing per series
            for name in self.tenants():
                t = self.tenant(name)
                self._process(name, t)
                batch = t.collect(self.wall_ms())
                if not len(batch):
                    continue
                try:
                    self.sink(name, batch)
                    written += len(batch)
                except Exception:
                    self.errors += 1
                    log.exception("metrics generator: could not store %d samples of tenant %s", len(batch), name)
                if self.remote is not None:
                    try:
                        self.remote.send(name, batch)
                    except Exception as e:  # the local store has the samples; the peer misses this collection
                        self.remote_errors += 1
                        log.warning("metrics generator: remote write to %s failed: %s", self.remote.url, e)
        return written

    def active_series(self) -> int:
        return sum(self.tenant(t).registry.active_series() for t in self.tenants())

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kms-generator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = max(self.settings.collection_interval_s, 0.05)
        while not self._stop.wait(interval):
            self.flush()

    def stop(self) -> None:
        """Stop the flush thread and flush a last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
