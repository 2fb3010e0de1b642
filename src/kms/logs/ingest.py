"""OTLP ExportLogsServiceRequest (protobuf bytes) -> ``LogBatch``, mapped as Loki maps OTLP
(``pkg/loghttp/push/otlp.go``, section 3.2 of the API contracts):

- index labels: the resource attributes of ``INDEX_ATTRIBUTES`` (dots become underscores);
- structured metadata: every other resource attribute, the scope's attributes, name and version,
  the record's attributes, ``trace_id``/``span_id`` (lower hex), ``severity_number``,
  ``severity_text``, ``flags``, ``observed_timestamp`` (only when both times are set),
  ``dropped_attributes_count`` and ``event_name``;
- line: the body as a string (maps and arrays as JSON); time: ``time_unix_nano``, else the
  observed time, else now.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from dataclasses import dataclass

import numpy as np
import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kms.errors import BadInput
from kms.logs.batch import LogBatch, LogStream
from kms.logs.enrich import DETECTED_LEVEL, level_of_severity, normalise
from kms.logs.record_wire import PER_RECORD_KEYS, R_OBSERVED, R_SCOPE, R_TIME, record_columns, walk_request
from kms.logs.recordids import ids_array

__all__ = ["DecodedLogs", "decode_logs", "INDEX_ATTRIBUTES", "label_name", "any_value_string"]

#: Loki's default ``otlp_config`` index labels (``otlplabels``).
INDEX_ATTRIBUTES = frozenset({
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name", "k8s.replicaset.name",
    "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name",
})
_BAD = re.compile(r"[^A-Za-z0-9_]")
_SEVERITY_LEVEL = {n: level_of_severity(n) for n in range(1, 25)}


@dataclass
class DecodedLogs:
    batch: LogBatch
    rejected: int = 0
    message: str = ""


@functools.lru_cache(maxsize=4096)
def label_name(key: str) -> str:
    """An attribute key as a label name (every character outside ``[A-Za-z0-9_]`` becomes ``_``)."""
    return _BAD.sub("_", key)


def _go_float(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    s = repr(v)
    if "e" in s or "E" in s:
        return format(v, "f").rstrip("0").rstrip(".") if abs(v) >= 1 else s
    return s[:-2] if s.endswith(".0") else s


def _jsonable(av):
    kind = av.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: _jsonable(kv.value) for kv in av.kvlist_value.values}
    if kind == "array_value":
        return [_jsonable(v) for v in av.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(av.bytes_value).decode()
    return getattr(av, kind) if kind else None


def any_value_string(av) -> str:
    """pdata's ``Value.AsString``."""
    kind = av.WhichOneof("value")
    if kind == "string_value":
        return av.string_value
    if kind == "bool_value":
        return "true" if av.bool_value else "false"
    if kind == "int_value":
        return str(av.int_value)
    if kind == "double_value":
        return _go_float(av.double_value)
    if kind == "bytes_value":
        return base64.b64encode(av.bytes_value).decode()
    if kind in ("kvlist_value", "array_value"):
        return orjson.dumps(_jsonable(av)).decode()
    return ""


def _attrs(out: dict[str, str], attributes, prefix: str = "") -> None:
    """Attributes as flat labels: nested maps joined with ``_``, names sanitised."""
    for kv in attributes:
        name = prefix + label_name(kv.key)
        v = kv.value
        kind = v.WhichOneof("value")
        if kind == "string_value":
            out[name] = v.string_value
        elif kind == "kvlist_value":
            _attrs(out, v.kvlist_value.values, name + "_")
        else:
            out[name] = any_value_string(v)


def _resource_labels(resource) -> tuple[dict[str, str], dict[str, str]]:
    """(index labels, structured metadata) of a resource's attributes."""
    index: dict[str, str] = {}
    res_md: dict[str, str] = {}
    for kv in resource.attributes:
        if kv.key in INDEX_ATTRIBUTES:
            index[label_name(kv.key)] = any_value_string(kv.value)
        else:
            _attrs(res_md, [kv])
    return index, res_md


def _scope_metadata(res_md: dict[str, str], scope) -> dict[str, str]:
    """The structured metadata every record of a scope starts with."""
    scope_md = dict(res_md)
    _attrs(scope_md, scope.attributes)
    if scope.name:
        scope_md["scope_name"] = scope.name
    if scope.version:
        scope_md["scope_version"] = scope.version
    if scope.dropped_attributes_count:
        scope_md["scope_dropped_attributes_count"] = str(scope.dropped_attributes_count)
    return scope_md


def decode_logs(body: bytes, now_ns: int | None = None) -> DecodedLogs:
    now_ns = now_ns or time.time_ns()
    fast = _decode_columns(body, now_ns)
    if fast is not None:
        return fast
    try:
        req = ExportLogsServiceRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise BadInput(f"malformed OTLP logs protobuf: {e}") from e
    batch = LogBatch()
    streams: dict[tuple, LogStream] = {}
    rejected, why = 0, ""
    for rl in req.resource_logs:
        index, res_md = _resource_labels(rl.resource)
        key = tuple(sorted(index.items()))
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = LogStream(index)
            batch.streams.append(stream)
        for sl in rl.scope_logs:
            scope_md = _scope_metadata(res_md, sl.scope)
            times, lines, metadata = stream.times, stream.lines, stream.metadata
            for rec in sl.log_records:
                tid, sid = rec.trace_id, rec.span_id
                if len(tid) not in (0, 16) or len(sid) not in (0, 8):
                    rejected += 1
                    why = "invalid trace_id or span_id length (want 16 and 8 bytes, or empty)"
                    continue
                md = dict(scope_md)
                if len(rec.attributes):
                    _attrs(md, rec.attributes)
                if any(tid):  # an id of zeros is none (Loki: ``IsEmpty``)
                    md["trace_id"] = tid.hex()
                if any(sid):
                    md["span_id"] = sid.hex()
                sev = rec.severity_number
                if sev:
                    md["severity_number"] = str(sev)
                    md.setdefault(DETECTED_LEVEL, _SEVERITY_LEVEL[sev] if 0 < sev < 25 else level_of_severity(sev))
                text = rec.severity_text
                if text:
                    md["severity_text"] = text
                    md.setdefault(DETECTED_LEVEL, normalise(text))
                if rec.flags:
                    md["flags"] = str(rec.flags)
                t, observed = rec.time_unix_nano, rec.observed_time_unix_nano
                if t and observed:
                    md["observed_timestamp"] = str(observed)
                if rec.dropped_attributes_count:
                    md["dropped_attributes_count"] = str(rec.dropped_attributes_count)
                event = getattr(rec, "event_name", "")
                if event:
                    md["event_name"] = event
                body = rec.body  # unset: no kind, ""
                times.append(t or observed or now_ns)
                lines.append(body.string_value if body.WhichOneof("value") == "string_value" else any_value_string(body))
                metadata.append(md)
    return DecodedLogs(batch, rejected, why)


def _decode_columns(body: bytes, now_ns: int) -> DecodedLogs | None:
    """The request decoded with ``record_wire`` (the records of all its scopes as columns at
    once), or None when a record is not of the shape it handles."""
    w = walk_request(body)
    if w is None:
        return None
    try:
        resources = [_resource_labels(Resource.FromString(w.resource_bytes(i))) for i in range(len(w.resources))]
        scope_mds = [_scope_metadata(resources[r][1], InstrumentationScope.FromString(w.scope_bytes(i)))
                     for i, r in enumerate(w.scopes[:, 0].tolist())]
    except (DecodeError, RuntimeError):
        return None  # the record-by-record path says what is wrong
    if any(PER_RECORD_KEYS & md.keys() for md in scope_mds):
        return None
    streams: dict[tuple, int] = {}
    labels: list[dict[str, str]] = []
    stream_of_resource = []
    for index, _ in resources:
        s = streams.setdefault(tuple(sorted(index.items())), len(streams))
        if s == len(labels):
            labels.append(index)
        stream_of_resource.append(s)
    batch = LogBatch()
    recs = w.records
    if not len(recs):
        batch.streams = [LogStream(index) for index in labels]
        return DecodedLogs(batch)
    scope_stream = np.asarray(stream_of_resource, np.int64)[w.scopes[:, 0]]
    stream = scope_stream[recs[:, R_SCOPE]]
    order = np.argsort(stream, kind="stable")  # each stream's records in request order
    columns = record_columns(w, scope_mds, order)
    if columns is None:
        return None
    lines, texts, ids, n_pairs, size = columns
    ids = ids_array(ids)
    t, observed = recs[order, R_TIME], recs[order, R_OBSERVED]
    times = np.where(t != 0, t, np.where(observed != 0, observed, now_ns))
    bounds = np.searchsorted(stream[order], np.arange(len(labels) + 1)).tolist()
    for k, index in enumerate(labels):
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            batch.streams.append(LogStream(index))
            continue
        batch.streams.append(LogStream.of_columns(index, times[lo:hi].tolist(), lines.slice(lo, hi - lo),
                                                  texts.slice(lo, hi - lo), n_pairs[lo:hi], size[lo:hi],
                                                  ids.slice(lo, hi - lo)))
    return DecodedLogs(batch)
