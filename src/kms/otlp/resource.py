"""Small helpers over serialized Resource messages (decoded once per ResourceSpans/Logs)."""

from __future__ import annotations

from opentelemetry.proto.resource.v1 import resource_pb2

__all__ = ["service_name_of", "UNKNOWN_SERVICE"]

#: What OpenTelemetry SDKs report when no service.name is set; used when it is missing entirely.
UNKNOWN_SERVICE = "unknown_service"


def service_name_of(resource_bytes: bytes) -> str:
    if not resource_bytes:
        return UNKNOWN_SERVICE
    res = resource_pb2.Resource.FromString(resource_bytes)
    for kv in res.attributes:
        if kv.key == "service.name":
            return kv.value.string_value or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE
