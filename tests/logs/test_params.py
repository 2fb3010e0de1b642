"""Loki's parameter forms: timestamps, durations, directions, limits, stream selectors."""

from __future__ import annotations

import pytest

from kms.errors import BadInput
from kms.logs.http.params import Form, parse_direction, parse_limit, parse_selector, parse_time_ns, time_range

S = 1_700_000_000


@pytest.mark.parametrize("text, want", [
    (str(S), S * 10**9), (f"{S}123456789", S * 10**9 + 123456789), (f"{S}.5", S * 10**9 + 500_000_000),
    ("2023-11-14T22:13:20Z", S * 10**9), ("2023-11-14T22:13:20.25Z", S * 10**9 + 250_000_000),
    ("2023-11-15T00:13:20+02:00", S * 10**9), ("4000000000", 4 * 10**18),
])
def test_timestamps(text, want):
    assert parse_time_ns(Form(f"t={text.replace('+', '%2B')}"), "t", 0) == want


def test_bad_timestamp():
    with pytest.raises(BadInput, match='cannot parse "soon"'):
        parse_time_ns(Form("t=soon"), "t", 0)


def test_range_defaults_and_since():
    assert time_range(Form(""), 10**12, 100) == (10**12 - 100, 10**12)
    assert time_range(Form("since=1s&end=50000000000"), 0, 100) == (49 * 10**9, 50 * 10**9)


@pytest.mark.parametrize("q, want", [("direction=forward", "forward"), ("direction=BACKWARD", "backward"),
                                     ("direction=sideways", "backward"), ("", "backward")])
def test_direction(q, want):
    assert parse_direction(Form(q)) == want


def test_limits():
    assert parse_limit(Form(""), 100) == 100 and parse_limit(Form("limit=7"), 100) == 7
    for bad in ("limit=0", "limit=x"):
        with pytest.raises(BadInput):
            parse_limit(Form(bad), 100)


def test_selectors():
    ms = parse_selector('{app="a", env!="x",  pod=~`p-.*`, ns!~"kube.*"} |= "err" | json')
    assert [(m.name, m.op, m.value) for m in ms] == [
        ("app", "=", "a"), ("env", "!=", "x"), ("pod", "=~", "p-.*"), ("ns", "!~", "kube.*")]
    assert parse_selector("") == []
    for bad in ("app", "{app=}", "{}", '{app="a"'):
        with pytest.raises(BadInput, match="parse error"):
            parse_selector(bad)
