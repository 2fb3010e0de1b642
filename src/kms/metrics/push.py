"""Prometheus remote write receiver: ``POST /api/v1/push`` (Mimir) and ``/api/v1/write``
(Prometheus), with Prometheus's status semantics: 2xx stored, 4xx bad data (never retried),
429/5xx retried by the client."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.errors import KmsError, http_status
from kms.metrics.remote_write import decode_remote_write, protocol_version, written_headers
from kms.metrics.samples import SampleBatch
from kms.otlp.http import read_body

__all__ = ["remote_write_routes"]


def _decode_and_export(export, tenant: str, body: bytes, content_type, content_encoding, max_bytes: int) -> SampleBatch:
    batch = decode_remote_write(body, content_type=content_type, content_encoding=content_encoding,
                                max_bytes=max_bytes)  # fmt: skip
    export(tenant, batch)
    return batch


def remote_write_routes(
    export: Callable[[str, SampleBatch], object],
    resolve_tenant: Callable[[str | None], str],
    max_bytes: int,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[Route]:
    """``export(tenant, batch)`` blocks until the samples are durable; it raises KmsError to refuse."""

    async def handle(request: Request) -> Response:
        h = request.headers
        try:
            tenant = resolve_tenant(h.get("x-scope-orgid"))
            body = await read_body(request, max_bytes)
            batch = await run_in_threadpool(  # one worker-thread hop for decode and store
                _decode_and_export, export, tenant, body, h.get("content-type"), h.get("content-encoding"), max_bytes
            )
        except Exception as e:  # noqa: BLE001 - every failure becomes a status
            if on_error:
                on_error("metrics", e)
            status = http_status(e)
            headers = {"Retry-After": str(int(getattr(e, "retry_after_s", None) or 1))} if status in (429, 503) else {}
            msg = e.message if isinstance(e, KmsError) else f"internal error: {e}"
            return PlainTextResponse(msg, status_code=status, headers=headers)
        headers = written_headers(batch) if protocol_version(h.get("content-type")) == 2 else {}
        if any(reason != "invalid_exemplar" for reason in batch.rejected):
            # Prometheus answers 400 when part of a request was refused: the rest is stored and
            # the client must not resend it. Bad exemplars are only counted, as Prometheus does.
            return PlainTextResponse("; ".join(batch.errors), status_code=400, headers=headers)
        return Response(status_code=204, headers=headers)

    return [
        Route(path, handle, methods=["POST"])
        for path in ("/api/v1/push", "/api/v1/write", "/prometheus/api/v1/push", "/prometheus/api/v1/write")
    ]
