"""The ``zipkin`` receiver: Zipkin v2 JSON (``POST /api/v2/spans``) translated into OTLP spans
the way the collector's Zipkin translator does: ``localEndpoint.serviceName`` -> the resource's
``service.name``, kinds, microsecond times -> nanoseconds, tags -> attributes (``error`` -> an
error status), annotations -> events, ``remoteEndpoint.serviceName`` -> ``peer.service``."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.errors import BadInput, KmsError, http_status

__all__ = ["zipkin_to_otlp", "zipkin_app"]

_KINDS = {"CLIENT": Span.SPAN_KIND_CLIENT, "SERVER": Span.SPAN_KIND_SERVER, "PRODUCER": Span.SPAN_KIND_PRODUCER,
          "CONSUMER": Span.SPAN_KIND_CONSUMER}


def _kv(k: str, v: str) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v))


def _id(text: object, size: int, what: str) -> bytes:
    s = str(text or "")
    try:
        raw = bytes.fromhex(s.rjust(size * 2, "0"))
    except ValueError:
        raise BadInput(f"zipkin span: {what} {s!r} is not hex") from None
    if len(raw) != size:
        raise BadInput(f"zipkin span: {what} {s!r} is longer than {size} bytes")
    return raw


def zipkin_to_otlp(spans: object) -> bytes:
    if not isinstance(spans, list):
        raise BadInput("zipkin: expected a JSON array of spans")
    req = ExportTraceServiceRequest()
    by_service: dict[str, object] = {}
    for z in spans:
        if not isinstance(z, dict) or not z.get("traceId") or not z.get("id"):
            raise BadInput("zipkin span: traceId and id are required")
        service = str((z.get("localEndpoint") or {}).get("serviceName") or "unknown_service")
        scope = by_service.get(service)
        if scope is None:
            rs = req.resource_spans.add()
            rs.resource.attributes.append(_kv("service.name", service))
            scope = by_service[service] = rs.scope_spans.add()
        start = int(z.get("timestamp") or 0) * 1000
        span = scope.spans.add(
            trace_id=_id(z["traceId"], 16, "traceId"), span_id=_id(z["id"], 8, "id"),
            parent_span_id=_id(z["parentId"], 8, "parentId") if z.get("parentId") else b"",
            name=str(z.get("name") or ""), kind=_KINDS.get(str(z.get("kind") or "").upper(), Span.SPAN_KIND_INTERNAL),
            start_time_unix_nano=start, end_time_unix_nano=start + int(z.get("duration") or 0) * 1000)
        tags = {str(k): str(v) for k, v in (z.get("tags") or {}).items()}
        if "error" in tags:
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = tags.pop("error")
        remote = z.get("remoteEndpoint") or {}
        if remote.get("serviceName"):
            tags.setdefault("peer.service", str(remote["serviceName"]))
        span.attributes.extend(_kv(k, v) for k, v in tags.items())
        for a in z.get("annotations") or []:
            span.events.add(time_unix_nano=int(a.get("timestamp") or 0) * 1000, name=str(a.get("value") or ""))
    return req.SerializeToString()


def zipkin_app(export: Callable[[bytes], object], max_bytes: int = 16 << 20) -> Starlette:
    """``export(otlp_traces_bytes)`` stores or queues them; refusals keep their status code."""

    async def spans(request: Request) -> Response:
        body = await request.body()
        if len(body) > max_bytes:
            return PlainTextResponse("request too large", 413)
        if "json" not in request.headers.get("content-type", "application/json"):
            return PlainTextResponse("only Zipkin v2 JSON is accepted", 415)
        try:
            payload = zipkin_to_otlp(orjson.loads(body))
            await run_in_threadpool(export, payload)
        except orjson.JSONDecodeError as e:
            return PlainTextResponse(f"invalid JSON: {e}", 400)
        except KmsError as e:
            return PlainTextResponse(e.message, http_status(e))
        return Response(status_code=202)

    return Starlette(routes=[Route("/api/v2/spans", spans, methods=["POST"])])
