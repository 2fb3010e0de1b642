"""Synthetic but realistic OTLP trace requests for benchmarks.

Each trace has ``spans_per_trace`` spans (one root server span, children client/internal),
random 16-byte trace ids and 8-byte span ids, 20 services, ~8 attributes per span of which one
is high-cardinality (``http.target`` with an item id), like an instrumented HTTP service.
"""

from __future__ import annotations

import os
import random

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

ROUTES = [f"/api/v1/{name}/{{id}}" for name in ("cart", "user", "order", "item", "price", "stock", "search", "auth", "review", "ship")]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
SERVICES = [f"svc-{i}" for i in range(20)]


def _attr_variants(rng: random.Random, n: int = 64) -> list[bytes]:
    """Pre-serialized span attribute sets (the low-cardinality part), spliced into spans."""
    out = []
    for _ in range(n):
        s = trace_pb2.Span()
        a = s.attributes
        a.add(key="http.method").value.string_value = rng.choice(METHODS)
        a.add(key="http.route").value.string_value = rng.choice(ROUTES)
        a.add(key="http.status_code").value.int_value = rng.choice([200, 200, 200, 201, 404, 500])
        a.add(key="net.peer.name").value.string_value = f"host-{rng.randrange(10)}.internal"
        a.add(key="net.peer.port").value.int_value = 8080
        a.add(key="thread.name").value.string_value = f"worker-{rng.randrange(8)}"
        a.add(key="sampled").value.bool_value = True
        out.append(s.SerializeToString())
    return out


def make_requests(n_traces: int, spans_per_trace: int = 10, traces_per_request: int = 100,
                  seed: int = 1, start_ns: int = 1_700_000_000_000_000_000) -> list[bytes]:
    """Serialized ExportTraceServiceRequests, each with one ResourceSpans per service used."""
    rng = random.Random(seed)
    variants = _attr_variants(rng)
    reqs = []
    t = start_ns
    for first in range(0, n_traces, traces_per_request):
        req = trace_service_pb2.ExportTraceServiceRequest()
        by_svc: dict[str, trace_pb2.ScopeSpans] = {}
        for _ in range(min(traces_per_request, n_traces - first)):
            tid = os.urandom(16)
            root_id = os.urandom(8)
            t += 1_000_000
            for j in range(spans_per_trace):
                svc = SERVICES[(hash(tid) + j) % len(SERVICES)] if j else SERVICES[tid[0] % len(SERVICES)]
                ss = by_svc.get(svc)
                if ss is None:
                    rs = req.resource_spans.add()
                    rs.resource.attributes.add(key="service.name").value.string_value = svc
                    rs.resource.attributes.add(key="service.version").value.string_value = "1.4.2"
                    rs.resource.attributes.add(key="k8s.namespace.name").value.string_value = "shop"
                    rs.resource.attributes.add(key="telemetry.sdk.language").value.string_value = "python"
                    ss = rs.scope_spans.add()
                    ss.scope.name = "opentelemetry.instrumentation.flask"
                    ss.scope.version = "0.48b0"
                    by_svc[svc] = ss
                s = ss.spans.add()
                s.MergeFromString(variants[rng.randrange(len(variants))])
                s.trace_id = tid
                s.span_id = root_id if j == 0 else os.urandom(8)
                if j:
                    s.parent_span_id = root_id
                s.name = f"GET {ROUTES[j % len(ROUTES)]}"
                s.kind = 2 if j == 0 else rng.choice((1, 3))
                start = t + j * 100_000
                s.start_time_unix_nano = start
                s.end_time_unix_nano = start + rng.randrange(50_000, 50_000_000)
                s.attributes.add(key="http.target").value.string_value = f"/api/v1/item/{rng.randrange(10**6)}"
                if rng.random() < 0.02:
                    s.status.code = 2
                    s.status.message = "upstream timeout"
        reqs.append(req.SerializeToString())
    return reqs
