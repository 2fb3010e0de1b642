"""The ``filter`` processor: data matching any of its OTTL conditions is dropped —
``traces.span``, ``metrics.metric``, ``metrics.datapoint``, ``logs.log_record`` — and the legacy
``metrics.include``/``exclude`` (``match_type`` strict or regexp, ``metric_names``)."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from kms.errors import BadInput
from kms.pipeline.items import Item
from kms.pipeline.ottl import compile_condition

__all__ = ["FilterProcessor"]


def _py(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else None


def _attrs(kvs) -> dict:
    return {kv.key: _py(kv.value) for kv in kvs}


def _ctx(fields: dict, attrs: dict, resource: dict):
    def get(path: str):
        if path.startswith("attributes["):
            return attrs.get(path[11:-1])
        if path.startswith("resource.attributes["):
            return resource.get(path[20:-1])
        return fields.get(path)

    return get


class FilterProcessor:
    def __init__(self, cid: str, settings: dict):
        def conds(section: str, key: str) -> list:
            try:
                return [compile_condition(str(c)) for c in (settings.get(section) or {}).get(key) or []]
            except BadInput as e:
                raise BadInput(f"processor {cid!r}: {section}.{key}: {e.message}") from None

        self.span = conds("traces", "span")
        self.metric = conds("metrics", "metric")
        self.datapoint = conds("metrics", "datapoint")
        self.log_record = conds("logs", "log_record")
        m = settings.get("metrics") or {}
        self.include = self._names(cid, m.get("include"))
        self.exclude = self._names(cid, m.get("exclude"))
        for legacy in ("spans", "logs"):
            if isinstance(settings.get(legacy), dict) and {"include", "exclude"} & set(settings[legacy]):
                raise BadInput(f"processor {cid!r}: {legacy}.include/exclude is the deprecated form; write OTTL "
                               "conditions (traces.span, logs.log_record)")

    @staticmethod
    def _names(cid: str, spec: dict | None):
        if not spec:
            return None
        names = [str(n) for n in spec.get("metric_names") or []]
        if spec.get("match_type", "strict") == "regexp":
            rx = [re.compile(n) for n in names]
            return lambda name: any(r.fullmatch(name) or r.search(name) for r in rx)
        if spec.get("match_type", "strict") != "strict":
            raise BadInput(f"processor {cid!r}: match_type {spec.get('match_type')!r} is not supported")
        wanted = set(names)
        return lambda name: name in wanted

    def _drop_metric(self, name: str, resource: dict) -> bool:
        if self.include and not self.include(name):
            return True
        if self.exclude and self.exclude(name):
            return True
        ctx = _ctx({"name": name}, {}, resource)
        return any(c(ctx) for c in self.metric)

    def __call__(self, item: Item) -> Item:
        if item.samples is not None:
            return self._samples(item)
        if item.lines is not None:
            if self.log_record:
                item.lines = [ln for ln in item.lines if not any(
                    c(_ctx({"body": ln.line}, dict(ln.attributes), item.resource)) for c in self.log_record)]
            return item
        if item.otlp is None:
            return item
        if item.signal == "traces" and self.span:
            req = ExportTraceServiceRequest.FromString(item.otlp)
            for rs in req.resource_spans:
                res = _attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    keep = [s for s in ss.spans if not any(c(_ctx(
                        {"name": s.name, "kind": s.kind, "status.code": s.status.code}, _attrs(s.attributes), res))
                        for c in self.span)]
                    del ss.spans[:]
                    ss.spans.extend(keep)
            item.otlp = req.SerializeToString()
        elif item.signal == "logs" and self.log_record:
            req = ExportLogsServiceRequest.FromString(item.otlp)
            for rl in req.resource_logs:
                res = _attrs(rl.resource.attributes)
                for sl in rl.scope_logs:
                    keep = [r for r in sl.log_records if not any(c(_ctx(
                        {"body": _py(r.body), "severity_number": r.severity_number,
                         "severity_text": r.severity_text}, _attrs(r.attributes), res)) for c in self.log_record)]
                    del sl.log_records[:]
                    sl.log_records.extend(keep)
            item.otlp = req.SerializeToString()
        elif item.signal == "metrics" and (self.metric or self.datapoint or self.include or self.exclude):
            req = ExportMetricsServiceRequest.FromString(item.otlp)
            for rm in req.resource_metrics:
                res = _attrs(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    keep = []
                    for m in sm.metrics:
                        if self._drop_metric(m.name, res):
                            continue
                        kind = m.WhichOneof("data")
                        if self.datapoint and kind:
                            points = getattr(m, kind).data_points
                            left = [p for p in points if not any(
                                c(_ctx({"name": m.name}, _attrs(p.attributes), res)) for c in self.datapoint)]
                            del points[:]
                            points.extend(left)
                            if not left:
                                continue
                        keep.append(m)
                    del sm.metrics[:]
                    sm.metrics.extend(keep)
            item.otlp = req.SerializeToString()
        return item

    def _samples(self, item: Item) -> Item:
        if not (self.metric or self.datapoint or self.include or self.exclude):
            return item
        b = item.samples
        drop = np.zeros(len(b.series), bool)
        for i, ls in enumerate(b.series):
            labels = dict(ls)
            name = labels.pop("__name__", "")
            drop[i] = self._drop_metric(name, {}) or any(
                c(_ctx({"name": name}, labels, {})) for c in self.datapoint)
        if drop.any():
            keep = ~drop[b.series_idx]
            item.samples = replace(b, series_idx=b.series_idx[keep], ts_ms=b.ts_ms[keep], values=b.values[keep],
                                   exemplars=[e for e in b.exemplars if not drop[e.series]])
        return item
