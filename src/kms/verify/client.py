"""HTTP and OTLP plumbing for ``kms verify``: JSON GETs with the tenant header, and OTLP exports over
HTTP (protobuf) or gRPC. Only the standard library and the OTLP protobufs: verify runs anywhere kms does."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from google.protobuf.message import Message

__all__ = ["ApiError", "HttpClient", "export_otlp"]

TENANT_HEADER = "X-Scope-OrgID"


class ApiError(Exception):
    """A query API answered with an error or could not be reached."""


@dataclass
class HttpClient:
    tenant: str | None = None
    timeout_s: float = 10.0

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"User-Agent": "kms-verify"}
        if self.tenant:
            h[TENANT_HEADER] = self.tenant
        return {**h, **(extra or {})}

    def get_json(self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                 not_found_ok: bool = False) -> dict | None:
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, headers=self._headers(headers))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code == 404 and not_found_ok:
                return None
            body = e.read()[:300].decode(errors="replace").strip()
            raise ApiError(f"{e.code} from {url.split('?')[0]}: {body}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ApiError(f"{url.split('?')[0]}: {getattr(e, 'reason', e)}") from None

    def post(self, url: str, body: bytes, content_type: str) -> None:
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers=self._headers({"Content-Type": content_type}))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            text = e.read()[:300].decode(errors="replace").strip()
            raise ApiError(f"{e.code} from {url}: {text}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ApiError(f"{url}: {getattr(e, 'reason', e)}") from None


_GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def export_otlp(endpoint: str, signal: str, request: Message, client: HttpClient) -> None:
    """Send one OTLP export. ``endpoint``: ``http(s)://host:port[/prefix]`` for OTLP/HTTP (the
    signal's path ``/v1/<signal>`` is appended, as the SDKs do), or ``grpc://host:port``."""
    if endpoint.startswith("grpc://"):
        import grpc

        target = endpoint.removeprefix("grpc://").rstrip("/")
        metadata = [(TENANT_HEADER.lower(), client.tenant)] if client.tenant else []
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(_GRPC_METHODS[signal], request_serializer=lambda m: m.SerializeToString())
            try:
                call(request, timeout=client.timeout_s, metadata=metadata)
            except grpc.RpcError as e:
                raise ApiError(f"gRPC {e.code().name} from {target}: {e.details()}") from None
        return
    client.post(f"{endpoint.rstrip('/')}/v1/{signal}", request.SerializeToString(), "application/x-protobuf")
