"""Loki push receiver: ``POST /loki/api/v1/push`` and the legacy ``/api/prom/push``. 204 once
stored (WAL fsynced); errors are plain text with Loki's status codes (400 invalid, 413 too
large, 429 rate limited with ``Retry-After``, 5xx retryable)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms.errors import KmsError, http_status
from kms.logs.batch import LogBatch
from kms.logs.loki_push import decode_push
from kms.otlp.http import read_body

__all__ = ["push_routes", "PUSH_PATHS"]

PUSH_PATHS = ("/loki/api/v1/push", "/api/prom/push")


def push_routes(
    export: Callable[[str, LogBatch, int], object],
    resolve_tenant: Callable[[str | None], str],
    max_bytes: int,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[Route]:
    """``export(tenant, batch, nbytes)`` blocks until the entries are durable; raises KmsError to refuse."""

    async def handle(request: Request) -> Response:
        h = request.headers
        try:
            tenant = resolve_tenant(h.get("x-scope-orgid"))
            body = await read_body(request, max_bytes)
            batch = await run_in_threadpool(decode_push, body, h.get("content-type"), h.get("content-encoding"),
                                            max_bytes)
            await run_in_threadpool(export, tenant, batch, len(body))
        except Exception as e:  # noqa: BLE001 - every failure becomes a status
            if on_error:
                on_error("logs", e)
            status = http_status(e)
            headers = {"Retry-After": str(int(getattr(e, "retry_after_s", None) or 1))} if status in (429, 503) else {}
            msg = e.message if isinstance(e, KmsError) else f"internal error: {e}"
            return PlainTextResponse(msg, status_code=status, headers=headers)
        return Response(status_code=204)

    return [Route(path, handle, methods=["POST"]) for path in PUSH_PATHS]
