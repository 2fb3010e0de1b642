"""Loki's push protobuf (``pkg/push/push.proto``, package ``logproto``), built at runtime from a
descriptor: ``PushRequest`` and the messages inside it, wire-compatible with Loki's."""

from __future__ import annotations

from kms.protoclasses import message_classes

__all__ = ["PushRequest", "StreamAdapter", "EntryAdapter", "LabelPairAdapter", "RawPushRequest"]

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


_C = message_classes("kmslogproto", _MESSAGES)
# The same wire format with each stream's entries left as bytes (``entry_wire`` reads them).
_RAW = message_classes("kmslogprotoraw", {
    "RawStream": [("labels", 1, "string", False), ("entries", 2, "bytes", True), ("hash", 3, "uint64", False)],
    "RawPushRequest": [("streams", 1, ".RawStream", True), ("format", 2, "string", False)],
})
RawPushRequest = _RAW["RawPushRequest"]
PushRequest = _C["PushRequest"]
StreamAdapter = _C["StreamAdapter"]
EntryAdapter = _C["EntryAdapter"]
LabelPairAdapter = _C["LabelPairAdapter"]
