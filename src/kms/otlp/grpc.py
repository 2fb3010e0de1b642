"""OTLP/gRPC receiver: TraceService, MetricsService and LogsService ``Export`` on one server.

Requests are handed over as raw bytes (no generated servicer classes), so the same decoder
serves gRPC and HTTP. Refusals map to gRPC codes in ``kms.errors``; RESOURCE_EXHAUSTED and
UNAVAILABLE tell the client to retry.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import Executor

import grpc

from kms.errors import KmsError, grpc_status_name
from kms.otlp.body import RESPONSE_TYPES
from kms.otlp.peer import PEER, grpc_peer_ip

__all__ = ["OtlpGrpcServer"]

_SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}
_REJECTED_FIELD = {"traces": "rejected_spans", "metrics": "rejected_data_points", "logs": "rejected_log_records"}


def _identity(b: bytes) -> bytes:
    return b


class OtlpGrpcServer:
    def __init__(
        self,
        export: Callable[[str, str, bytes], object],
        resolve_tenant: Callable[[str | None], str],
        executor: Executor,
        max_bytes: int,
        on_error: Callable[[str, Exception], None] | None = None,
    ):
        self._export = export
        self._tenant = resolve_tenant
        self._executor = executor
        self._on_error = on_error
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_bytes),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ]
        )
        handlers = [
            grpc.method_handlers_generic_handler(
                service, {"Export": grpc.unary_unary_rpc_method_handler(self._handler(signal), _identity, _identity)}
            )
            for signal, service in _SERVICES.items()
        ]
        self.server.add_generic_rpc_handlers(handlers)

    def _handler(self, signal: str):
        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            md = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
            loop = asyncio.get_running_loop()
            try:
                tenant = self._tenant(md.get("x-scope-orgid"))
                PEER.set(grpc_peer_ip(context.peer()))
                ctx = contextvars.copy_context()  # run_in_executor does not carry it over
                result = await loop.run_in_executor(self._executor, ctx.run, self._export, signal, tenant, request)
            except Exception as e:  # noqa: BLE001 - every failure becomes a gRPC status
                if self._on_error:
                    self._on_error(signal, e)
                code = getattr(grpc.StatusCode, grpc_status_name(e))
                message = e.message if isinstance(e, KmsError) else f"internal error: {e}"
                await context.abort(code, message)
            resp = RESPONSE_TYPES[signal]()
            if result.rejected or result.message:
                setattr(resp.partial_success, _REJECTED_FIELD[signal], result.rejected)
                resp.partial_success.error_message = result.message
            return resp.SerializeToString()

        return export

    def add_port(self, host: str, port: int) -> int:
        return self.server.add_insecure_port(f"{host}:{port}")

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace_s: float = 5.0) -> None:
        await self.server.stop(grace_s)
