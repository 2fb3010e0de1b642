"""Helpers shared by the end-to-end tests: the real OpenTelemetry SDK as the client."""

from __future__ import annotations

from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def tracer_provider(exporter, service: str) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def grpc_exporter(kms, tenant: str | None = None):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    headers = (("x-scope-orgid", tenant),) if tenant else None
    return OTLPSpanExporter(endpoint=kms.grpc_target, insecure=True, headers=headers)


def http_exporter(kms, tenant: str | None = None, port: int | None = None):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = {"X-Scope-OrgID": tenant} if tenant else None
    return OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port or kms.otlp_http_port}/v1/traces", headers=headers)


def make_trace(tp: TracerProvider, name: str = "GET /cart") -> tuple[str, list[str]]:
    """One trace of a server span with two children; returns (trace id hex, span names)."""
    tracer = tp.get_tracer("e2e")
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes={"http.method": "GET", "http.status_code": 500}) as root:
        with tracer.start_as_current_span("SELECT cart", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}):
            pass
        with tracer.start_as_current_span("render") as child:
            child.set_status(Status(StatusCode.ERROR, "template missing"))
        tid = format(root.get_span_context().trace_id, "032x")
    return tid, [name, "SELECT cart", "render"]


def v2_protobuf_trace(body: bytes) -> trace_pb2.TracesData:
    """Unwrap field 1 (Trace, wire-identical to TracesData) of Tempo's TraceByIDResponse."""
    assert body[0] == 0x0A, body[:10]
    n, shift, i = 0, 0, 1
    while True:
        b = body[i]
        n |= (b & 0x7F) << shift
        i += 1
        shift += 7
        if not b & 0x80:
            break
    return trace_pb2.TracesData.FromString(body[i:i + n])


def span_names(data: trace_pb2.TracesData) -> list[str]:
    return sorted(s.name for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans)
