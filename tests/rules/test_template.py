"""Go-template expansion of rule labels and annotations, and Prometheus's humanize* outputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.rules.humanize import go_float
from kms.rules.template import Template, TemplateError, expand, template_data

DATA = template_data({"job": "api", "instance": "10.0.0.1:9090"}, 0.25, {"cluster": "prod"}, "http://kms:3200")


@pytest.mark.parametrize("text, want", [
    ("plain", "plain"),
    ("{{ $labels.job }} on {{ $labels.instance }}", "api on 10.0.0.1:9090"),
    ("{{ .Labels.job }} {{ .Value }} {{ $value }}", "api 0.25 0.25"),
    ("{{ $labels.nosuch }}", "<no value>"),
    ("{{ $externalLabels.cluster }} {{ $externalURL }}", "prod http://kms:3200"),
    ("{{ $value | humanizePercentage }}", "25%"),
    ("{{ humanize 1234567 }} {{ humanize 0.00123 }} {{ humanize 0 }}", "1.235M 1.23m 0"),
    ("{{ humanize1024 1048576 }} {{ humanize1024 512 }}", "1Mi 512"),
    ("{{ humanizeDuration 93784 }}|{{ humanizeDuration 61 }}|{{ humanizeDuration 0.0025 }}|{{ humanizeDuration 0 }}",
     "1d 2h 3m 4s|1m 1s|2.5ms|0s"),
    ("{{ humanizeTimestamp 1700000000 }}", "2023-11-14 22:13:20 +0000 UTC"),
    ('{{ printf "%.1f%%" 12.345 }} {{ printf "%s=%v" "a" 3 }} {{ printf "%d" 7 }}', "12.3% a=3 7"),
    ("{{ $labels.instance | stripPort | toUpper }}", "10.0.0.1"),
    ('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}', "10.0.0.1"),
    ("{{ if gt $value 0.1 }}high{{ else }}low{{ end }}", "high"),
    ('{{ if eq $labels.job "web" }}w{{ else if eq $labels.job "api" }}a{{ end }}', "a"),
    ("a  {{- $labels.job -}}  b{{/* note */}}", "aapib"),
    ("{{ (printf \"%s-%s\" $labels.job \"x\") | toUpper }}", "API-X"),
    ("{{ nosuch }}", '<error expanding template: function "nosuch" not defined>'),
    ("{{ () }}", "<error expanding template: missing command in {{()}}>"),
    ("{{ humanize humanize }}", "<error expanding template: error calling humanize: humanize() missing 1 required "
                                "positional argument: 'v'>"),
    ('{{ humanize "abc" }}', "<error expanding template: error calling humanize: could not convert string to float: "
                             "'abc'>"),
])
def test_expand(text, want):
    assert expand(text, DATA) == want


@pytest.mark.parametrize("v, want", [
    (1.0, "1"), (0.1, "0.1"), (123456.0, "123456"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5, "-2.5"), (float("nan"), "NaN"), (float("-inf"), "-Inf"),
])
def test_go_float_formatting(v, want):
    assert go_float(v) == want


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(list("{}$.|() \"-abc") + [
    "{{", "}}", "$labels", "$value", "humanize", "printf", "if", "else", "end", "`x`", "12", "{{-", "-}}"]),
    max_size=30).map("".join))
def test_templates_never_crash(text):
    try:
        Template(text).render(DATA)
    except TemplateError:
        pass
    assert isinstance(expand(text, DATA), str)
