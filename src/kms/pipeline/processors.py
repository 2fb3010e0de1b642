"""The processors kms runs: ``attributes`` and ``resource`` (insert, update, upsert, delete),
``memory_limiter``, ``batch`` and ``filter`` (kms.pipeline.filter). Samples have no resource: both attribute processors act on
their labels (as the collector's ``resource_to_telemetry_conversion`` would show them)."""

from __future__ import annotations

import re
from dataclasses import replace

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from kms.errors import BadInput
from kms.limits import MemoryLimiter
from kms.metrics.samples import SampleBatch
from kms.metrics.translate import label_name
from kms.pipeline.filter import FilterProcessor
from kms.pipeline.items import OTLP_REQUESTS, Item, data_points

__all__ = ["Actions", "make_processor"]


class Actions:
    """The collector's attribute actions, applied to a ``{key: value}`` view of attributes."""

    SUPPORTED = ("insert", "update", "upsert", "delete")

    def __init__(self, cid: str, actions: list[dict]):
        self.actions = []
        for i, a in enumerate(actions or []):
            kind = a.get("action")
            if kind not in self.SUPPORTED:
                raise BadInput(f"processor {cid!r}: actions[{i}]: action {kind!r} is not supported "
                               f"(supported: {', '.join(self.SUPPORTED)})")
            if not a.get("key") and not (kind == "delete" and a.get("pattern")):
                raise BadInput(f"processor {cid!r}: actions[{i}]: key is required")
            if kind != "delete" and "value" not in a and "from_attribute" not in a:
                raise BadInput(f"processor {cid!r}: actions[{i}]: value or from_attribute is required for {kind}")
            self.actions.append((kind, a.get("key"), a.get("value"), a.get("from_attribute"),
                                 re.compile(a["pattern"]) if a.get("pattern") else None))

    def apply(self, attrs: dict[str, str]) -> dict[str, str]:
        for kind, key, value, source, pattern in self.actions:
            new = attrs.get(source) if source else (None if value is None else str(value))
            if kind == "delete":
                for k in [k for k in attrs if k == key or (pattern and pattern.fullmatch(k))]:
                    del attrs[k]
            elif new is None:
                continue
            elif kind == "upsert" or (kind == "insert" and key not in attrs) or (kind == "update" and key in attrs):
                attrs[key] = new
        return attrs


def _apply_kv(kvs, actions: Actions) -> None:
    """Apply to a repeated KeyValue in place (string values; others are kept unless deleted/replaced)."""
    by_key = {kv.key: kv for kv in kvs}
    view = {k: kv.value.string_value if kv.value.HasField("string_value") else "" for k, kv in by_key.items()}
    out = actions.apply(dict(view))
    keep = [by_key[k] if k in view and out[k] == view[k] else KeyValue(key=k, value=AnyValue(string_value=v))
            for k, v in out.items()]
    del kvs[:]
    kvs.extend(keep)


def _on_labels(batch: SampleBatch, actions: Actions) -> SampleBatch:
    series = []
    for ls in batch.series:
        d = dict(ls)
        name = d.pop("__name__")
        d = {label_name(k) or k: v for k, v in actions.apply(d).items() if v}
        series.append(tuple(sorted({**d, "__name__": name}.items())))
    return replace(batch, series=series)


class _AttributeProcessor:
    def __init__(self, cid: str, settings: dict, resource: bool):
        self.actions = Actions(cid, settings.get("actions"))
        self.resource = resource

    def __call__(self, item: Item) -> Item:
        if item.samples is not None:
            item.samples = _on_labels(item.samples, self.actions)
        elif item.lines is not None:
            if self.resource:
                item.resource = self.actions.apply(dict(item.resource))
            else:
                item.lines = [replace(ln, attributes=tuple(self.actions.apply(dict(ln.attributes)).items()))
                              for ln in item.lines]
        elif item.otlp is not None:
            req = OTLP_REQUESTS[item.signal].FromString(item.otlp)
            for top in getattr(req, "resource_" + ("spans" if item.signal == "traces" else item.signal)):
                if self.resource:
                    _apply_kv(top.resource.attributes, self.actions)
                    continue
                for scoped in getattr(top, "scope_" + ("spans" if item.signal == "traces" else item.signal)):
                    if item.signal == "traces":
                        for span in scoped.spans:
                            _apply_kv(span.attributes, self.actions)
                    elif item.signal == "logs":
                        for rec in scoped.log_records:
                            _apply_kv(rec.attributes, self.actions)
                    else:
                        for m in scoped.metrics:
                            for dp in data_points(m):
                                _apply_kv(dp.attributes, self.actions)
            item.otlp = req.SerializeToString()
        return item


class _MemoryLimiter:
    """Refuses data above the limit (``limit_mib`` or ``limit_percentage`` of the machine): OTLP
    senders get 429 / RESOURCE_EXHAUSTED and retry; pulled data is dropped and counted."""

    def __init__(self, settings: dict):
        mib = int(settings.get("limit_mib") or 0)
        if not mib and settings.get("limit_percentage"):
            import psutil

            mib = int(psutil.virtual_memory().total * float(settings["limit_percentage"]) / 100) >> 20
        self.limiter = MemoryLimiter.from_mib(mib)

    def __call__(self, item: Item) -> Item:
        self.limiter.check()
        return item


def make_processor(cid: str, ptype: str, settings: dict):
    if ptype == "attributes":
        return _AttributeProcessor(cid, settings, resource=False)
    if ptype == "resource":
        return _AttributeProcessor(cid, settings, resource=True)
    if ptype == "memory_limiter":
        return _MemoryLimiter(settings)
    if ptype == "batch":
        return lambda item: item  # the exporters' disk queues batch and decouple already
    if ptype == "filter":
        return FilterProcessor(cid, settings)
    if ptype == "transform":
        from kms.pipeline.transform import TransformProcessor

        return TransformProcessor(cid, settings)
    if ptype == "k8s_attributes":
        from kms.pipeline.k8sattributes import K8sAttributesProcessor  # reads the Kubernetes API

        return K8sAttributesProcessor(cid, settings)
    raise BadInput(f"processor {cid!r}: type {ptype!r} is not supported")
