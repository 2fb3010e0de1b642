"""Loki's push protobuf (``pkg/push/push.proto``, package ``logproto``), built at runtime from a
descriptor: ``PushRequest`` and the messages inside it, wire-compatible with Loki's."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["PushRequest", "StreamAdapter", "EntryAdapter", "LabelPairAdapter"]

_F = descriptor_pb2.FieldDescriptorProto
_T = {"string": _F.TYPE_STRING, "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32, "uint64": _F.TYPE_UINT64}

# (name, number, type or ".Message", repeated)
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "Timestamp": [("seconds", 1, "int64", False), ("nanos", 2, "int32", False)],  # google.protobuf.Timestamp
    "LabelPairAdapter": [("name", 1, "string", False), ("value", 2, "string", False)],
    "EntryAdapter": [
        ("timestamp", 1, ".Timestamp", False),
        ("line", 2, "string", False),
        ("structuredMetadata", 3, ".LabelPairAdapter", True),
        ("parsed", 4, ".LabelPairAdapter", True),
    ],
    "StreamAdapter": [("labels", 1, "string", False), ("entries", 2, ".EntryAdapter", True), ("hash", 3, "uint64", False)],
    "PushRequest": [("streams", 1, ".StreamAdapter", True), ("format", 2, "string", False)],
}


def _classes() -> dict:
    fd = descriptor_pb2.FileDescriptorProto(name="kms_logproto.proto", package="kmslogproto", syntax="proto3")
    for msg_name, fields in _MESSAGES.items():
        m = fd.message_type.add(name=msg_name)
        for name, number, typ, repeated in fields:
            f = m.field.add(name=name, number=number, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if typ.startswith("."):
                f.type, f.type_name = _F.TYPE_MESSAGE, f".kmslogproto{typ}"
            else:
                f.type = _T[typ]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"kmslogproto.{n}")) for n in _MESSAGES}


_C = _classes()
PushRequest = _C["PushRequest"]
StreamAdapter = _C["StreamAdapter"]
EntryAdapter = _C["EntryAdapter"]
LabelPairAdapter = _C["LabelPairAdapter"]
