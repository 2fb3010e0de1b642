"""Running a pipeline configuration: each receiver's items go through the processors of every
pipeline that names the receiver (and carries the item's signal), then to that pipeline's
exporters. External labels are put on items as they are received."""

from __future__ import annotations

import copy
from pathlib import Path

from kms.agent.labels import label_otlp, with_labels
from kms.errors import BadInput
from kms.pipeline.config import PipelineConfig
from kms.pipeline.exporters import make_exporter
from kms.pipeline.items import Item
from kms.pipeline.processors import make_processor

__all__ = ["Pipelines"]


class Pipelines:
    def __init__(self, cfg: PipelineConfig, data_dir: Path, max_queue_bytes: int, external_labels: dict[str, str],
                 local=None):
        """``local``: inside ``kms up``, its Receiver; a ``kms`` exporter without an endpoint
        writes there."""
        self.cfg = cfg
        self.labels = dict(external_labels)
        used = {(kind, cid) for p in cfg.pipelines for kind, ids in
                (("processors", p.processors), ("exporters", p.exporters), ("receivers", p.receivers)) for cid in ids}
        self.exporters = {}
        for kind, cid in sorted(used):
            if kind != "exporters":
                continue
            comp = cfg.get(kind, cid)
            if comp.type == "kms" and not comp.settings.get("endpoint") and local is not None:
                from kms.pipeline.local import LocalExporter  # kms up only: the agent never loads the store

                self.exporters[cid] = LocalExporter(cid, comp.settings, local)
            else:
                self.exporters[cid] = make_exporter(cid, comp.type, comp.settings, data_dir, max_queue_bytes)
        processors = {cid: make_processor(cid, cfg.get(kind, cid).type, cfg.get(kind, cid).settings)
                      for kind, cid in sorted(used) if kind == "processors"}
        self.processors = processors
        self.routes: dict[str, list[tuple[str, list, list]]] = {}
        for p in cfg.pipelines:
            for cid in p.exporters:
                if cfg.get("exporters", cid).type == "prometheusremotewrite" and p.signal != "metrics":
                    raise BadInput(f"{cfg.file}: pipeline {p.name!r}: exporter {cid!r} (prometheusremotewrite) "
                                   "takes metrics only")
            for cid in p.receivers:
                rtype = cfg.get("receivers", cid).type
                if (rtype in ("hostmetrics", "prometheus") and p.signal != "metrics") or \
                        (rtype == "file_log" and p.signal != "logs") or (rtype == "zipkin" and p.signal != "traces"):
                    raise BadInput(f"{cfg.file}: pipeline {p.name!r}: receiver {cid!r} ({rtype}) produces no {p.signal}")
                self.routes.setdefault(cid, []).append(
                    (p.signal, [processors[x] for x in p.processors], [self.exporters[x] for x in p.exporters]))
        self.receivers = {cid: cfg.get("receivers", cid) for kind, cid in used if kind == "receivers"}

    def receive(self, receiver: str, item: Item) -> list:
        """Hand ``item`` to every pipeline of ``receiver``; raises what a processor or the local
        store refuses with (memory_limiter: 429), which OTLP senders see. Returns the local
        store's results (partial refusals), if any."""
        if self.labels:
            if item.otlp is not None:
                item.otlp = label_otlp(item.signal, item.otlp, self.labels)
            elif item.samples is not None:
                item.samples = with_labels(item.samples, self.labels)
            else:
                item.resource = {**self.labels, **item.resource}
        routes = [r for r in self.routes.get(receiver, []) if r[0] == item.signal]
        results = []
        for i, (_, processors, exporters) in enumerate(routes):
            it = item if i == len(routes) - 1 else copy.copy(item)
            for proc in processors:
                it = proc(it)
            for exp in exporters:
                result = exp.consume(it)
                if result is not None:
                    results.append(result)
        return results

    def start(self) -> None:
        for e in self.exporters.values():
            e.start()

    def stop(self) -> None:
        for p in self.processors.values():
            if hasattr(p, "stop"):  # k8sattributes: its watch
                p.stop()
        for e in self.exporters.values():
            e.stop()
