"""Protobuf message classes built at runtime from field tables, for wire formats whose
generated code is not a package we can depend on (Prometheus remote write, Loki's push).

A table maps a message name to its fields ``(name, number, type, repeated)``; ``type`` is a
scalar name (``string``, ``bytes``, ``double``, ``int64``, ...) or ``.Message`` for another
message of the same table. Enums are declared ``int32`` (the same varint on the wire).
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["message_classes"]

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "double": _F.TYPE_DOUBLE,
    "int64": _F.TYPE_INT64,
    "int32": _F.TYPE_INT32,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "sint32": _F.TYPE_SINT32,
    "sint64": _F.TYPE_SINT64,
}

Fields = list[tuple[str, int, str, bool]]


def message_classes(package: str, messages: dict[str, Fields], syntax: str = "proto3") -> dict[str, type]:
    """``{name: class}`` of every message of ``messages``, in their own ``package`` (a name that
    no other table uses: one pool per package)."""
    fd = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package, syntax=syntax)
    for msg_name, fields in messages.items():
        m = fd.message_type.add(name=msg_name)
        for name, number, typ, repeated in fields:
            f = m.field.add(name=name, number=number, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if typ.startswith("."):
                f.type, f.type_name = _F.TYPE_MESSAGE, f".{package}{typ}"
            else:
                f.type = _SCALARS[typ]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{n}")) for n in messages}
