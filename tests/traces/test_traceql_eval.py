"""TraceQL evaluation: the YAML catalogue of fixtures and queries, plus result shape checks.

Fixtures become real OTLP export requests that go through ingest (``decode_spans``); the
table is evaluated both as one chunk per trace (separate dictionaries, as concatenated
blocks are) and as a single chunk.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from kms.testing import anyvalue
from kms.traces import traceql
from kms.traces.ingest import decode_spans
from kms.traces.traceql.statics import parse_go_duration

CATALOGUE = yaml.safe_load((Path(__file__).parent / "data" / "traceql_eval.yaml").read_text(encoding="utf-8"))
FIXTURES: dict[str, list[dict]] = CATALOGUE["fixtures"]
BASE_NS = 1_700_000_000_000_000_000
KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS = {"unset": 0, "ok": 1, "error": 2}


def trace_id(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:16]


def span_id(trace: str, span: str) -> bytes:
    return hashlib.sha256(f"{trace}/{span}".encode()).digest()[:8]


def ns(text: str) -> int:
    v = parse_go_duration(str(text))
    assert v is not None, text
    return v


def _set(kvs, attrs: dict) -> None:
    for k, v in attrs.items():
        kvs.add(key=k, value=anyvalue(v))


def request_for(trace: str, index: int) -> bytes:
    """One ExportTraceServiceRequest with the spans of one fixture."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    groups: dict[tuple, object] = {}
    t0 = BASE_NS + index * 10 * 10**9
    for sp in FIXTURES[trace]:
        resource = {"service.name": sp["service"], **sp.get("resource", {})}
        scope = sp.get("scope", {"name": "kms.test", "version": "0.1"})
        key = (repr(sorted(resource.items())), repr(scope))
        if key not in groups:
            rs = req.resource_spans.add()
            _set(rs.resource.attributes, resource)
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = scope["name"], scope["version"]
            _set(ss.scope.attributes, scope.get("attrs", {}))
            groups[key] = ss
        s = groups[key].spans.add()
        s.trace_id, s.span_id, s.name = trace_id(trace), span_id(trace, sp["name"]), sp["name"]
        if "parent" in sp:
            s.parent_span_id = span_id(trace, sp["parent"])
        elif "parent_id" in sp:
            s.parent_span_id = bytes.fromhex(sp["parent_id"])
        s.kind = KINDS[sp["kind"]]
        s.start_time_unix_nano = t0 + ns(sp["start"])
        s.end_time_unix_nano = s.start_time_unix_nano + ns(sp["dur"])
        status = sp.get("status", ["unset"])
        s.status.code = STATUS[status[0]]
        if len(status) > 1:
            s.status.message = status[1]
        _set(s.attributes, sp.get("attrs", {}))
        for ev in sp.get("events", []):
            e = s.events.add(name=ev["name"], time_unix_nano=s.start_time_unix_nano + ns(ev["at"]))
            _set(e.attributes, ev.get("attrs", {}))
        for ln in sp.get("links", []):
            link = s.links.add(trace_id=trace_id(ln["trace"]), span_id=span_id(ln["trace"], ln["span"]))
            _set(link.attributes, ln.get("attrs", {}))
    return req.SerializeToString()


def build_table(layout: str) -> pa.Table:
    tables = [decode_spans(request_for(name, i)).table for i, name in enumerate(FIXTURES)]
    table = pa.concat_tables(tables)
    if layout == "single-chunk":
        table = table.unify_dictionaries().combine_chunks()
    return table


@pytest.fixture(scope="module", params=["chunk-per-trace", "single-chunk"])
def spans(request) -> pa.Table:
    return build_table(request.param)


def substitute(q: str) -> str:
    def sub(m: re.Match) -> str:
        kind, ref = m.group(1), m.group(2)
        if kind == "trace":
            return trace_id(ref).hex()
        t, s = ref.split("/", 1)
        return span_id(t, s).hex()

    return re.sub(r"\$\{(trace|span):([^}]+)\}", sub, q)


TRACE_NAMES = {trace_id(name): name for name in FIXTURES}


def run(q: str, table: pa.Table, **kw) -> list[traceql.TraceMatch]:
    kw.setdefault("spss", 1000)
    kw.setdefault("limit", 1000)
    return traceql.evaluate(traceql.parse(substitute(q)), table, **kw)


@pytest.mark.parametrize("case", CATALOGUE["cases"], ids=[c["q"] for c in CATALOGUE["cases"]])
def test_catalogue(case: dict, spans: pa.Table) -> None:
    matches = run(case["q"], spans)
    names = spans.column("name").to_pylist()
    got = {TRACE_NAMES[m.trace_id] for m in matches}
    assert got == set(case["traces"])
    if "spans" in case:
        got_spans = sorted(names[r] for m in matches for ss in m.spansets for r in ss.rows)
        assert got_spans == sorted(case["spans"])
    for trace, count in case.get("spansets", {}).items():
        m = next(m for m in matches if TRACE_NAMES[m.trace_id] == trace)
        assert len(m.spansets) == count
    for trace, attrs in case.get("attributes", {}).items():
        m = next(m for m in matches if TRACE_NAMES[m.trace_id] == trace)
        assert [[list(kv) for kv in ss.attributes] for ss in m.spansets] == attrs


def by_name(matches: list[traceql.TraceMatch]) -> dict[str, traceql.TraceMatch]:
    return {TRACE_NAMES[m.trace_id]: m for m in matches}


def test_trace_metadata(spans: pa.Table) -> None:
    got = by_name(run("{ }", spans))
    shop, orphan = got["shop"], got["orphan"]
    assert (shop.root_service_name, shop.root_name) == ("frontend", "GET /checkout")
    assert shop.start_ns == BASE_NS and shop.duration_ns == 500 * 10**6
    assert shop.service_stats == {"frontend": (1, 0), "cart": (2, 0), "payment": (2, 2)}
    assert (orphan.root_service_name, orphan.root_name) == (None, None)
    assert got["batch-job"].duration_ns == 10 * 10**9


def test_order_limit_spss(spans: pa.Table) -> None:
    matches = run("{ }", spans, limit=2, spss=2)
    assert [TRACE_NAMES[m.trace_id] for m in matches] == ["login-fail", "orphan"]  # most recent first
    login = matches[0].spansets[0]
    assert login.matched == 3 and len(login.rows) == 2


def test_selected_attributes(spans: pa.Table) -> None:
    m = by_name(run("{ status = error } | select(span.http.status_code, resource.env)", spans))["shop"]
    names = spans.column("name").to_pylist()
    sel = {names[r]: dict(s) for ss in m.spansets for r, s in zip(ss.rows, ss.selected, strict=True)}
    assert sel["POST /pay"] == {"status": "error", "http.status_code": 500, "env": "prod"}
    assert sel["POST stripe"] == {"status": "error", "env": "prod"}


def test_durations_and_enums_shown_as_text(spans: pa.Table) -> None:
    m = by_name(run("{ } | by(kind) | max(duration) > 1s", spans))["search"]
    assert [dict(ss.attributes) for ss in m.spansets] == [{"by(kind)": "server", "max(duration)": "2s"}]


def test_multiple_spansets_in_structural_operator(spans: pa.Table) -> None:
    with pytest.raises(traceql.TraceQLError, match="coalesce"):
        run("({ } | by(resource.service.name)) > ({ })", spans)


def test_metrics_query_is_refused_by_search(spans: pa.Table) -> None:
    q = traceql.parse("{ } | rate() by (resource.service.name)")
    assert q.is_metrics
    with pytest.raises(traceql.TraceQLUnsupported):
        traceql.evaluate(q, spans)


def test_empty_table() -> None:
    from kms.traces.schema import SPAN_SCHEMA

    assert traceql.evaluate(traceql.parse("{ }"), SPAN_SCHEMA.empty_table()) == []


@pytest.mark.parametrize(
    ("text", "scope", "name", "intrinsic"),
    [
        ("resource.service.name", traceql.Scope.RESOURCE, "service.name", traceql.Intrinsic.NONE),
        (".http.method", traceql.Scope.NONE, "http.method", traceql.Intrinsic.NONE),
        ('span."a b"', traceql.Scope.SPAN, "a b", traceql.Intrinsic.NONE),
        ("status", traceql.Scope.NONE, "status", traceql.Intrinsic.STATUS),
        ("span:name", traceql.Scope.NONE, "name", traceql.Intrinsic.NAME),
    ],
)
def test_parse_identifier(text, scope, name, intrinsic) -> None:
    a = traceql.parse_identifier(text)
    assert (a.scope, a.name, a.intrinsic) == (scope, name, intrinsic)


# ------------------------------------------------------------------------------ metrics

STEP = 20 * 10**9


def metrics(q: str, table: pa.Table, **kw) -> dict[tuple, list[float]]:
    kw.setdefault("start_ns", BASE_NS - 10**9)
    kw.setdefault("end_ns", BASE_NS + 60 * 10**9)
    kw.setdefault("step_ns", STEP)
    res = traceql.evaluate_metrics(traceql.parse(q), table, **kw)
    return {tuple(s.labels): [None if v != v else round(float(v), 6) for v in s.values] for s in res.series}


N = None
METRICS_CASES = [
    # spans start in the interval (start + i*step, start + (i+1)*step]: shop's root sits on a boundary
    ("{ } | count_over_time()", {(("__name__", "count_over_time"),): [1, 7, 5, 2]}),
    ("{ } | rate()", {(("__name__", "rate"),): [0.05, 0.35, 0.25, 0.1]}),
    ("{ status = error } | count_over_time() by (resource.service.name)",
     {(("resource.service.name", "payment"),): [N, 2, N, N], (("resource.service.name", "worker"),): [N, N, 1, N],
      (("resource.service.name", "frontend"),): [N, N, 1, N]}),
    ("{ resource.service.name = \"worker\" } | max_over_time(duration)", {(("__name__", "max_over_time"),): [N, 10, 4, N]}),
    ("{ resource.service.name = \"worker\" } | min_over_time(duration)", {(("__name__", "min_over_time"),): [N, 10, 1, N]}),
    ("{ } | sum_over_time(span.step)", {(("__name__", "sum_over_time"),): [N, N, 6, N]}),
    ("{ } | avg_over_time(span.step) by (.region)", {((".region", "eu"),): [N, N, 2, N]}),
    ("{ kind = internal } | count_over_time() by (span.step)",
     {(("span.step", "nil"),): [N, 1, N, 1], (("span.step", 1),): [N, N, 1, N], (("span.step", 2),): [N, N, 1, N],
      (("span.step", 3),): [N, N, 1, N]}),
    ("{ resource.service.name = \"worker\" } | quantile_over_time(duration, 0.5, 1)",
     {(("p", 0.5),): [N, 17.179869, 1.073742, N], (("p", 1.0),): [N, 17.179869, 4.294967, N]}),
    ("{ resource.service.name = \"worker\" } | histogram_over_time(duration)",
     {(("__bucket", 17.179869184),): [N, 1, N, N], (("__bucket", 1.073741824),): [N, N, 2, N],
      (("__bucket", 4.294967296),): [N, N, 1, N]}),
    ("{ } | count_over_time() by (resource.service.name) | topk(1)",  # per interval; a tie keeps the first series
     {(("resource.service.name", "frontend"),): [1, N, N, N], (("resource.service.name", "cart"),): [N, 2, N, N],
      (("resource.service.name", "worker"),): [N, N, 3, N], (("resource.service.name", "auth"),): [N, N, N, 2]}),
    ("{ } | count_over_time() by (resource.service.name) | bottomk(1) > 1",
     {(("resource.service.name", "auth"),): [N, N, N, 2]}),
    ("{ } | count_over_time() > 4", {(("__name__", "count_over_time"),): [N, 7, 5, N]}),
    ("({ } | count_over_time()) * 10 - 1", {(("__name__", "count_over_time"),): [9, 69, 49, 19]}),
    ("({ } | count_over_time()) / ({ status = error } | count_over_time())",
     {(("__name__", "count_over_time"),): [N, 3.5, 2.5, N]}),
]


@pytest.mark.parametrize(("query", "want"), METRICS_CASES, ids=[c[0] for c in METRICS_CASES])
def test_metrics(query: str, want: dict, spans: pa.Table) -> None:
    assert metrics(query, spans) == want


def test_metrics_instant_and_timestamps(spans: pa.Table) -> None:
    res = traceql.evaluate_metrics(traceql.parse("{ } | count_over_time()"), spans, start_ns=BASE_NS,
                                   end_ns=BASE_NS + 60 * 10**9, step_ns=0, instant=True)
    assert res.timestamps_ms.tolist() == [(BASE_NS + 60 * 10**9) // 10**6]
    assert [s.values.tolist() for s in res.series] == [[15.0]]
    res = traceql.evaluate_metrics(traceql.parse("{ } | rate()"), spans, start_ns=BASE_NS - 1, end_ns=BASE_NS + 1,
                                   step_ns=STEP)
    assert res.timestamps_ms.tolist() == [BASE_NS // 10**6, (BASE_NS + STEP) // 10**6]


def test_metrics_refusals(spans: pa.Table) -> None:
    with pytest.raises(traceql.TraceQLUnsupported):
        metrics("{ } | compare({ status = error })", spans)
    with pytest.raises(traceql.TraceQLError):
        metrics("{ }", spans)
    with pytest.raises(traceql.TraceQLError, match="series"):
        metrics("{ } | count_over_time() by (span:id)", spans, max_series=3)


def test_matching_rows(spans: pa.Table) -> None:
    rows = traceql.matching_rows(traceql.parse("{ kind = client } | by(name)"), spans)
    assert sorted(spans.column("name").take(rows).to_pylist()) == ["POST stripe", "SELECT cart"]


# ------------------------------------------------------------------------------ no crash on any valid query

_ATOMS = ["span.retries", "span.ratio", "span.tags", "span.flag", ".http.status_code", "resource.env", "duration",
          "name", "status", "kind", "event:name", "event:timeSinceStart", "link:traceID", "span:childCount",
          "traceDuration", "rootServiceName", "instrumentation:name", "nestedSetLeft", "span:id", "event.db.rows",
          "1", "2.5", "-3", '"prod"', '"POST.*"', "true", "10ms", "ok", "server"]
_FILTERS = st.recursive(
    st.sampled_from(_ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["=", "!=", ">", "<=", "=~", "!~", "+", "-", "*", "/", "%", "^", "&&", "||"]),
                  inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"!{e}"), inner.map(lambda e: f"-{e}"), inner.map(lambda e: f"{e} != nil"),
    ),
    max_leaves=5,
)
_PIPES = st.sampled_from(["", " | count() > 1", " | by(kind)", " | avg(duration) > 1ms", " | select(span.tags)",
                          " | by(resource.env) | coalesce()", " | max(span.retries) = 2"])
_SPANSET_OPS = st.sampled_from(["", " && { }", " >> { }", " !< { status = error }", " &~ { kind = server }",
                                " || { name = \"job\" }", " ~ { }"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(_FILTERS, _SPANSET_OPS, _PIPES)
def test_valid_queries_never_crash(expr: str, ss_op: str, pipe: str) -> None:
    text = "{ " + expr + " }" + ss_op + pipe
    try:
        query = traceql.parse(text)
    except traceql.TraceQLError:
        return
    try:
        traceql.evaluate(query, _TABLE, spss=5, limit=5)
    except traceql.TraceQLError:
        pass


_TABLE = build_table("chunk-per-trace")
