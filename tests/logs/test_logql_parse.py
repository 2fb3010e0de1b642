"""LogQL parsing: the language facts the conformance lists rely on, case by case."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms.errors import BadInput
from kms.logs.logql import LogQLParseError, format_query, is_metric_query, parse
from kms.logs.logql.ast import (
    AndFilter,
    BinOp,
    DropKeep,
    IPFilter,
    LabelFilterStage,
    LabelFormat,
    LineFilter,
    Literal,
    LogSelector,
    NumberFilter,
    OrFilter,
    Parser,
    RangeAggregation,
    VectorAggregation,
)

ACCEPT = [
    '{app="a"}',
    '{app=`a`, env!~"dev|test"}',
    '{app="a"} |= "x" != "y" |~ "(?i)z" !~ "w" |> "<_> GET <_>" !> "x <_>"',
    '{app="a"} |= "a" or "b" or ip("10.0.0.0/8")',
    '{app="a"} | json | logfmt --keep-empty --strict | unpack | regexp "(?P<x>\\\\w+)" | pattern "<a> <_>"',
    '{app="a"} | json first="a.b[0]", second="c[\\"d\\"]", third',
    '{app="a"} | logfmt --strict msg, lvl="level"',
    '{app="a"} | status >= 400 and status < 500 or level="error", dur > 1.5s | size <= 10KiB',
    '{app="a"} | x > -1 | y == +2 | z != 3e2',
    '{app="a"} | addr = ip("192.168.0.0/16") | other != ip("::1")',
    '{app="a"} | line_format "{{.a | ToUpper}}" | label_format b=a, c="{{.d}}"',
    '{app="a"} | drop a, b="x", __error__ | keep c, d=~"y.*" | decolorize',
    "{app=\"a\"}  # a comment\n | json",
    'sum_over_time({app="a"} | unwrap bytes [1m])',
    'sum_over_time({app="a"} | logfmt | unwrap bytes(size) | __error__="" [1m])',
    'avg_over_time({app="a"} | unwrap duration_seconds(d) [1m]) by (x)',
    'rate_counter({app="a"} | unwrap c [1m])',
    'count_over_time({app="a"}[5m] offset -1h)',
    'count_over_time({app="a"}[5m] offset 1m | json)',
    'sum_over_time(({app="a"})[5m] offset 1m | unwrap x)',
    'SUM BY (a) (COUNT_OVER_TIME({app="a"} | JSON [1m]))',
    'topk by (a) (3, rate({app="a"}[1m]))',
    'approx_topk(2, rate({app="a"}[1m]))',
    'sum(rate({app="a"}[1m])) by (a) > bool on (a) group_left (b) sum(rate({app="b"}[1m])) by (a, b)',
    'vector(0) unless on () vector(1)',
    '2 ^ 3 ^ 2',
    'label_replace(rate({app="a"}[1m]), "dst", "$1", "src", "(.*)")',
    'variants(count_over_time({app="a"}[1m])) of ({app="a"}[1m])',
    '{of="a"} | variants="b"',
]

REFUSE = [
    ("{}", "unexpected"),
    ('{app=""}', "at least one"),
    ('{app=~".*", env!="x"}', "at least one"),
    ('{app="a"} |= ', "unexpected $end"),
    ('{app="a"} |= "x" offset 1m', "unexpected"),
    ('{app="a"} | json | x >= ip("1.2.3.4")', "unexpected"),
    ('{app="a"} | x > 0x10', "unable to parse literal as a float"),
    ('count_over_time({app="a"}[5minutes])', "not a valid duration"),
    ('count_over_time({app="a"}[5m)', "missing closing"),
    ('count_over_time({app="a"}[5m] |= "x" offset 1m)', "unexpected offset"),
    ('count_over_time({app="a"} | unwrap x [5m])', "with unwrap"),
    ('avg_over_time({app="a"}[5m])', "without unwrap"),
    ('quantile_over_time({app="a"} | unwrap x [5m])', "parameter required"),
    ('avg_over_time(0.5, {app="a"} | unwrap x [5m])', "not supported"),
    ('sum_over_time({app="a"} | unwrap x [5m]) by (a)', "grouping not allowed"),
    ('rate({app="a"}[5m]) by (a)', "grouping not allowed"),
    ('topk(1.5, rate({app="a"}[5m]))', "invalid parameter topk(1.5,"),
    ('topk(1.0, rate({app="a"}[5m]))', "invalid parameter topk(1.0,"),
    ('topk(rate({app="a"}[5m]))', "parameter required"),
    ('sum(2, rate({app="a"}[5m]))', "unsupported parameter"),
    ('sort(rate({app="a"}[5m])) by (a)', "grouping not allowed"),
    ('sum by (a) (rate({app="a"}[5m])) by (b)', "unexpected grouping"),
    ('rate({app="a"}[5m]) + {app="a"}', "unexpected"),
    ('rate({app="a"}[5m]) and 1', "literal"),
    ('1 + bool 1', "bool modifier"),
    ('rate({app="a"}[5m]) * group_left rate({app="b"}[5m])', "unexpected"),
    ('vector(-1)', "unexpected"),
    ('label_replace(rate({app="a"}[5m]), "d", "$1", "s", "(")', "invalid regex"),
    ('{app="a"} | line_format', "unexpected"),
    ('{app="a"} |= "\\q"', "invalid syntax"),
    ("# nothing but a comment", "unexpected $end"),
]


@pytest.mark.parametrize("q", ACCEPT)
def test_accepts_and_round_trips(q: str) -> None:
    expr = parse(q)
    assert parse(str(expr)) == expr, str(expr)


@pytest.mark.parametrize(("q", "msg"), REFUSE)
def test_refuses_with_a_loki_like_message(q: str, msg: str) -> None:
    with pytest.raises(LogQLParseError) as info:
        parse(q)
    assert msg in str(info.value)
    assert str(info.value).startswith("parse error")
    assert isinstance(info.value, BadInput)


def test_syntax_errors_carry_line_and_column() -> None:
    with pytest.raises(LogQLParseError) as info:
        parse('{app="a"}\n  | line_format 5')
    assert (info.value.line, info.value.col) == (2, 17)
    assert "syntax error: unexpected NUMBER" in str(info.value)


def test_tree_shapes() -> None:
    sel = parse('{app="a"} |= "x" or "y" | json | a > 1 or b = "c", d < 2s | drop e')
    assert isinstance(sel, LogSelector) and not is_metric_query(sel)
    lf, js, filt, drop = sel.stages
    assert isinstance(lf, LineFilter) and [v.value for v in lf.values] == ["x", "y"]
    assert isinstance(js, Parser) and js.kind == "json"
    assert isinstance(filt, LabelFilterStage) and isinstance(filt.filter, OrFilter)
    right = filt.filter.right
    assert isinstance(right, AndFilter) and isinstance(right.right, NumberFilter)
    assert right.right.kind == "duration" and right.right.value == 2.0
    assert isinstance(drop, DropKeep) and drop.items == ("e",)
    ip = parse('{app="a"} | x != ip("1.2.3.4")').stages[0]
    assert isinstance(ip.filter, IPFilter) and ip.filter.op == "!="
    fmt = parse('{app="a"} | label_format a=b, c="{{.d}}"').stages[0]
    assert isinstance(fmt, LabelFormat) and [i.rename for i in fmt.items] == [True, False]


def test_metric_tree_shapes() -> None:
    e = parse('sum by (a) (quantile_over_time(0.9, {app="a"} | unwrap bytes(x) | __error__="" [1m] offset 5m)) / 2')
    assert is_metric_query(e) and isinstance(e, BinOp) and e.op == "/" and e.rhs == Literal(2.0)
    agg = e.lhs
    assert isinstance(agg, VectorAggregation) and agg.grouping is not None and agg.grouping.labels == ("a",)
    r = agg.expr
    assert isinstance(r, RangeAggregation) and r.param == 0.9
    assert r.range.range_ns == 60 * 10**9 and r.range.offset_ns == 300 * 10**9
    assert r.range.unwrap is not None and r.range.unwrap.conv == "bytes" and len(r.range.unwrap.post_filters) == 1
    # precedence: * binds tighter than +, comparisons looser, "or" loosest; literals fold
    assert parse("1 + 2 * 3") == Literal(7.0)
    assert parse("2 ^ 3 ^ 2") == Literal(512.0)
    assert parse("1 > bool 2") == Literal(0.0)
    b = parse('rate({a="b"}[1m]) or rate({a="c"}[1m]) > 1')
    assert isinstance(b, BinOp) and b.op == "or" and isinstance(b.rhs, BinOp) and b.rhs.op == ">"


def test_format_query_normalises() -> None:
    assert format_query('sum   by(a)(rate( {app="a"}|="x"[1m]))') == 'sum by (a)(rate({app="a"} |= "x" [1m]))'


_PIECES = st.sampled_from([
    '{app="a"}', "{", "}", "(", ")", "[5m]", "[", "]", "|", "|=", "!=", "|~", '"x"', "`y`", "json", "logfmt",
    "--strict", "unwrap", "x", "=", ">", "1", "-", "5m", "10KB", "or", "and", ",", "sum", "by", "rate",
    "count_over_time", "offset", "bool", "on", "group_left", "ip(", "#", "\n", " ", "vector", "label_format",
    "line_format", '"{{.x}}"', "0x1", ".5", "quantile_over_time", "topk", "0", "/", "*", "-1",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=14) | st.text(max_size=40))
def test_fuzz_never_crashes(parts: list[str] | str) -> None:
    q = parts if isinstance(parts, str) else " ".join(parts)
    try:
        expr = parse(q)
    except LogQLParseError:
        return
    assert str(parse(str(expr))) == str(expr)  # str: a folded 0/0 is a NaN, unequal to itself
