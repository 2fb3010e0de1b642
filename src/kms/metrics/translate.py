"""OTLP metrics -> Prometheus series (:class:`~kms.metrics.samples.SampleBatch`), as Prometheus does.

Input is a whole ExportMetricsServiceRequest (``translate_request``), or one serialized ``Metric``
with its serialized ``Resource`` and ``InstrumentationScope`` (``translate_metric``). The rules follow Prometheus's default OTLP translation
(``translation_strategy: UnderscoreEscapingWithSuffixes``, ``prometheus/otlptranslator`` and
``storage/remote/otlptranslator/prometheusremotewrite``):

* **Metric names** (:func:`metric_name`): characters outside ``[a-zA-Z0-9:]`` split the name into
  tokens joined by ``_``; the unit suffix (``s`` -> ``seconds``, ``By/s`` -> ``bytes_per_second``,
  ``{...}`` dropped) is appended unless already a token; monotonic sums end in ``_total``; gauges
  with unit ``1`` end in ``_ratio``; a leading digit gets a ``_`` prefix. ``add_suffixes=False``
  gives Mimir's default names: only invalid characters become ``_``, no suffixes.
* **Label names** (:func:`label_name`): characters outside ``[a-zA-Z0-9_]`` become ``_``; a leading
  digit gets ``key_``, a single leading ``_`` gets ``key``; attributes that collide after this
  are joined with ``;`` in the order of their original keys. Values use OTel's ``AsString``.
* ``job`` = ``service.namespace/service.name`` (or ``service.name``), ``instance`` =
  ``service.instance.id``, on every series; other resource attributes are not promoted. Scope
  labels (``otel_scope_name``, ``otel_scope_version``, ...) are off by default, as in Prometheus
  (``promote_scope_metadata: false``); ``promote_scope=True`` adds them for named scopes,
  overriding data point attributes of the same name (``job``/``instance`` override both).
* ``target_info`` (gauge, value 1) carries the remaining resource attributes with ``job`` and
  ``instance``; it is emitted only when those exist and there is at least one other attribute.
  Prometheus spreads its samples over the whole request; here it gets a sample at each distinct
  timestamp of the metric's points (the same series/timestamp/value from several metrics of one
  resource is a duplicate the store may drop).
* Gauge -> gauge; monotonic cumulative Sum -> counter; non-monotonic Sum -> gauge (no
  ``_ratio``); Histogram -> ``_bucket{le}`` (cumulative, ``le="+Inf"`` = count), ``_sum`` (only if
  set), ``_count``; Summary -> ``{quantile}``, ``_sum``, ``_count``. ``le``/``quantile`` use Go's
  shortest ``'f'`` formatting (``0.5``, ``1``, ``0.00001``).
* Delta (or unspecified) temporality of Sum/Histogram is refused per metric ("invalid temporality
  and type combination"), Prometheus's default. Exponential histogram -> a native histogram
  under the metric's name (``nativewire``; scales above 8 merged down, below -4 refused per
  point under ``invalid_native_histogram``). Metrics with no data points are dropped with a
  message.
* Timestamps are ``time_unix_nano // 1e6`` (ms); start timestamps are ignored; a point flagged
  ``NO_RECORDED_VALUE`` yields the staleness marker for every sample it produces.
* Exemplars (sums and histograms, as Prometheus): ``trace_id``/``span_id`` lower-hex labels
  plus the filtered attributes, the attributes dropped if the whole set would exceed 128 runes.
  Unlike Prometheus (which keeps attribute keys as they are), the keys are sanitised like label
  names, since our store uses the legacy name scheme; the rune count uses the sanitised names. Histogram exemplars go to the first bucket whose bound is
  >= their value (``+Inf`` otherwise).

Refusals never raise: they are counted in ``batch.rejected`` (by reason, in data points) with a
message in ``batch.errors``. Only undecodable protobuf raises BadInput.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import re
from functools import lru_cache

import numpy as np
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from kms.errors import BadInput
from kms.metrics.nativewire import HistogramError, from_otlp_exponential
from kms.metrics.promql.nativehist import FloatHistogram
from kms.metrics.samples import STALE_NAN, BatchBuilder, Exemplar, Labels, Metadata, SampleBatch

__all__ = [
    "translate_metric",
    "translate_request",
    "metric_name",
    "label_name",
    "unit_name",
    "any_value_string",
    "GAUGE",
    "COUNTER",
    "NON_MONOTONIC_COUNTER",
    "HISTOGRAM",
    "EXPONENTIAL_HISTOGRAM",
    "SUMMARY",
]

# Metric kinds as otlptranslator's MetricType distinguishes them (only the first two change names).
GAUGE = "gauge"
COUNTER = "counter"  # monotonic Sum
NON_MONOTONIC_COUNTER = "non_monotonic_counter"
HISTOGRAM = "histogram"
EXPONENTIAL_HISTOGRAM = "exponential_histogram"
SUMMARY = "summary"

_UNIT_MAP = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds",
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
    "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}  # fmt: skip
_PER_UNIT_MAP = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}

_NOT_METRIC_TOKEN = re.compile(r"[^a-zA-Z0-9:]+")  # '_' separates tokens too
_NOT_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9:_]+")
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_MULTI_UNDERSCORE = re.compile(r"__+")

_FLAG_NO_RECORDED_VALUE = 1
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
EXEMPLAR_MAX_LABEL_RUNES = 128


# ---------------------------------------------------------------------------------------- names


def _unit_suffixes(unit: str) -> tuple[str, str]:
    main, _, per = unit.partition("/")
    main = main.strip()
    main_suffix = _UNIT_MAP.get(main, main) if main and not ("{" in main or "}" in main) else ""
    per_suffix = ""
    per = per.strip()
    if per and not ("{" in per or "}" in per):
        per_suffix = "per_" + _PER_UNIT_MAP.get(per, per)
    return main_suffix, per_suffix


def _clean_unit(unit: str) -> str:
    out = _MULTI_UNDERSCORE.sub("_", re.sub(r"[^a-zA-Z0-9:]", "_", unit))
    return out[1:] if out.startswith("_") else out


def unit_name(unit: str) -> str:
    """The Prometheus unit for an OTLP (UCUM) unit: ``s`` -> ``seconds``, ``By/s`` -> ``bytes_per_second``."""
    main, per = (_clean_unit(u) for u in _unit_suffixes(unit))
    u = f"{main}_{per}" if main and per else (main or per)
    return u.strip("_") if u else ""


def metric_name(name: str, unit: str, kind: str, *, add_suffixes: bool = True) -> str:
    """The Prometheus name of an OTLP metric; ``""`` if nothing valid is left of it."""
    if add_suffixes:
        tokens = [t for t in _NOT_METRIC_TOKEN.split(name) if t]
        main, per = (_clean_unit(u) for u in _unit_suffixes(unit))
        if main in tokens:
            main = ""
        if per == "per_":
            per = ""
        else:
            per = per.removesuffix("_")
            if per in tokens:
                per = ""
        if per:
            main = main.removesuffix("_")
        tokens += [t for t in (main, per) if t]
        if kind == COUNTER:
            tokens = [t for t in tokens if t != "total"] + ["total"]
        if unit == "1" and kind == GAUGE:
            tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
        out = "_".join(tokens)
    else:
        out = "_".join(t for t in _NOT_METRIC_CHAR.split(name) if t)
    if out[:1].isdigit():
        out = "_" + out
    if out != name and not out.strip("_"):
        return ""
    return out


def label_name(key: str) -> str:
    """The Prometheus label name of an OTLP attribute key; ``""`` if it is not usable."""
    if not key:
        return ""
    out = _NOT_LABEL_CHAR.sub("_", key)
    if out[0].isdigit():
        out = "key_" + out
    elif out.startswith("_") and not out.startswith("__"):
        out = "key" + out
    if out != key and not out.strip("_"):
        return ""
    return out


# ---------------------------------------------------------------------------------------- values


def _es6_float(x: float) -> str:
    """pcommon's ``float64AsString`` (Go's encoding/json number format), used by ``AsString``."""
    if math.isnan(x) or math.isinf(x):
        return "json: unsupported value: " + ("NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf"))
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        out = np.format_float_scientific(x, trim="-", exp_digits=2)
        mant, _, exp = out.partition("e")
        if exp.startswith("-0"):
            exp = "-" + exp[2:]
        return f"{mant}e{exp}"
    return np.format_float_positional(x, trim="-")


def _go_float_f(x: float) -> str:
    """Go's ``strconv.FormatFloat(x, 'f', -1, 64)`` (``le`` and ``quantile`` label values)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return np.format_float_positional(x, trim="-")


class _Unencodable(Exception):
    pass


_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_str(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    for ch, esc in _JSON_ESCAPES.items():
        out = out.replace(ch, esc)
    return out


def _json(v: common_pb2.AnyValue) -> str:
    """Go's ``json.Marshal`` of ``Value.AsRaw()`` (sorted keys, HTML-escaped strings, ES6 floats)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return _json_str(v.string_value)
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        if math.isnan(v.double_value) or math.isinf(v.double_value):
            raise _Unencodable
        return _es6_float(v.double_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "bytes_value":
        return _json_str(base64.b64encode(v.bytes_value).decode())
    if kind == "array_value":
        return "[" + ",".join(_json(x) for x in v.array_value.values) + "]"
    if kind == "kvlist_value":
        items = {kv.key: kv.value for kv in v.kvlist_value.values}
        return "{" + ",".join(f"{_json_str(k)}:{_json(items[k])}" for k in sorted(items)) + "}"
    return "null"


def any_value_string(v: common_pb2.AnyValue) -> str:
    """OTel's ``Value.AsString``: strings as is, ints in decimal, doubles in Go's JSON number
    format, bools ``true``/``false``, bytes base64, arrays and maps as Go JSON, empty as ``""``."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        return _es6_float(v.double_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    if kind in ("array_value", "kvlist_value"):
        try:
            return _json(v)
        except _Unencodable:
            return ""  # json.Marshal fails on NaN/Inf; Go then renders the nil result as ""
    return ""


class _BadLabel(Exception):
    pass


def _attr_labels(attrs, into: dict[str, str], skip_invalid: bool = False) -> None:
    """Sanitised attribute labels into ``into``; collisions joined with ``;`` by original key order.

    A key that sanitises to nothing raises _BadLabel, or is skipped with ``skip_invalid``.
    """
    for kv in sorted(attrs, key=lambda kv: kv.key):
        name = label_name(kv.key)
        if not name:
            if skip_invalid:
                continue
            raise _BadLabel(f"normalization for label name {kv.key!r} resulted in an invalid name")
        value = any_value_string(kv.value)
        into[name] = into[name] + ";" + value if name in into else value


# ------------------------------------------------------------------------------ resource / scope

_IDENTIFYING = ("service.name", "service.namespace", "service.instance.id")


@lru_cache(maxsize=1024)
def _resource(resource: bytes) -> tuple[tuple[tuple[str, str], ...], Labels | None]:
    """(job/instance labels, target_info labels or None) of a serialized Resource."""
    res = resource_pb2.Resource.FromString(resource)
    by_key = {kv.key: kv.value for kv in res.attributes}
    ident: dict[str, str] = {}
    if "service.name" in by_key:
        job = any_value_string(by_key["service.name"])
        if "service.namespace" in by_key:
            job = f"{any_value_string(by_key['service.namespace'])}/{job}"
        ident["job"] = job
    if "service.instance.id" in by_key:
        ident["instance"] = any_value_string(by_key["service.instance.id"])
    ident = {k: v for k, v in ident.items() if v}
    others = [kv for kv in res.attributes if kv.key not in _IDENTIFYING]
    info = None
    if ident and others:
        d: dict[str, str] = {}
        _attr_labels(others, d, skip_invalid=True)
        d.update(ident)
        d["__name__"] = "target_info"
        info = tuple(sorted((k, v) for k, v in d.items() if v))
    return tuple(sorted(ident.items())), info


@lru_cache(maxsize=1024)
def _scope(scope: bytes) -> tuple[tuple[str, str], ...]:
    """Prometheus's promoted scope labels (``promote_scope_metadata: true``); none for an unnamed scope.

    The scope's schema URL lives in ScopeMetrics, not here, so ``otel_scope_schema_url`` is not set.
    """
    sc = common_pb2.InstrumentationScope.FromString(scope)
    if not sc.name:
        return ()
    d = {"otel_scope_name": sc.name, "otel_scope_version": sc.version}
    for kv in sc.attributes:
        name = label_name("otel_scope_" + kv.key)
        if name:
            d[name] = any_value_string(kv.value)
    return tuple((k, v) for k, v in d.items() if v)


# ------------------------------------------------------------------------------------- translate


# (overrides, attributes as (key, serialized value)) -> their labels. Senders repeat the same
# attribute sets every export; sanitising and sorting them again cost most of a point's
# translation, while the key costs one serialization per attribute.
_LABELS_CACHE: dict[tuple, dict[str, str]] = {}
_SERIES_CACHE: dict[tuple, Labels] = {}
_CACHE_MAX = 32_768  # entries of each cache: a few MiB at most


def _cache_put(cache: dict, key: tuple, value) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()  # a burst of new label sets: start over rather than keep a stale working set
    cache[key] = value


class _Translator:
    def __init__(self, b: BatchBuilder, overrides: tuple[tuple[str, str], ...]):
        self.b = b
        self.overrides = overrides  # scope labels then job/instance: they win over data point attributes

    def labels(self, attrs) -> tuple[tuple, dict[str, str]]:
        """(a cache key of the attribute set, its labels with the overrides); do not modify them."""
        key = (self.overrides, tuple((kv.key, kv.value.SerializeToString()) for kv in attrs))
        d = _LABELS_CACHE.get(key)
        if d is None:
            d = {}
            _attr_labels(attrs, d)
            d.update(self.overrides)
            _cache_put(_LABELS_CACHE, key, d)
        return key, d

    def series(self, labels: tuple[tuple, dict[str, str]], name: str, extra: tuple[str, str] | None = None) -> int:
        key = (labels[0], name, extra)
        ls = _SERIES_CACHE.get(key)
        if ls is None:
            d = dict(labels[1])
            d["__name__"] = name
            if extra:
                d[extra[0]] = extra[1]
            ls = tuple(sorted((k, v) for k, v in d.items() if v))
            _cache_put(_SERIES_CACHE, key, ls)
        return self.b.series_index(ls)

    def exemplars(self, idx_for_value, exemplars) -> None:
        for e in exemplars:
            value = e.as_double if e.WhichOneof("value") == "as_double" else float(e.as_int)
            pairs = []
            if e.trace_id.strip(b"\0"):
                pairs.append(("trace_id", e.trace_id.hex()))
            if e.span_id.strip(b"\0"):
                pairs.append(("span_id", e.span_id.hex()))
            runes = sum(len(k) + len(v) for k, v in pairs)
            extra: dict[str, str] = {}
            _attr_labels(e.filtered_attributes, extra, skip_invalid=True)
            extra_runes = sum(len(k) + len(v) for k, v in extra.items())
            if runes + extra_runes <= EXEMPLAR_MAX_LABEL_RUNES:
                pairs += [(k, v) for k, v in extra.items() if k not in ("trace_id", "span_id") and v]
            idx = idx_for_value(value)
            if idx is not None:
                self.b.exemplars.append(Exemplar(idx, tuple(sorted(pairs)), value, e.time_unix_nano // 1_000_000))


def _number_value(pt) -> float:
    if pt.flags & _FLAG_NO_RECORDED_VALUE:
        return STALE_NAN
    return pt.as_double if pt.WhichOneof("value") == "as_double" else float(pt.as_int)


def _numbers(t: _Translator, name: str, points, with_exemplars: bool) -> set[int]:
    stamps = set()
    for pt in points:
        ts = pt.time_unix_nano // 1_000_000
        stamps.add(ts)
        idx = t.series(t.labels(pt.attributes), name)
        t.b.add(idx, ts, _number_value(pt))
        if with_exemplars and pt.exemplars:
            t.exemplars(lambda _v, i=idx: i, pt.exemplars)
    return stamps


def _sum_count(t: _Translator, d, name: str, ts: int, stale: bool, pt, with_sum: bool) -> None:
    """The ``_sum`` (when the point has one) and ``_count`` series of a histogram or summary point."""
    if with_sum:
        t.b.add(t.series(d, name + "_sum"), ts, STALE_NAN if stale else pt.sum)
    t.b.add(t.series(d, name + "_count"), ts, STALE_NAN if stale else float(pt.count))


def _histograms(t: _Translator, name: str, points) -> set[int]:
    stamps = set()
    for pt in points:
        ts = pt.time_unix_nano // 1_000_000
        stamps.add(ts)
        stale = bool(pt.flags & _FLAG_NO_RECORDED_VALUE)
        d = t.labels(pt.attributes)
        _sum_count(t, d, name, ts, stale, pt, pt.HasField("sum"))
        bounds = list(pt.explicit_bounds)
        bucket_idx = []
        cumulative = 0
        for bound, n in zip(bounds, pt.bucket_counts, strict=False):
            cumulative += n
            i = t.series(d, name + "_bucket", ("le", _go_float_f(bound)))
            bucket_idx.append(i)
            t.b.add(i, ts, STALE_NAN if stale else float(cumulative))
        inf = t.series(d, name + "_bucket", ("le", "+Inf"))
        bucket_idx.append(inf)
        t.b.add(inf, ts, STALE_NAN if stale else float(pt.count))
        if pt.exemplars:
            # Each exemplar goes to the bucket with the smallest bound >= its value (none for NaN).
            order = sorted(zip(bounds[: len(bucket_idx) - 1], bucket_idx, strict=False)) + [(math.inf, inf)]
            keys = [bound for bound, _ in order]

            def bucket_of(v: float, keys=keys, order=order) -> int | None:
                return None if math.isnan(v) else order[min(bisect.bisect_left(keys, v), len(order) - 1)][1]

            t.exemplars(bucket_of, pt.exemplars)
    return stamps


def _exponential(t: _Translator, name: str, points) -> set[int]:
    stamps = set()
    for pt in points:
        ts = pt.time_unix_nano // 1_000_000
        idx = t.series(t.labels(pt.attributes), name)
        if pt.flags & _FLAG_NO_RECORDED_VALUE:
            h = FloatHistogram(sum=STALE_NAN)  # Prometheus's stale histogram: the marker in ``sum``
        else:
            try:
                h = from_otlp_exponential(pt)
            except HistogramError as e:
                t.b.reject("invalid_native_histogram", 1, f"{e}: metric {name!r}")
                continue
        stamps.add(ts)
        t.b.histograms.append((idx, ts, h))
        if pt.exemplars:
            t.exemplars(lambda _v, i=idx: i, pt.exemplars)
    return stamps


def _summaries(t: _Translator, name: str, points) -> set[int]:
    stamps = set()
    for pt in points:
        ts = pt.time_unix_nano // 1_000_000
        stamps.add(ts)
        stale = bool(pt.flags & _FLAG_NO_RECORDED_VALUE)
        d = t.labels(pt.attributes)
        _sum_count(t, d, name, ts, stale, pt, True)
        for q in pt.quantile_values:
            i = t.series(d, name, ("quantile", _go_float_f(q.quantile)))
            t.b.add(i, ts, STALE_NAN if stale else q.value)
    return stamps


def _translate_into(
    b: BatchBuilder, m: metrics_pb2.Metric, resource: bytes, scope: bytes, add_suffixes: bool, promote_scope: bool
) -> set[int]:
    kind_field = m.WhichOneof("data")
    data = getattr(m, kind_field) if kind_field else None
    points = data.data_points if data is not None else ()
    if kind_field == "sum":
        kind = COUNTER if m.sum.is_monotonic else NON_MONOTONIC_COUNTER
    else:
        kind = {"gauge": GAUGE, "histogram": HISTOGRAM, "exponential_histogram": EXPONENTIAL_HISTOGRAM}.get(kind_field, SUMMARY)
    if kind_field in ("sum", "histogram", "exponential_histogram") and data.aggregation_temporality != _CUMULATIVE:
        b.reject("invalid_temporality", len(points), f"invalid temporality and type combination for metric {m.name!r}")
        return set()
    if not points:
        b.reject("empty_data_points", 0, f"empty data points. {m.name} is dropped")
        return set()
    name = metric_name(m.name, m.unit, kind, add_suffixes=add_suffixes)
    if not name:
        b.reject("invalid_metric_name", len(points), f"normalization for metric {m.name!r} resulted in an invalid name")
        return set()
    ident, _ = _resource(resource)
    t = _Translator(b, (_scope(scope) if promote_scope and scope else ()) + ident)
    mark = b.mark()
    try:
        if kind in (GAUGE, COUNTER, NON_MONOTONIC_COUNTER):
            stamps = _numbers(t, name, points, with_exemplars=kind != GAUGE)
        elif kind == HISTOGRAM:
            stamps = _histograms(t, name, points)
        elif kind == EXPONENTIAL_HISTOGRAM:
            stamps = _exponential(t, name, points)
        else:
            stamps = _summaries(t, name, points)
    except _BadLabel as e:
        b.rollback(mark)  # nothing of a refused metric stays in the batch
        b.reject("invalid_label_name", len(points), f"metric {m.name!r}: {e}")
        return set()
    mtype = {COUNTER: "counter", HISTOGRAM: "histogram", EXPONENTIAL_HISTOGRAM: "histogram", SUMMARY: "summary"}.get(
        kind, "gauge"
    )
    b.metadata.append(Metadata(name, mtype, m.description, unit_name(m.unit)))
    return stamps


def _add_target_info(b: BatchBuilder, resource: bytes, stamps: set[int]) -> None:
    _, info = _resource(resource)
    if info is None or not stamps:
        return
    idx = b.series_index(info)
    for ts in sorted(stamps):
        b.add(idx, ts, 1.0)
    if not any(md.family == "target_info" for md in b.metadata):
        b.metadata.append(Metadata("target_info", "gauge", "Target metadata"))


def _parse_metric(metric) -> metrics_pb2.Metric:
    if isinstance(metric, metrics_pb2.Metric):
        return metric
    try:
        return metrics_pb2.Metric.FromString(metric)
    except DecodeError as e:
        raise BadInput(f"malformed OTLP Metric protobuf: {e}") from e


def _check_resource_scope(resource: bytes, scope: bytes) -> None:
    try:
        _resource(resource)
        if scope:
            _scope(scope)
    except DecodeError as e:
        raise BadInput(f"malformed OTLP Resource/InstrumentationScope protobuf: {e}") from e


def translate_metric(
    metric: bytes | metrics_pb2.Metric,
    resource: bytes = b"",
    scope: bytes = b"",
    *,
    add_suffixes: bool = True,
    promote_scope: bool = False,
    target_info: bool = True,
) -> SampleBatch:
    """One OTLP Metric (serialized, or a message) with its serialized Resource and Scope -> batch.

    ``add_suffixes=False`` gives Mimir's names (no unit/``_total``/``_ratio``); ``promote_scope``
    adds ``otel_scope_*`` labels; ``target_info=False`` leaves out the ``target_info`` samples.
    Raises BadInput only for undecodable protobuf; other refusals are counted in the batch.
    """
    m = _parse_metric(metric)
    _check_resource_scope(resource, scope)
    b = BatchBuilder()
    stamps = _translate_into(b, m, resource, scope, add_suffixes, promote_scope)
    if target_info:
        _add_target_info(b, resource, stamps)
    return b.build()


def translate_request(
    body: bytes, *, add_suffixes: bool = True, promote_scope: bool = False, target_info: bool = True
) -> SampleBatch:
    """A whole serialized ``ExportMetricsServiceRequest`` -> one batch (tests and tools)."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    try:
        req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
    except DecodeError as e:
        raise BadInput(f"malformed OTLP metrics protobuf: {e}") from e
    b = BatchBuilder()
    for rm in req.resource_metrics:
        resource = rm.resource.SerializeToString()
        stamps: set[int] = set()
        for sm in rm.scope_metrics:
            scope = sm.scope.SerializeToString()
            for m in sm.metrics:
                stamps |= _translate_into(b, m, resource, scope, add_suffixes, promote_scope)
        if target_info:
            _add_target_info(b, resource, stamps)
    return b.build()
