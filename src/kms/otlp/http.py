"""OTLP/HTTP receiver routes: ``/v1/{traces,metrics,logs}`` and their ``/otlp`` aliases.

Responses follow the OTLP/HTTP spec: the Export*ServiceResponse (with partial_success) in the
request's encoding on success, a ``google.rpc.Status`` body on failure, ``Retry-After`` on
429/503.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kms.errors import KmsError, TooLarge, http_status
from kms.otlp.body import JSON, PROTOBUF, RESPONSE_TYPES, content_kind, decompress, json_to_protobuf
from kms.otlp.lite import RpcStatus
from kms.otlp.peer import PEER

__all__ = ["otlp_routes", "read_body"]

_CT = {PROTOBUF: "application/x-protobuf", JSON: "application/json"}
_REJECTED_FIELD = {"traces": "rejected_spans", "metrics": "rejected_data_points", "logs": "rejected_log_records"}
_GRPC_CODE = {400: 3, 401: 16, 404: 5, 413: 3, 415: 3, 429: 8, 503: 14}


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing (413) anything over max_bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(err: Exception, kind: str) -> Response:
    status = http_status(err)
    message = err.message if isinstance(err, KmsError) else f"internal error: {err}"
    code = _GRPC_CODE.get(status, 13)
    if kind == JSON:
        body = orjson.dumps({"code": code, "message": message})
    else:
        body = RpcStatus(code=code, message=message).SerializeToString()
    headers = {}
    retry = getattr(err, "retry_after_s", None)
    if status in (429, 503):
        headers["Retry-After"] = str(int(retry or 1))
    return Response(body, status_code=status, media_type=_CT[kind], headers=headers)


def _success(signal: str, kind: str, rejected: int, message: str) -> Response:
    resp = RESPONSE_TYPES[signal]()
    if rejected or message:
        setattr(resp.partial_success, _REJECTED_FIELD[signal], rejected)
        resp.partial_success.error_message = message
    if kind == JSON:
        body = orjson.dumps(json_format.MessageToDict(resp))
    else:
        body = resp.SerializeToString()
    return Response(body, status_code=200, media_type=_CT[kind])


def otlp_routes(
    export: Callable[[str, str, bytes], object],
    resolve_tenant: Callable[[str | None], str],
    max_bytes: int,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[Route]:
    """Routes for every OTLP/HTTP path. ``export(signal, tenant, protobuf_bytes)`` blocks and
    returns an object with ``rejected`` and ``message``; it raises KmsError to refuse."""

    def endpoint(signal: str):
        async def handle(request: Request) -> Response:
            kind = JSON if "json" in request.headers.get("content-type", "") else PROTOBUF
            try:
                kind = content_kind(request.headers.get("content-type"))
                tenant = resolve_tenant(request.headers.get("x-scope-orgid"))
                PEER.set(request.client.host if request.client else "")  # run_in_threadpool carries it
                raw = await read_body(request, max_bytes)
                payload = decompress(raw, request.headers.get("content-encoding"), max_bytes)
                if kind == JSON:
                    payload = await run_in_threadpool(json_to_protobuf, signal, payload)
                result = await run_in_threadpool(export, signal, tenant, payload)
            except Exception as e:  # noqa: BLE001 - every failure becomes an OTLP error response
                if on_error:
                    on_error(signal, e)
                return _error(e, kind)
            return _success(signal, kind, result.rejected, result.message)

        return handle

    routes = []
    for signal in ("traces", "metrics", "logs"):
        h = endpoint(signal)
        for path in (f"/v1/{signal}", f"/otlp/v1/{signal}"):
            routes.append(Route(path, h, methods=["POST"]))
    routes.append(Route("/api/v1/otlp/v1/metrics", endpoint("metrics"), methods=["POST"]))
    return routes
