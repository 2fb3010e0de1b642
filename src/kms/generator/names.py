"""Every name the generator writes, in one place (api-contracts.md section 5; Tempo's names).

Bucket bounds are seconds, upper bounds inclusive (``le``); ``+Inf`` is added by the histogram.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "CALLS_TOTAL", "LATENCY", "SIZE_TOTAL", "DURATION_ALIAS", "REQUEST_TOTAL", "REQUEST_FAILED_TOTAL",
    "REQUEST_SERVER_SECONDS", "REQUEST_CLIENT_SECONDS", "UNPAIRED_SPANS_TOTAL", "DROPPED_SPANS_TOTAL",
    "SPAN_METRICS_BUCKETS", "SERVICE_GRAPH_BUCKETS", "SPAN_KINDS", "STATUS_CODES", "INTRINSIC_DIMENSIONS",
    "PEER_ATTRIBUTES", "DATABASE_ATTRIBUTES", "TRACE_ID_LABEL", "CONNECTION_VIRTUAL", "CONNECTION_MESSAGING",
    "CONNECTION_DATABASE", "sanitize_label_name", "dimension_label", "format_bound",
]

# span metrics (5.1)
CALLS_TOTAL = "traces_spanmetrics_calls_total"
LATENCY = "traces_spanmetrics_latency"  # _bucket, _sum, _count
SIZE_TOTAL = "traces_spanmetrics_size_total"
DURATION_ALIAS = "traces_spanmetrics_duration_seconds"  # OTel connector naming; optional (section 9.2)

# service graphs (5.2)
REQUEST_TOTAL = "traces_service_graph_request_total"
REQUEST_FAILED_TOTAL = "traces_service_graph_request_failed_total"
REQUEST_SERVER_SECONDS = "traces_service_graph_request_server_seconds"
REQUEST_CLIENT_SECONDS = "traces_service_graph_request_client_seconds"
UNPAIRED_SPANS_TOTAL = "traces_service_graph_unpaired_spans_total"
DROPPED_SPANS_TOTAL = "traces_service_graph_dropped_spans_total"

SPAN_METRICS_BUCKETS = (0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
                        8.192, 16.384)
SERVICE_GRAPH_BUCKETS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8)

# label values by OTLP enum number (SpanKind 0..5, StatusCode 0..2), as Tempo prints the enums
SPAN_KINDS = ("SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
              "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER")
STATUS_CODES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
INTRINSIC_DIMENSIONS = frozenset({"service", "span_name", "span_kind", "status_code", "status_message", "job",
                                  "instance"})

PEER_ATTRIBUTES = ("peer.service", "db.name", "db.system", "db.system.name")  # virtual-node names, in order
DATABASE_ATTRIBUTES = ("db.namespace", "db.name", "db.system", "db.system.name")  # a client span is a db call
TRACE_ID_LABEL = "traceID"  # exemplar label, as Tempo's registry writes it

CONNECTION_VIRTUAL = "virtual_node"
CONNECTION_MESSAGING = "messaging_system"
CONNECTION_DATABASE = "database"

_BAD = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """Prometheus's label-name sanitizing: every invalid character becomes ``_``; a leading digit
    gets a ``_`` prefix."""
    out = _BAD.sub("_", name)
    return "_" + out if out[:1].isdigit() else out


def dimension_label(attribute: str) -> str:
    """The span-metrics label for a configured dimension: sanitized, and prefixed ``__`` when it
    would collide with an intrinsic label (Tempo's rule)."""
    label = sanitize_label_name(attribute)
    return "__" + label if label in INTRINSIC_DIMENSIONS else label


def format_bound(bound: float) -> str:
    """An ``le`` value as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` writes it: 0.002, 1, +Inf."""
    if bound == float("inf"):
        return "+Inf"
    return np.format_float_positional(bound, trim="-")
