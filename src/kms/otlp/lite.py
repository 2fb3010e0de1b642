"""Trimmed views of the OTLP export requests, for the ingest hot path.

Each view is wire-compatible with the real message but declares only the fields ingest turns
into columns. Everything else of a span / log record (attributes, events, links, ...) is left
undeclared, so upb keeps it as unknown fields; clearing the declared fields and re-serializing
then yields exactly those remaining fields as valid wire bytes of the real message, without any
Python work per attribute. Resource and scope are declared as ``bytes`` so they arrive already
serialized (they are stored dictionary-encoded, once per ResourceSpans/ScopeSpans).
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["RpcStatus", "TracesRequest", "LogsRequest", "SPAN_COLUMN_FIELDS", "LOG_COLUMN_FIELDS"]

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_T = {
    "bytes": _F.TYPE_BYTES,
    "string": _F.TYPE_STRING,
    "int32": _F.TYPE_INT32,
    "fixed64": _F.TYPE_FIXED64,
    "fixed32": _F.TYPE_FIXED32,
}

# (name, number, type or ".kmslite.Message", repeated)
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "Status": [("message", 2, "string", False), ("code", 3, "int32", False)],
    "Span": [
        ("trace_id", 1, "bytes", False),
        ("span_id", 2, "bytes", False),
        ("parent_span_id", 4, "bytes", False),
        ("name", 5, "string", False),
        ("kind", 6, "int32", False),
        ("start_time_unix_nano", 7, "fixed64", False),
        ("end_time_unix_nano", 8, "fixed64", False),
        ("status", 15, ".kmslite.Status", False),
    ],
    "ScopeSpans": [("scope", 1, "bytes", False), ("spans", 2, ".kmslite.Span", True)],
    "ResourceSpans": [("resource", 1, "bytes", False), ("scope_spans", 2, ".kmslite.ScopeSpans", True)],
    "TracesRequest": [("resource_spans", 1, ".kmslite.ResourceSpans", True)],
    "AnyValue": [("string_value", 1, "string", False)],
    "LogRecord": [
        ("time_unix_nano", 1, "fixed64", False),
        ("observed_time_unix_nano", 11, "fixed64", False),
        ("severity_number", 2, "int32", False),
        ("severity_text", 3, "string", False),
        ("trace_id", 9, "bytes", False),
        ("span_id", 10, "bytes", False),
        ("body", 5, ".kmslite.AnyValue", False),
    ],
    "ScopeLogs": [("scope", 1, "bytes", False), ("log_records", 2, ".kmslite.LogRecord", True)],
    "ResourceLogs": [("resource", 1, "bytes", False), ("scope_logs", 2, ".kmslite.ScopeLogs", True)],
    "LogsRequest": [("resource_logs", 1, ".kmslite.ResourceLogs", True)],
    "RpcStatus": [("code", 1, "int32", False), ("message", 2, "string", False)],
}

#: Span fields that become columns; they are cleared before the rest is serialized.
SPAN_COLUMN_FIELDS = tuple(f[0] for f in _MESSAGES["Span"])
#: Log record fields that always become columns (``body`` only when it is a plain string).
LOG_COLUMN_FIELDS = tuple(f[0] for f in _MESSAGES["LogRecord"] if f[0] != "body")


def _build() -> descriptor_pool.DescriptorPool:
    fd = descriptor_pb2.FileDescriptorProto(name="kms_lite.proto", package="kmslite", syntax="proto3")
    for msg_name, fields in _MESSAGES.items():
        m = fd.message_type.add(name=msg_name)
        for name, number, typ, repeated in fields:
            f = m.field.add(name=name, number=number, label=_REP if repeated else _OPT)
            if typ.startswith("."):
                f.type, f.type_name = _F.TYPE_MESSAGE, typ
            else:
                f.type = _T[typ]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return pool


_POOL = _build()


def _cls(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"kmslite.{name}"))


TracesRequest = _cls("TracesRequest")
LogsRequest = _cls("LogsRequest")
#: google.rpc.Status, the body of OTLP/HTTP error responses.
RpcStatus = _cls("RpcStatus")
