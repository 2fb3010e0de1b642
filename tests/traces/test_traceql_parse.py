"""TraceQL parser properties: no crash on any input, print/parse round trips, Tempo's trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms.traces import traceql
from kms.traces.traceql.ast import Attribute, BinaryOp, Scope, UnaryOp
from kms.traces.traceql.errors import TraceQLError
from kms.traces.traceql.parser import parse_query
from kms.traces.traceql.statics import Op, Static, T, format_go_duration, parse_go_duration

CONFORMANCE = Path("/work/shared/conformance/traceql")

TOKENS = [
    "{", "}", "(", ")", ",", ".", "|", "&&", "||", "!", "=", "!=", "=~", "!~", ">", ">=", "<", "<=", ">>", "<<",
    "~", "!>", "!<", "&>", "&<", "&>>", "&~", "+", "-", "*", "/", "%", "^", "nil", "true", "false", "ok", "error",
    "server", "client", "duration", "name", "status", "kind", "rootName", "traceDuration", "span:", "trace:",
    "event:", "link:", "instrumentation:", "span.", "resource.", "parent.", "event.", "link.", "id", "childCount",
    "count()", "avg(", "max(", "min(", "sum(", "by(", "select(", "coalesce()", "rate()", "count_over_time()",
    "quantile_over_time(", "topk(", "bottomk(", "compare(", "with(", "sample=", ".foo", ".a.b", '."x y"', '"str"',
    "`raw`", "1", "2.5", "-3", "10ms", "1h30m", "0x1F", "1e3", "maxInt", "ident", "\n", " ",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        traceql.parse(text)
    except TraceQLError:
        pass


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
def test_token_soup_never_crashes_and_round_trips(text: str) -> None:
    try:
        q = parse_query(text)
    except TraceQLError:
        return
    assert parse_query(str(q)) == q


def _files() -> list[str]:
    out = []
    for name in ("parse-ok.txt", "parse-only-ok.txt", "unsupported.txt", "validate-fail.txt"):
        path = CONFORMANCE / name
        if path.exists():
            out += [q for q in path.read_text(encoding="utf-8").split("\n") if q]
    return out


@pytest.mark.parametrize("query", _files())
def test_stringer_round_trip(query: str) -> None:
    """Like Tempo's TestStringer: printing a parsed query parses back to the same tree."""
    q = parse_query(query)
    assert parse_query(str(q)) == q


# -- generated valid field expressions round trip and evaluate the same after printing
_ATTRS = st.sampled_from([".a", "span.b", "resource.c", '."x y"', "duration", "name", "status", "kind",
                          "span:childCount", "trace:rootName", "event.e", "instrumentation:name"])
_LITERALS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.sampled_from(['"s"', "`t`", "true", "false", "ok", "error", "server", "5ms", "1.5s", "nil"]),
)


def _exprs() -> st.SearchStrategy[str]:
    leaf = st.one_of(_ATTRS, _LITERALS)
    ops = st.sampled_from(["=", "!=", ">", "<=", "=~", "+", "-", "*", "/", "%", "^", "&&", "||"])
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, ops, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"!{e}"),
            inner.map(lambda e: f"-{e}"),
        ),
        max_leaves=6,
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_exprs())
def test_generated_filters_round_trip(expr: str) -> None:
    try:
        q = parse_query("{ " + expr + " }")
    except TraceQLError:
        return
    assert parse_query(str(q)) == q


@pytest.mark.parametrize(
    ("query", "printed"),
    [
        ("{ .a * .b + .c }", "{ (.a * .b) + .c }"),
        ("{ .a + .b ^ .c }", "{ .a + (.b ^ .c) }"),
        ("{ .c - -.a + .b }", "{ (.c - (-.a)) + .b }"),
        ("{ .a = !.b && .c }", "{ (.a = (!.b)) && .c }"),
        ("{ .a || .b && .c }", "{ (.a || .b) && .c }"),  # && and || share one precedence level
        ("{ -.a * .b }", "{ -(.a * .b) }"),
        ("{ true } && { false } >> { `a` }", "({ true }) && (({ false }) >> ({ `a` }))"),
        ("({ .a } | { .b }) > ({ .a } | { .b }) && ({ .a } | { .b })",
         "(({ .a }|{ .b }) > ({ .a }|{ .b })) && ({ .a }|{ .b })"),
        ("{ 1 = 2 }", "{ false }"),
        ("{ duration > 1s * 2s }", "{ duration > 2e+18 }"),
        ('{ trace:id = "000abc" }', "{ trace:id = `abc` }"),
        ("count() > 1 + 2 * 3", "(count()) > 7"),
        ("{} | rate() | topk(5) > 20", "{ true } | rate() | topk(5) > 20"),
        ("({} | rate() > 6) * 100 > 5", "({ true } | rate() > 6) * 100 > 5"),
        ("{ } | quantile_over_time(duration, .5) by (name) with(sample=0.1)",
         "{ true } | quantile_over_time(duration,0.50000)by(name) with(sample=0.1)"),
    ],
)
def test_tree_shapes(query: str, printed: str) -> None:
    assert str(parse_query(query)) == printed


def test_attribute_forms() -> None:
    f = parse_query('{ parent.span.x = 1 && ."a\\"b" != nil }').pipeline.elements[0].expr
    assert f == BinaryOp(Op.AND, BinaryOp(Op.EQ, Attribute("x", Scope.SPAN, True), Static(T.INT, 1)),
                         UnaryOp(Op.EXISTS, Attribute('a"b')))


@pytest.mark.parametrize(("text", "ns"), [("1s", 10**9), ("1h30m", 5400 * 10**9), ("1.5h", 5400 * 10**9),
                                          ("2d", 2 * 86400 * 10**9), (".5s", 5 * 10**8), ("1µs", 1000),
                                          ("10s2", None), ("ms", None)])
def test_durations(text: str, ns: int | None) -> None:
    assert parse_go_duration(text) == ns
    if ns is not None:
        assert parse_go_duration(format_go_duration(ns)) == ns


def test_hints_and_metrics_flags() -> None:
    q = traceql.parse("{ } with(most_recent=true, sample=0.5)")
    assert not q.is_metrics and q.hint("most_recent") is True and q.hint("sample") == 0.5
    assert traceql.parse("({} | rate()) / ({} | count_over_time())").is_metrics
