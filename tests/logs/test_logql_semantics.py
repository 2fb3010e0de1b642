"""LogQL semantics where Loki differs from a first guess: label clashes, empty values, value
conversions and their errors, division by zero, counter rates. Each scenario is small and
written out here; expected values follow Loki's documented behaviour."""

from __future__ import annotations

import math

import pytest

from kms.logs.logql import LogQLEngine, LogQLError
from kms.logs.logql.errors import PipelineError
from kms.logs.memory import MemoryLogSource
from kms.metrics.promql.values import Matrix, Scalar

S = 10**9
T0 = 1_767_225_600 * S  # 2026-01-01


def engine(*streams) -> LogQLEngine:
    src = MemoryLogSource(batch_rows=3)
    for labels, entries in streams:
        src.add_stream(labels, [(T0 + t * S, line, *([md] if md else [])) for t, line, md in entries])
    return LogQLEngine(src)


def at(eng: LogQLEngine, q: str, t: int = 60) -> dict:
    res, _ = eng.instant(q, T0 + t * S)
    return {tuple(sorted(s.labels.items())): s.value for s in res.value.samples}


def test_label_clashes_keep_the_name_for_the_stream_and_extracted_for_the_parsed():
    eng = engine(({"app": "a", "s": "stream", "t": "stream"},
                  [(20, "s=parsed m=parsed t=parsed", {"m": "meta", "t": "meta", "s": "meta"})]))
    [(labels, n)] = at(eng, 'count_over_time({app="a"} | logfmt [1m])').items()
    assert dict(labels) == {"app": "a", "s": "stream", "s_extracted": "parsed", "t": "stream",
                            "t_extracted": "parsed", "m": "meta", "m_extracted": "parsed"}
    assert n == 1
    # metadata against a stream label alone: the metadata value is the _extracted one, and filters see both
    eng = engine(({"app": "a", "env": "prod"}, [(20, "x", {"env": "canary"})]))
    q = 'sum(count_over_time({app="a"} | env="prod" and env_extracted="canary" [1m]))'
    assert at(eng, q) == {(): 1.0}
    assert list(at(eng, 'count_over_time({app="a"}[1m])')) == [(("app", "a"), ("env", "prod"),
                                                                 ("env_extracted", "canary"))]


def test_an_empty_value_is_a_label_but_an_absent_one_is_not():
    eng = engine(({"app": "m"}, [(20, "x", {"name": ""}), (30, "x", {"name": "alpha"}), (40, "x", None)]),
                 ({"app": "p"}, [(20, "name= other=1", None)]))
    assert at(eng, 'count_over_time({app="m"} | name="" [1m])') == {
        (("app", "m"), ("name", "")): 1.0, (("app", "m"),): 1.0}
    assert at(eng, 'count_over_time({app="p"} | logfmt [1m])') == {(("app", "p"), ("other", "1")): 1.0}
    assert at(eng, 'count_over_time({app="p"} | logfmt --keep-empty [1m])') == {
        (("app", "p"), ("name", ""), ("other", "1")): 1.0}
    eng = engine(({"app": "j"}, [(20, '{"age": null, "user": {"name": "u"}, "dup": 1, "dup": 2}', None)]))
    assert at(eng, 'count_over_time({app="j"} | json [1m])') == {  # null: no label; a repeated key: the first
        (("app", "j"), ("dup", "1"), ("user_name", "u")): 1.0}
    assert at(eng, 'count_over_time({app="j"} | json age="user.age" [1m])') == {(("age", ""), ("app", "j")): 1.0}


def test_unwrap_skips_lines_without_the_label_and_converts_like_go():
    eng = engine(({"app": "a"}, [(10, "v=2 b=2,048 d=1.5s", None), (20, "junk", None), (30, "v=4 b=1KiB d=1d", None)]))
    assert at(eng, 'sum by (app) (sum_over_time({app="a"} | logfmt | unwrap v [1m]))') == {(("app", "a"),): 6.0}
    assert at(eng, 'max_over_time({app="a"} | logfmt | unwrap bytes(b) [1m]) by (app)') == {(("app", "a"),): 2048.0}
    with pytest.raises(PipelineError, match=r'__error_details__="time: unknown unit \\"d\\" in duration \\"1d\\""'):
        at(eng, 'max_over_time({app="a"} | logfmt | unwrap duration(d) [1m])')
    assert at(eng, 'max_over_time({app="a"} | logfmt | unwrap duration(d) | __error__="" [1m]) by (app)') == {
        (("app", "a"),): 1.5}


def test_number_filters_drop_lines_without_the_label_and_keep_the_first_error():
    eng = engine(({"app": "a"}, [(10, "took=2s size=500KB", None), (20, "took=oops size=3MB", None),
                                 (30, "other=1", None), (40, "took=nope size=1", None)]))
    # a line without took never passes, not even "!="
    assert at(eng, 'count_over_time({app="a"} | logfmt | took != 5s | __error__="" [1m])') == {
        (("app", "a"), ("size", "500KB"), ("took", "2s")): 1.0}
    with pytest.raises(PipelineError):
        at(eng, 'count_over_time({app="a"} | logfmt | took > 1s [1m])')
    # after an error the right side still filters: "oops" (3MB) is dropped, "nope" (1 byte) kept with its error
    with pytest.raises(PipelineError, match="invalid duration"):
        at(eng, 'count_over_time({app="a"} | logfmt | took > 1s and size < 1MB [1m])')
    assert at(eng, 'count_over_time({app="a"} | logfmt | took > 1s and size < 1MB | __error__="" [1m])') == {
        (("app", "a"), ("size", "500KB"), ("took", "2s")): 1.0}
    # __error__ is not a number: a numeric filter on it drops every line
    assert at(eng, 'count_over_time({app="a"} | logfmt | took > 1s | __error__ > 0 [1m])') == {}


def test_ip_label_filter_finds_an_address_inside_the_value():
    eng = engine(({"app": "p"}, [(10, 'addr="client 10.0.0.7:80"', None), (20, 'addr="client 192.168.1.5:80"', None),
                                 (30, "other=1", None)]))
    assert at(eng, 'count_over_time({app="p"} | logfmt | addr = ip("10.0.0.0/8") [1m])') == {
        (("addr", "client 10.0.0.7:80"), ("app", "p")): 1.0}
    assert at(eng, 'count_over_time({app="p"} | logfmt | addr != ip("10.0.0.0/8") [1m])') == {
        (("addr", "client 192.168.1.5:80"), ("app", "p")): 1.0}


def test_division_by_zero_is_nan_and_or_fills_one_series():
    eng = engine(({"app": "foo"}, [(t, "x", None) for t in range(10, 70, 10)]))
    res, _ = eng.instant("10 / 0", T0)
    assert isinstance(res.value, Scalar) and math.isnan(res.value.value)
    assert all(math.isnan(v) for v in at(eng, 'count_over_time({app="foo"}[1m]) / 0').values())
    assert all(math.isnan(v) for v in at(eng, 'count_over_time({app="foo"}[1m]) % vector(0)').values())
    res, _ = eng.query_range('sum(count_over_time({app="foo"}[30s])) or vector(0)', T0 + 60 * S, T0 + 180 * S, 30 * S)
    assert isinstance(res.value, Matrix) and len(res.value.series) == 1
    assert res.value.series[0].v.tolist() == [3.0, 0.0, 0.0, 0.0, 0.0]  # the sum, then vector(0)
    assert eng.instant("0x1.8p3", T0)[0].value.value == 12.0  # a hex float (Go's ParseFloat); 0x10 is refused


def test_rate_counter_single_sample_and_caps():
    eng = engine(({"app": "a"}, [(180, "c=40", None), (210, "c=100", None)]))
    assert at(eng, 'rate_counter({app="a"} | logfmt | unwrap c [10s])', 185) == {(("app", "a"),): 0.0}
    # the far first sample is capped at half an interval (15 s) before the zero point (20 s) applies
    assert at(eng, 'rate_counter({app="a"} | logfmt | unwrap c [90s])', 210) == {(("app", "a"),): pytest.approx(1.0)}


def test_sum_over_time_of_infinities():
    eng = engine(({"app": "a"}, [(10, "v=+Inf", None), (40, "v=-Inf", None)]))
    assert at(eng, 'sum_over_time({app="a"} | logfmt | unwrap v [20s])', 50) == {(("app", "a"),): -math.inf}
    assert math.isnan(at(eng, 'sum_over_time({app="a"} | logfmt | unwrap v [1m])', 50)[(("app", "a"),)])


@pytest.mark.parametrize("query, message", [
    ('count_over_time({app="a"} |~ ip("10.0.0.1") [1m])', "ip: invalid operation"),
    ('count_over_time({app="a"} |= ip("nope") [1m])', "ip: invalid pattern"),
    ('count_over_time({app="a"} |> "<verb> /api" [1m])', "named captures are not allowed"),
    ('count_over_time({app="a"} |~ "(" [1m])', "error parsing regexp"),
    ('count_over_time({app="a"} | label_format x="{{" [1m])', "unclosed action"),
    ('count_over_time({app="a"} | regexp "(?P<x>.)(?P<x>.)" [1m])', "duplicate extracted label name"),
    ('count_over_time({app="a"} | json bad="user[" [1m])', "cannot parse expression"),
])
def test_bad_stages_fail_with_lokis_words(query, message):
    eng = engine(({"app": "a"}, [(20, "GET /api 10.0.0.1", None)]))
    with pytest.raises(LogQLError, match=message):
        at(eng, query)


def test_approx_topk_is_instant_only():
    eng = engine(({"app": "a"}, [(20, "x", None)]))
    assert at(eng, 'approx_topk(1, sum by (app) (count_over_time({app="a"}[1m])))') == {(("app", "a"),): 1.0}
    with pytest.raises(LogQLError, match="only supported on instant queries"):
        eng.query_range('approx_topk(1, sum by (app) (count_over_time({app="a"}[1m])))', T0, T0 + 60 * S, 30 * S)
