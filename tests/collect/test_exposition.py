"""Text format 0.0.4 and OpenMetrics 1.0 parsing, checked case by case, against prometheus-client's
parser on real node-exporter-like output, and fuzzed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from kms.collect.exposition import (
    NO_TS,
    ParseError,
    _rows_split,
    is_openmetrics,
    parse,
    parse_series,
    split_layout,
)

OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def rows(body: bytes, ctype: str = TEXT) -> list[tuple]:
    p = parse(body, ctype)
    return [(parse_series(s)[0], dict(parse_series(s)[1]), float(v), int(t) if t != NO_TS else None)
            for s, v, t in zip(p.series, p.values.tolist(), p.ts_ms.tolist(), strict=True)]


@pytest.mark.parametrize("line, name, labels, value, ts", [
    (b"up 1", "up", {}, 1.0, None),
    (b"up 1 1700000000000", "up", {}, 1.0, 1700000000000),
    (b'x{a="b"} 2.5', "x", {"a": "b"}, 2.5, None),
    (b'x{a="b",} 2.5', "x", {"a": "b"}, 2.5, None),
    (b'x{a="b", c="d"} -3e2', "x", {"a": "b", "c": "d"}, -300.0, None),
    (b'x{a="with space"} 1', "x", {"a": "with space"}, 1.0, None),
    (b'x{a="brace}inside"} 1', "x", {"a": "brace}inside"}, 1.0, None),
    (b'x{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 1', "x", {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"}, 1.0, None),
    (b"x +Inf", "x", {}, math.inf, None),
    (b"x -Inf", "x", {}, -math.inf, None),
    (b"x{} 7", "x", {}, 7.0, None),
    (b'{"my.metric", "service.name"="a"} 1', "my.metric", {"service.name": "a"}, 1.0, None),
    (b"x\t1\t5", "x", {}, 1.0, 5),
    (b'x{a="}"} 1 123', "x", {"a": "}"}, 1.0, 123),
])
def test_text_lines(line, name, labels, value, ts):
    assert rows(line + b"\n") == [(name, labels, value, ts)]


def test_nan_and_metadata():
    body = (b"# HELP m Some \\\\ help\\ntext.\n# TYPE m counter\nm_total NaN\n\n# a plain comment\n"
            b"# TYPE u untyped\nu 1\n")
    p = parse(body, TEXT)
    assert math.isnan(p.values[0]) and p.values[1] == 1
    assert p.metadata["m"] == {"type": "counter", "help": "Some \\ help\ntext.", "unit": ""}
    assert p.metadata["u"]["type"] == "unknown"


@pytest.mark.parametrize("body, words", [
    (b"up\n", "line 1"),
    (b"up 1\nbad line here x y\n", "line 2"),
    (b'x{a="unterminated} 1\n', "invalid labels"),
    (b"x 1 notatime\n", "timestamp"),
    (b"x one\n", "ParseFloat"),
    (b"# TYPE x nonsense\nx 1\n", "invalid metric type"),
    (b"x 1 # {a=\"b\"} 1\n", "unexpected '#'"),
])
def test_text_errors(body, words):
    with pytest.raises(ParseError, match=words):
        rows(body)  # a series text is checked in full when first met (parse_series), then cached


def test_openmetrics_timestamps_exemplars_and_eof():
    body = (b"# TYPE req counter\n# UNIT req seconds\n# HELP req Requests.\n"
            b'req_total{path="/"} 10 1700000000.5 # {trace_id="abc"} 0.25 1700000000.123\n'
            b'req_total{path="/x"} 3 # {trace_id="def",span_id="1"} 1\n'
            b"req_created 1700000000\n# EOF\n")
    p = parse(body, OM)
    assert p.ts_ms.tolist() == [1700000000500, NO_TS, NO_TS]
    assert p.metadata["req"] == {"type": "counter", "help": "Requests.", "unit": "seconds"}
    ex = {e.sample: e for e in p.exemplars}
    assert ex[0].labels == (("trace_id", "abc"),) and ex[0].value == 0.25 and ex[0].ts_ms == 1700000000123
    assert ex[1].labels == (("span_id", "1"), ("trace_id", "def")) and ex[1].ts_ms == NO_TS


@pytest.mark.parametrize("body, words", [
    (b"x 1\n", "# EOF"),
    (b"x 1\n\nx2 2\n# EOF\n", "blank"),
    (b'x 1 # {a="' + b"v" * 130 + b'"} 1\n# EOF\n', "128"),
])
def test_openmetrics_errors(body, words):
    with pytest.raises(ParseError, match=words):
        parse(body, OM)


def test_content_negotiation_by_media_type():
    assert is_openmetrics(OM) and is_openmetrics("application/openmetrics-text")
    assert not is_openmetrics(TEXT) and not is_openmetrics("") and not is_openmetrics("text/html")
    # the same exemplar line is an error in the text format and fine in OpenMetrics
    line = b'a_total 1 # {t="1"} 2\n'
    with pytest.raises(ParseError):
        parse(line, TEXT)
    assert len(parse(line + b"# EOF\n", OM).exemplars) == 1


NODE_LIKE = """# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 12345.67
node_cpu_seconds_total{cpu="0",mode="user"} 89.01
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 1.234567e+10
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds{quantile="1"} 0.000123
go_gc_duration_seconds_sum 0.0123
go_gc_duration_seconds_count 42
# HELP http_request_duration_seconds A histogram.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",path="/a b"} 1
http_request_duration_seconds_bucket{le="+Inf",path="/a b"} 3
http_request_duration_seconds_sum{path="/a b"} 0.5
http_request_duration_seconds_count{path="/a b"} 3
node_weird{v="quote\\" and \\\\ and }"} -0.5
"""


def test_agrees_with_prometheus_client():
    want = {}
    for fam in text_string_to_metric_families(NODE_LIKE):
        for s in fam.samples:
            want[(s.name, tuple(sorted(s.labels.items())))] = s.value
    got = {(n, tuple(sorted(lb.items()))): v for n, lb, v, _ in rows(NODE_LIKE.encode())}
    assert got == want and len(got) == 12


label_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
label_sets = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), label_value, max_size=4)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True), label_sets,
                          st.floats(allow_nan=False, width=64)), max_size=8), st.booleans())
def test_round_trip(samples, openmetrics):
    text = "".join(
        name + ("{" + ",".join(f'{k}="{_esc(v)}"' for k, v in lb.items()) + "}" if lb else "") + f" {val!r}\n"
        for name, lb, val in samples)
    body = (text + ("# EOF\n" if openmetrics else "")).encode()
    got = rows(body, OM if openmetrics else TEXT)
    assert [(n, lb, v) for n, lb, v, _ in got] == [(n, lb, float(v)) for n, lb, v in samples]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_fail_cleanly(body, openmetrics):
    try:
        p = parse(body, OM if openmetrics else TEXT)
    except ParseError:
        return
    assert len(p.series) == len(p.values) == len(p.ts_ms)
    assert p.values.dtype == np.float64


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[a-z_]{1,5}", fullmatch=True), label_sets,
                          st.floats(allow_nan=False, width=64), st.one_of(st.none(), st.integers(0, 2**40)),
                          st.sampled_from([" ", "\t", "  "])), max_size=8),
       st.booleans())
def test_fast_split_path_agrees_with_the_regex_path(samples, comments):
    lines = []
    for name, lb, val, ts, sep in samples:
        if comments:
            lines.append(f"# HELP {name} h #x\n# TYPE {name} gauge")
        text = name + ("{" + ",".join(f'{k}="{_esc(v)}"' for k, v in lb.items()) + "}" if lb else "")
        lines.append(f"{text}{sep}{val!r}" + (f"{sep}{ts}" if ts is not None else ""))
    body = ("\n".join(lines) + "\n").encode()
    fast = parse(body, TEXT)
    import kms.collect.exposition as ex

    real, ex._rows_split = ex._rows_split, lambda _body: None
    try:
        slow = parse(body, TEXT)
    finally:
        ex._rows_split = real
    assert fast.series == slow.series and fast.ts_ms.tolist() == slow.ts_ms.tolist()
    assert fast.values.tolist() == slow.values.tolist() and fast.metadata == slow.metadata
    assert [parse_series(s) for s in fast.series] == [(n, list(lb.items())) for n, lb, *_ in samples]


def _layout_agrees(body: bytes) -> bool:
    """split_layout either declines or gives exactly what the line-by-line split gives."""
    lay = split_layout(body)
    if lay is None:
        return False
    want = _rows_split(body)
    assert want is not None
    assert lay.series(body) == want[0] and lay.values.tobytes() == want[1].tobytes()
    return True


@pytest.mark.parametrize("body, taken", [
    (b'a{x="1"} 5\n# HELP a h\nb 6', True),
    (b'a{x="with space"} 5\n\nb{y="}"} -Inf\n', True),
    (b"a 1 1700000000000\n", False),  # a timestamp: the regex path
    (b"a 1\r\nb 2\r\n", True),  # CRLF: "1\r" is a number for float()
    (b"a -0\nb -12\nc 007\nd 1234567890123456\ne 999999999999999\nf +5\ng 1e3\nh -\n", False),
    (b"a -0\nb -12\nc 007\nd 1234567890123456\ne 999999999999999\nf +5\ng 1e3\nh -Inf\n", True),
    (b"a \n", False),
    (b" 1\n", False),
    (b"a\n", False),
    (b"a 0x1p3\n", False),  # not a number for float(): the regex path says so
    (b"# only a comment\n", False),
])
def test_split_layout_cases(body, taken):
    assert _layout_agrees(body) is taken


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b_c", "d:e"]), label_sets,
                          st.one_of(st.sampled_from(["1", "-2.5", "+Inf", "NaN", "1e3", "x", "", "1 2", "3\r", "1_0",
                                                     "-", "-0", "0x1p3"]),
                                    st.integers(-10**17, 10**17).map(str)),
                          st.sampled_from(["", "# HELP a x y\n", "\n", " \n", "#\n"])), max_size=6),
       st.booleans())
def test_split_layout_agrees_with_the_line_split(lines, final_newline):
    text = "".join(pre + name + ("{" + ",".join(f'{k}="{_esc(v)}"' for k, v in lb.items()) + "}" if lb else "")
                   + " " + val + "\n" for name, lb, val, pre in lines)
    body = (text if final_newline else text.rstrip("\n")).encode()
    _layout_agrees(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_split_layout_on_arbitrary_bytes(body):
    _layout_agrees(body)
