"""Rule files: what loads, and refusals that name file, group, rule and the problem."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.rules import RuleFileError, load_files, parse_groups

GOOD = """
groups:
  - name: api
    interval: 30s
    limit: 10
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
        labels: {team: core}
      - alert: HighErrors
        expr: job:http_requests:rate5m > 1
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.job }}: {{ $value | humanizePercentage }}"}
      - alert: ErrorLines
        expr: sum by (app) (rate({app="web"} |= "error" [1m])) > 0
  - name: logs
    source: logql
    rules:
      - record: app:lines:rate1m
        expr: sum by (app) (count_over_time({app="web"}[1m]))
"""


def test_a_good_file_loads_with_languages_and_durations(tmp_path):
    f = tmp_path / "rules.yml"
    f.write_text(GOOD)
    api, logs = load_files([str(tmp_path / "*.yml")], 60.0)
    assert (api.name, api.file, api.interval_s, api.limit) == ("api", str(f), 30.0, 10)
    rec, alert, lines = api.rules
    assert (rec.kind, rec.lang, rec.labels) == ("recording", "promql", {"team": "core"})
    assert (alert.kind, alert.for_s, alert.keep_firing_for_s) == ("alerting", 300.0, 60.0)
    assert lines.lang == "logql"  # not PromQL, but a LogQL metric query
    assert logs.interval_s == 60.0 and logs.rules[0].lang == "logql"  # the group says so: both would parse


@pytest.mark.parametrize("rules, message", [
    ("- record: x\n    expr: 'sum(up'", 'group "g", rule 1 ("x"): expr: parse error'),
    ("- alert: A\n    expr: up\n  - alert: B\n    expr: 'up +'", 'rule 2 ("B"): expr: parse error'),
    ("- record: 'bad name'\n    expr: up", "invalid recording rule name: bad name"),
    ("- record: x\n    alert: y\n    expr: up", "only one of 'record' and 'alert' may be set"),
    ("- expr: up", "rule 1: one of 'record' or 'alert' must be set"),
    ("- alert: A", 'rule 1 ("A"): field \'expr\' must be set'),
    ("- record: x\n    expr: up\n    for: 5m", "invalid field 'for' in recording rule"),
    ("- alert: A\n    expr: up\n    for: soon", "for: invalid duration 'soon'"),
    ("- alert: A\n    expr: up\n    labels: {'1x': y}", "invalid label name: 1x"),
    ("- alert: A\n    expr: up\n    annotations: {s: '{{ $labels.job '}", "annotation 's': template"),
    ("- alert: A\n    expr: up\n    annotations: {s: '{{ nosuch 1 }}'}", 'function "nosuch" not defined'),
    ("- alert: A\n    expr: up\n    severity: page", "field severity not found in a rule"),
    ("- alert: A\n    expr: '{app=\"x\"} |= \"e\"'", "LogQL rules must be metric queries"),
])
def test_refusals_name_file_group_rule_and_problem(rules, message):
    text = f"groups:\n- name: g\n  rules:\n  {rules}\n"
    with pytest.raises(RuleFileError) as e:
        parse_groups(text, "r.yml", 60.0)
    assert message in e.value.message and e.value.message.startswith("r.yml: group ")


@pytest.mark.parametrize("text, message", [
    ("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n", 'group "g": repeated in the same file'),
    ("groups:\n- rules: []\n", "group 1: group name must not be empty"),
    ("groups:\n- name: g\n  interval: 0s\n  rules: []\n", "interval must be positive"),
    ("groups:\n- name: g\n  source: sql\n", "source must be promql or logql"),
    ("rules: []\n", "expected a mapping with 'groups'"),
    ("groups: [\n", "invalid YAML"),
])
def test_file_and_group_refusals(text, message):
    with pytest.raises(RuleFileError, match=message):
        parse_groups(text, "r.yml", 60.0)


def test_every_problem_of_every_file_is_reported(tmp_path):
    (tmp_path / "a.yml").write_text("groups:\n- name: a\n  rules:\n  - record: x\n    expr: 'up +'\n")
    (tmp_path / "b.yaml").write_text("groups:\n- name: b\n  rules:\n  - alert: Y\n")
    with pytest.raises(RuleFileError) as e:
        load_files([str(tmp_path), str(tmp_path / "missing.yml")], 60.0)
    assert len(e.value.errors) == 3
    assert "a.yml" in e.value.errors[0] and "b.yaml" in e.value.errors[1] and "cannot read" in e.value.errors[2]


def test_group_labels_and_query_offset():
    (g,) = parse_groups("name: g\nquery_offset: 30s\nlabels: {team: core, env: prod}\nrules:\n"
                        "- record: x\n  expr: up\n  labels: {env: dev}\n", "r.yml", 60.0, single=True)
    assert g.query_offset_s == 30.0 and g.rules[0].labels == {"team": "core", "env": "dev"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_rule_file_parser_never_crashes(text):
    try:
        parse_groups(text, "f.yml", 60.0)
    except RuleFileError as e:
        assert e.message


_GROUPISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
              st.sampled_from(["up", "sum(", "{{ $value }}", "5m", "record", "alert", "expr", "rules"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["name", "rules", "record", "alert", "expr", "for",
                                                                "labels", "annotations", "interval", "limit",
                                                                "source", "keep_firing_for", "x"]),
                                               children, max_size=5)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.just("groups"), _GROUPISH, max_size=1))
def test_structured_nonsense_is_refused_cleanly(doc):
    import yaml

    try:
        parse_groups(yaml.safe_dump(doc), "f.yml", 60.0)
    except RuleFileError as e:
        assert e.message.startswith("f.yml")
