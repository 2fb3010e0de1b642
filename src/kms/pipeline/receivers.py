"""The pull receivers of a pipeline configuration — ``hostmetrics``, ``file_log`` and
``prometheus`` (``config.scrape_configs`` in Prometheus's format, scraped by kms.collect) —
started and stopped together; the ``otlp`` receiver's settings are kept for whoever owns the
listeners (``kms agent``, ``kms up``)."""

from __future__ import annotations

import fnmatch
import logging
import socket
import threading
from dataclasses import replace
from pathlib import Path

from kms.agent.hostmetrics import HostMetrics
from kms.agent.tail import FileTailer, LogLine
from kms.config import parse_duration
from kms.errors import BadInput
from kms.pipeline.config import Component
from kms.pipeline.container import ContainerParser
from kms.pipeline.items import Item
from kms.pipeline.runtime import Pipelines
from kms.pipeline.zipkin import zipkin_app

__all__ = ["Receivers", "endpoint"]

log = logging.getLogger("kms.pipeline")


def endpoint(cid: str, text: str | None) -> tuple[str, int] | None:
    """``host:port`` -> (host, port); an empty host means all interfaces."""
    if not text:
        return None
    host, _, port = str(text).rpartition(":")
    try:
        return host or "0.0.0.0", int(port)
    except ValueError:
        raise BadInput(f"receiver {cid!r}: endpoint {text!r} is not host:port") from None


def _file_attrs(ln: LogLine, path: bool, name: bool) -> LogLine:
    """The filelog receiver's log.file.name / log.file.path attributes."""
    extra = ([("log.file.name", Path(ln.path).name)] if name else []) + ([("log.file.path", ln.path)] if path else [])
    return replace(ln, attributes=ln.attributes + tuple(extra)) if extra else ln


class Receivers:
    def __init__(self, pipelines: Pipelines, data_dir: Path, tenant: str):
        self.pipelines = pipelines
        self.data_dir = data_dir
        self.tenant = tenant
        self.otlp: tuple[str, dict] | None = None  # (receiver id, its protocols)
        self.tailers: list[FileTailer] = []
        self.scrapers: list = []  # kms.collect.ScrapeManager, one per prometheus receiver
        self.listeners: list[tuple[str, int, object]] = []  # (host, port, ASGI app) the owner serves: zipkin
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        for cid, comp in sorted(pipelines.receivers.items()):
            self._add(cid, comp)

    def _add(self, cid: str, comp: Component) -> None:
        st = comp.settings
        if comp.type == "otlp":
            if self.otlp is not None:
                raise BadInput(f"receiver {cid!r}: only one otlp receiver is supported")
            self.otlp = (cid, st.get("protocols") or {})
        elif comp.type == "hostmetrics":
            host = HostMetrics(instance=socket.gethostname(), proc=Path(st.get("root_path") or "/") / "proc")
            every = parse_duration(st.get("collection_interval") or "60s")  # the collector's default
            self._threads.append(threading.Thread(target=self._host_loop, args=(cid, host, every), daemon=True,
                                                  name=f"kms-{cid}"))
        elif comp.type == "file_log":
            self.tailers.append(self._tailer(cid, st))
        elif comp.type == "zipkin":
            at = endpoint(cid, st.get("endpoint") or "localhost:9411")  # the collector's default
            self.listeners.append((*at, zipkin_app(
                lambda payload, cid=cid: self.pipelines.receive(cid, Item("traces", self.tenant, otlp=payload)))))
        elif comp.type == "prometheus":
            from kms.collect import ScrapeManager, load_jobs  # only where scraping is configured

            conf = st.get("config") or {}
            # relative kubeconfig_file paths are read from the configuration file's directory
            jobs = load_jobs(conf.get("global"), conf.get("scrape_configs"),
                             base_dir=str(Path(self.pipelines.cfg.file).parent))

            def sink(batch, cid=cid) -> None:
                self.pipelines.receive(cid, Item("metrics", self.tenant, samples=batch))

            self.scrapers.append(ScrapeManager(jobs, sink))
        else:
            raise BadInput(f"receiver {cid!r}: type {comp.type!r} is not available here yet")

    def _tailer(self, cid: str, st: dict) -> FileTailer:
        include = st.get("include") or []
        if not include:
            raise BadInput(f"receiver {cid!r}: include is required (file globs)")
        parsers = []
        for i, op in enumerate(st.get("operators") or []):
            if (op or {}).get("type") != "container":
                raise BadInput(f"receiver {cid!r}: operators[{i}]: type {(op or {}).get('type')!r} is not supported "
                               "(supported: container)")
            parsers.append(ContainerParser())
        exclude = list(st.get("exclude") or [])
        keep_path, keep_name = bool(st.get("include_file_path")), st.get("include_file_name", True)

        def sink(lines: list[LogLine]) -> None:
            lines = [ln for ln in lines if not any(fnmatch.fnmatch(ln.path, x) for x in exclude)]
            for p in parsers:
                lines = p.parse(lines)
            lines = [_file_attrs(ln, keep_path, keep_name) for ln in lines]
            if lines:
                self.pipelines.receive(cid, Item("logs", self.tenant, lines=lines))

        safe = cid.replace("/", "_")
        return FileTailer(list(include), self.data_dir / f"positions-{safe}.json", sink,
                          start_at_end=st.get("start_at", "end") == "end")

    def _host_loop(self, cid: str, host: HostMetrics, every_s: float) -> None:
        while True:
            try:
                self.pipelines.receive(cid, Item("metrics", self.tenant, samples=host.collect()))
            except Exception:  # noqa: BLE001 - keep collecting
                log.exception("%s", cid)
            if self._stop.wait(every_s):
                return

    def start(self) -> None:
        for t in self._threads:
            t.start()
        for t in self.tailers:
            t.start()
        for m in self.scrapers:
            m.start()

    def stop(self) -> None:
        self._stop.set()
        for m in self.scrapers:
            m.stop()
        for t in self.tailers:
            t.stop()
