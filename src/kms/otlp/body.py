"""OTLP/HTTP request bodies: content encoding, content type, and JSON -> protobuf.

Everything ends as the serialized protobuf request, so one decoder per signal serves
gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON alike.
"""

from __future__ import annotations

import base64
import zlib

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from kms.errors import BadInput, TooLarge

__all__ = ["PROTOBUF", "JSON", "content_kind", "decompress", "json_to_protobuf", "REQUEST_TYPES", "RESPONSE_TYPES"]

PROTOBUF = "protobuf"
JSON = "json"

REQUEST_TYPES = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}
RESPONSE_TYPES = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
}

# OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes fields.
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


class UnsupportedMediaType(BadInput):
    reason = "unsupported_media_type"


def content_kind(content_type: str | None) -> str:
    """'protobuf' or 'json' for an OTLP/HTTP Content-Type; anything else is refused (415)."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct in ("application/x-protobuf", "application/protobuf"):
        return PROTOBUF
    if ct == "application/json":
        return JSON
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}: use application/x-protobuf or application/json"
    )


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate or none), refusing output larger than max_bytes."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity"):
        out = body
    elif enc in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, max_bytes + 1)
            if not d.eof and len(out) <= max_bytes:
                raise BadInput(f"truncated {enc} body")
        except zlib.error as e:
            raise BadInput(f"invalid {enc} body: {e}") from e
    else:
        raise BadInput(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    if len(out) > max_bytes:
        raise TooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
    return out


def _hex_ids_to_base64(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str):
                try:
                    node[k] = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError as e:
                    raise BadInput(f"{k} {v!r} is not hex") from e
            elif isinstance(v, (dict, list)):
                _hex_ids_to_base64(v)
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, (dict, list)):
                _hex_ids_to_base64(v)


def json_to_protobuf(signal: str, body: bytes) -> bytes:
    """OTLP/JSON (hex ids, lowerCamelCase or snake_case keys) -> serialized protobuf request."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadInput(f"malformed OTLP/JSON: {e}") from e
    if not isinstance(doc, dict):
        raise BadInput("malformed OTLP/JSON: the body must be a JSON object")
    _hex_ids_to_base64(doc)
    try:
        msg = json_format.ParseDict(doc, REQUEST_TYPES[signal](), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise BadInput(f"invalid OTLP/JSON {signal} request: {e}") from e
    return msg.SerializeToString()

