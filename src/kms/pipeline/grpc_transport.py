"""OTLP/gRPC for the ``otlp`` (``otlp_grpc``) exporter: one channel per endpoint; gRPC status
codes mapped onto the HTTP ones the forwarder decides by (OTLP's retryable codes -> 503, the
rest -> 400: resending cannot help)."""

from __future__ import annotations

import grpc

__all__ = ["GrpcTransport", "METHODS"]

METHODS = {
    "t": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "l": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "x": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
# OTLP's retryable codes (RESOURCE_EXHAUSTED too: the receiver is busy)
_RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
          grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.OUT_OF_RANGE,
          grpc.StatusCode.DATA_LOSS}


class GrpcTransport:
    """``post(url, …)`` with url ``grpc://host:port/<method>`` (or ``grpcs://``)."""

    def __init__(self, timeout_s: float = 15.0, ca_file: str = ""):
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        self._channels: dict[str, grpc.Channel] = {}

    def _channel(self, scheme: str, target: str) -> grpc.Channel:
        ch = self._channels.get(target)
        if ch is None:
            if scheme == "grpcs":
                root = open(self.ca_file, "rb").read() if self.ca_file else None  # noqa: SIM115
                ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root))
            else:
                ch = grpc.insecure_channel(target)
            self._channels[target] = ch
        return ch

    def post(self, url: str, headers: dict[str, str], payload: bytes) -> tuple[int, str]:
        scheme, rest = url.split("://", 1)
        target, method = rest.split("/", 1)
        call = self._channel(scheme, target).unary_unary("/" + method)
        metadata = [(k.lower(), v) for k, v in headers.items() if k.lower() != "content-type"]
        try:
            call(payload, timeout=self.timeout_s, metadata=metadata)
        except grpc.RpcError as e:
            return (503 if e.code() in _RETRY else 400), f"gRPC {e.code().name}: {e.details()}"
        return 200, ""

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
