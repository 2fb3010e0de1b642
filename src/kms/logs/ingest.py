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
import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kms.errors import BadInput
from kms.logs.batch import LogBatch, LogStream
from kms.logs.enrich import DETECTED_LEVEL, level_of_severity, normalise
from kms.logs.record_wire import PER_RECORD_KEYS, RawLogsRequest, decode_records, metadata_texts

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
                if tid:
                    md["trace_id"] = tid.hex()
                if sid:
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
    try:
        req = RawLogsRequest.FromString(body)
        resources = [(Resource.FromString(rl.resource), list(rl.scope_logs)) for rl in req.resource_logs]
    except (DecodeError, RuntimeError):
        return None  # the record-by-record path says what is wrong
    streams: dict[tuple, int] = {}
    labels: list[dict[str, str]] = []
    scope_mds: list[dict[str, str]] = []
    stream_of: list[int] = []  # per scope
    records: list[list[bytes]] = []  # per scope
    for resource, scopes in resources:
        index, res_md = _resource_labels(resource)
        s = streams.setdefault(tuple(sorted(index.items())), len(streams))
        if s == len(labels):
            labels.append(index)
        for sl in scopes:
            try:
                scope_md = _scope_metadata(res_md, InstrumentationScope.FromString(sl.scope))
            except (DecodeError, RuntimeError):
                return None
            if PER_RECORD_KEYS & scope_md.keys():
                return None
            scope_mds.append(scope_md)
            stream_of.append(s)
            records.append(list(sl.log_records))
    counts = np.array([len(r) for r in records], np.int64)
    batch = LogBatch()
    if not counts.sum():
        batch.streams = [LogStream(index) for index in labels]
        return DecodedLogs(batch)
    c = decode_records([r for rs in records for r in rs])
    if c is None or (c.time >= 1 << 63).any() or (c.observed >= 1 << 63).any():
        return None
    if c.attributes.keys() & (PER_RECORD_KEYS | set().union(*scope_mds)):
        return None  # an attribute overriding a scope's pair or overridden by the record's own
    scope_of = np.repeat(np.arange(len(records)), counts)
    texts, n_pairs, size = metadata_texts(scope_mds, scope_of, c)
    times = np.where(c.time != 0, c.time, np.where(c.observed != 0, c.observed, now_ns)).astype(np.int64)
    stream = np.asarray(stream_of, np.int64)[scope_of]
    order = np.argsort(stream, kind="stable")  # each stream's records in request order
    bounds = np.searchsorted(stream[order], np.arange(len(labels) + 1))
    for k, index in enumerate(labels):
        rows = order[bounds[k]:bounds[k + 1]]
        if not len(rows):
            batch.streams.append(LogStream(index))
            continue
        take = pa.array(rows)
        batch.streams.append(LogStream.of_columns(index, times[rows].tolist(), c.body.take(take), texts.take(take),
                                                  n_pairs[rows], size[rows]))
    return DecodedLogs(batch)
