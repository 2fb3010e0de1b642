"""The probe kms verify sends and the table it prints, without a server."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from kms.verify import Probe, Result, render_table
from kms.verify.probe import BACKEND, FRONTEND, RUN_ATTRIBUTE


def test_probe_trace_has_a_client_server_edge_across_two_services():
    p = Probe()
    req = p.traces()
    by_service = {rs.resource.attributes[0].value.string_value: list(rs.scope_spans[0].spans)
                  for rs in req.resource_spans}
    assert set(by_service) == {FRONTEND, BACKEND}
    root, client = by_service[FRONTEND]
    (server,) = by_service[BACKEND]
    assert {s.trace_id for s in (root, client, server)} == {p.trace_id}
    assert root.parent_span_id == b"" and root.kind == Span.SPAN_KIND_SERVER
    assert client.parent_span_id == root.span_id and client.kind == Span.SPAN_KIND_CLIENT
    # the service-graph edge: the backend's server span is the child of the frontend's client span
    assert server.parent_span_id == client.span_id and server.kind == Span.SPAN_KIND_SERVER
    assert all(any(a.key == RUN_ATTRIBUTE and a.value.string_value == p.run_id for a in s.attributes)
               for s in (root, client, server))


def test_probe_logs_and_exemplar_carry_the_span_context():
    p = Probe()
    records = [rl.scope_logs[0].log_records[0] for rl in p.logs().resource_logs]
    assert len(records) == 2 and all(r.trace_id == p.trace_id for r in records)
    assert {r.span_id for r in records} == {p.span_ids["root"], p.span_ids["server"]}
    assert all(p.run_id in r.body.string_value for r in records)
    point = p.metrics().resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    (ex,) = point.exemplars
    assert ex.trace_id == p.trace_id and ex.span_id == p.span_ids["root"]
    assert sum(point.bucket_counts) == point.count == 1
    assert len(point.bucket_counts) == len(point.explicit_bounds) + 1


def test_each_run_has_its_own_ids():
    a, b = Probe(), Probe()
    assert a.trace_id != b.trace_id and a.run_id != b.run_id


def test_table_names_broken_links_and_their_fix():
    table = render_table([
        Result("trace by id", True, 0.01, "trace abc: 3 spans"),
        Result("span metrics", False, None, "did not rise above 0", "turn on the span-metrics processor"),
    ])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["LINK", "RESULT", "LATENCY"]
    assert any(line.startswith("trace by id") and " pass " in line and "0.01s" in line for line in lines)
    failed = next(line for line in lines if line.startswith("span metrics"))
    assert " FAIL " in failed
    assert "Fix: turn on the span-metrics processor" in table
    assert lines[-1] == "1/2 links hold; broken: span metrics"
