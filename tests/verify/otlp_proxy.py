"""An OTLP/HTTP relay that damages what it forwards, as a misconfigured collector pipeline would:
it drops the span context of log records or the exemplars of metrics, then forwards to kms."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest


def _strip_log_context(body: bytes) -> bytes:
    req = ExportLogsServiceRequest.FromString(body)
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                rec.ClearField("trace_id")
                rec.ClearField("span_id")
    return req.SerializeToString()


def _strip_exemplars(body: bytes) -> bytes:
    req = ExportMetricsServiceRequest.FromString(body)
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in getattr(m, m.WhichOneof("data")).data_points:
                    del p.exemplars[:]
    return req.SerializeToString()


DAMAGE = {"logs-without-trace-context": ("/v1/logs", _strip_log_context),
          "metrics-without-exemplars": ("/v1/metrics", _strip_exemplars)}


class DamagingRelay:
    def __init__(self, upstream: str, damage: str):
        path, fn = DAMAGE[damage]
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == path:
                    body = fn(body)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "x-scope-orgid")}
                req = urllib.request.Request(relay.upstream + self.path, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=10) as resp:
                    out, status = resp.read(), resp.status
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.upstream = upstream.rstrip("/")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> DamagingRelay:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
