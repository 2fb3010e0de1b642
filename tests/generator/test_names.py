"""Generator output compared, name by name, with api-contracts.md section 5 (read from the spec)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gen_helpers import latest
from gen_spans import table

from kms.generator import GeneratorSettings, TenantGenerator
from kms.generator.names import SERVICE_GRAPH_BUCKETS, SPAN_METRICS_BUCKETS, format_bound

SPEC = Path("/work/shared/specs/api-contracts.md")
pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="the shared API contracts are not here")


def section(title: str) -> str:
    text = SPEC.read_text()
    start = text.index(title)
    return text[start:text.index("\n### ", start + 1)]


def spec_names(text: str) -> set[str]:
    """Metric names in the first column of a section's table; ``_bucket/_sum/_count`` and ``_*`` expanded."""
    names = set()
    for row in re.findall(r"^\| (`traces_[^|]+)\|", text, re.M):
        for m in re.findall(r"`([a-z_]+)(/[a-z_/]+|\*)?`", row):
            base, tail = m
            if tail == "*" or tail.startswith("/") or base.endswith("_"):
                stem = base.rstrip("_")
                stem = stem[: -len("_bucket")] if stem.endswith("_bucket") else stem
                names |= {f"{stem}_bucket", f"{stem}_sum", f"{stem}_count"}
            else:
                names.add(base)
    return names


def spec_buckets(text: str) -> tuple[float, ...]:
    """The section's default buckets, e.g. "Default buckets: `0.1, 0.2, ..., +Inf`", without +Inf."""
    listed = re.search(r"[Dd]efault (?:latency )?buckets: `([^`]+)`", text).group(1)
    return tuple(float(b) for b in listed.replace("\n", " ").split(",") if b.strip() != "+Inf")


def enum(text: str, prefix: str) -> set[str]:
    """``PREFIX_A|B|C`` in the spec -> {PREFIX_A, PREFIX_B, PREFIX_C}."""
    listed = re.search(rf"`({prefix}[A-Z_|]+)`", text).group(1).removeprefix(prefix)
    return {prefix + v for v in listed.split("|")}


SPANS = [
    {"service": "frontend", "id": "a1", "kind": "server", "name": "GET /", "ms": 30},
    {"service": "frontend", "id": "a2", "parent": "a1", "kind": "client", "name": "GET /api", "ms": 20},
    {"service": "backend", "id": "b1", "parent": "a2", "kind": "server", "name": "GET /api", "status": "error"},
    {"service": "backend", "id": "b2", "parent": "b1", "kind": "client", "name": "q", "attrs": {"db.system": "pg"}},
    {"service": "backend", "id": "b3", "parent": "b1", "kind": "client", "name": "lost"},
    {"service": "backend", "id": "b4", "parent": "b1", "kind": "producer", "name": "send"},
    {"service": "worker", "id": "w1", "parent": "b4", "kind": "consumer", "name": "recv"},
]


def generated() -> dict:
    clock = [0.0]
    g = TenantGenerator(GeneratorSettings(max_items=4), clock=lambda: clock[0])
    g.consume(table(SPANS), 1_000)
    g.consume(table([{"service": "x", "id": f"z{i}", "parent": "1", "kind": "client"} for i in range(5)]), 1_000)
    clock[0] = 60.0
    return latest(g.collect(120_000))


def test_span_metric_names_labels_and_buckets():
    sec = section("### 5.1 Span metrics")
    got = generated()
    names = {name for name, _ in got}
    want = spec_names(sec) - {"traces_target_info"}  # optional (enable_target_info), not written
    assert want == {n for n in names if n.startswith("traces_spanmetrics_")}
    assert spec_buckets(sec) == SPAN_METRICS_BUCKETS
    for name, labels in got:
        if name.startswith("traces_spanmetrics_"):
            d = dict(labels)
            assert {"service", "span_name", "span_kind", "status_code"} <= set(d)
            assert d["span_kind"] in enum(sec, "SPAN_KIND_") and d["status_code"] in enum(sec, "STATUS_CODE_")
    les = sorted({dict(labels)["le"] for name, labels in got if name == "traces_spanmetrics_latency_bucket"},
                 key=float)
    assert les == [format_bound(b) for b in SPAN_METRICS_BUCKETS] + ["+Inf"]


def test_service_graph_names_labels_and_buckets():
    sec = section("### 5.2 Service graphs")
    got = generated()
    names = {name for name, _ in got if name.startswith("traces_service_graph_")}
    optional = {n for n in spec_names(sec) if "messaging_system" in n or n.endswith("connection_info")}
    assert spec_names(sec) - optional == names
    assert spec_buckets(sec) == SERVICE_GRAPH_BUCKETS
    allowed = set(re.search(r"`connection_type` ∈ (.+?)\.", sec, re.S).group(1).split("`")[1::2])
    allowed = {v.strip('"') for v in allowed}  # `""` (unset) is written as no label
    conns = {dict(labels).get("connection_type", "") for name, labels in got if name.startswith("traces_service_graph_request")}
    assert conns == allowed  # every connection type appears in this fixture, and no other
    for name, labels in got:
        if name.startswith("traces_service_graph_request"):
            assert {"client", "server"} <= set(dict(labels))
    les = sorted({dict(labels)["le"] for name, labels in got if name == "traces_service_graph_request_server_seconds_bucket"},
                 key=float)
    assert les == [format_bound(b) for b in SERVICE_GRAPH_BUCKETS] + ["+Inf"]
