"""Relabeling, action by action, against Prometheus's documented semantics (defaults: separator
``;``, regex ``(.*)`` anchored at both ends, replacement ``$1``, action ``replace``)."""

from __future__ import annotations

import pytest

from kms.collect.relabel import RelabelError, parse_rules, relabel

BASE = {"__name__": "http_requests_total", "job": "api", "instance": "10.0.0.1:9090", "path": "/a", "code": "200"}


def check(rules: list[dict], want: dict | None, labels: dict | None = None) -> None:
    got = relabel(dict(BASE if labels is None else labels), parse_rules(rules, "test"))
    assert got == want, (rules, got)


@pytest.mark.parametrize("rule, change", [
    # replace: defaults copy the joined source values (regex (.*), replacement $1)
    ({"source_labels": ["job"], "target_label": "team"}, {"team": "api"}),
    # the separator joins several sources; ${1} and $name expansion
    ({"source_labels": ["job", "code"], "separator": "-", "target_label": "jc"}, {"jc": "api-200"}),
    ({"source_labels": ["instance"], "regex": "(?P<host>[^:]+):(\\d+)", "replacement": "${host}/$2",
      "target_label": "hp"}, {"hp": "10.0.0.1/9090"}),
    # the regex is anchored: a partial match is no match, nothing changes
    ({"source_labels": ["job"], "regex": "ap", "target_label": "x", "replacement": "y"}, {}),
    # Go's Expand: "$1x" names group "1x" (empty); "${1}x" is group 1 then "x"
    ({"source_labels": ["job"], "regex": "(.*)", "target_label": "a", "replacement": "$1x"}, {}),
    ({"source_labels": ["job"], "regex": "(.*)", "target_label": "a", "replacement": "${1}x"}, {"a": "apix"}),
    ({"source_labels": ["job"], "target_label": "a", "replacement": "$$1"}, {"a": "$1"}),
    # an empty result deletes the target label; a missing source is the empty string
    ({"source_labels": ["nope"], "target_label": "job"}, {"job": None}),
    # the target label itself may use groups
    ({"source_labels": ["path"], "regex": "/(.*)", "target_label": "p_$1", "replacement": "yes"}, {"p_a": "yes"}),
    # ... but an invalid resulting name leaves the set unchanged
    ({"source_labels": ["instance"], "regex": "(.*)", "target_label": "$1", "replacement": "v"}, {}),
    ({"source_labels": ["job"], "target_label": "job", "replacement": "static"}, {"job": "static"}),
    # lowercase / uppercase
    ({"source_labels": ["job", "path"], "action": "uppercase", "target_label": "u"}, {"u": "API;/A"}),
    ({"source_labels": ["u"], "action": "lowercase", "target_label": "l"}, {"l": "mixed"}),
    # hashmod: md5's last 8 bytes, big endian, modulo (Prometheus's own test values)
    ({"source_labels": ["c"], "action": "hashmod", "target_label": "d", "modulus": 1000}, {"d": "976"}),
    ({"source_labels": ["nl"], "action": "hashmod", "target_label": "d", "modulus": 1000}, {"d": "734"}),
    # labelmap copies (does not move) matching names, with the replacement as the new name
    ({"action": "labelmap", "regex": "__meta_(.+)"}, {"zone": "eu"}),
    ({"action": "labelmap", "regex": "(c.*)", "replacement": "copy_${1}"}, {"copy_c": "baz", "copy_code": "200"}),
    # labeldrop / labelkeep match names (anchored)
    ({"action": "labeldrop", "regex": "co.*"}, {"code": None}),
    ({"action": "labeldrop", "regex": "o"}, {}),
])
def test_changes(rule, change):
    labels = {**BASE, "c": "baz", "nl": "foo\nbar", "u": "MiXeD", "__meta_zone": "eu"}
    want = dict(labels)
    for k, v in change.items():
        if v is None:
            want.pop(k, None)
        else:
            want[k] = v
    check([rule], want, labels)


def test_labelkeep_keeps_only_matching_names():
    check([{"action": "labelkeep", "regex": "__name__|job"}], {"__name__": "http_requests_total", "job": "api"})


@pytest.mark.parametrize("rule, kept", [
    ({"source_labels": ["code"], "regex": "2..", "action": "keep"}, True),
    ({"source_labels": ["code"], "regex": "5..", "action": "keep"}, False),
    ({"source_labels": ["code"], "regex": "2", "action": "keep"}, False),  # anchored
    ({"source_labels": ["code"], "regex": "2..", "action": "drop"}, False),
    ({"source_labels": ["code"], "regex": "5..", "action": "drop"}, True),
    ({"source_labels": ["missing"], "regex": "", "action": "drop"}, False),  # a missing label is ""
    ({"source_labels": ["job", "path"], "regex": "api;/a", "action": "keep"}, True),
    ({"source_labels": ["job"], "target_label": "team", "action": "keepequal"}, False),
    ({"source_labels": ["job"], "target_label": "job2", "action": "keepequal"}, True),
    ({"source_labels": ["job"], "target_label": "job2", "action": "dropequal"}, False),
    ({"source_labels": ["job"], "target_label": "team", "action": "dropequal"}, True),
])
def test_keep_and_drop(rule, kept):
    labels = {**BASE, "job2": "api", "team": "core"}
    check([rule], labels if kept else None, labels)


def test_rules_apply_in_order():
    check([
        {"source_labels": ["__address__"], "regex": "([^:]+):.*", "target_label": "host"},
        {"source_labels": ["host"], "regex": "db-.*", "action": "keep"},
        {"action": "labeldrop", "regex": "__address__"},
    ], {"host": "db-1"}, {"__address__": "db-1:5432"})
    check([
        {"source_labels": ["__address__"], "regex": "([^:]+):.*", "target_label": "host"},
        {"source_labels": ["host"], "regex": "db-.*", "action": "keep"},
    ], None, {"__address__": "web-1:80"})


@pytest.mark.parametrize("rule, words", [
    ({"action": "frobnicate"}, "unknown relabel action"),
    ({"action": "replace", "source_labels": ["a"]}, "requires 'target_label'"),
    ({"action": "hashmod", "source_labels": ["a"], "target_label": "b"}, "non-zero modulus"),
    ({"action": "keepequal", "source_labels": ["a"], "target_label": "b", "regex": "x"}, "no other fields"),
    ({"action": "labeldrop", "regex": "a", "source_labels": ["b"]}, "only 'regex'"),
    ({"action": "lowercase", "source_labels": ["a"], "target_label": "1bad"}, "invalid target_label"),
    ({"regex": "(unclosed", "source_labels": ["a"], "target_label": "b"}, "regex"),
    ({"source_labels": ["a"], "target_label": "b", "colour": "red"}, "unknown key 'colour'"),
])
def test_invalid_rules_name_the_key(rule, words):
    with pytest.raises(RelabelError, match=words) as e:
        parse_rules([rule], "job x relabel_configs")
    assert "job x relabel_configs[0]" in str(e.value)
