"""Custom resources in linted manifests: ServiceMonitor, PodMonitor, PrometheusRule and
Instrumentation against the CRD schemas (kms.deploy.crds), and every PrometheusRule's groups
through kms's own rule loader, so a PromQL or template mistake fails here rather than in the
Prometheus Operator's admission webhook or, worse, silently in the ruler."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from kms.deploy.crds import custom_kinds, schema_errors
from kms.deploy.lint.findings import Doc, Finding

if TYPE_CHECKING:
    from jsonschema import ValidationError

__all__ = ["check_custom"]

# One loader message: `<file>: group "<name>"` (or `group <n>` without a name), `, rule <n> ("<name>")`.
_RULE_ERROR = re.compile(r'group (?:"(?P<group>.*?)"|(?P<gnum>\d+))(?:, rule (?P<rule>\d+)(?: \(".*?"\))?)?: (?P<what>.*)$')
_FIELD = re.compile(r"^(?:(?P<map>annotation|label) '(?P<key>[^']*)'|(?P<dur>for|keep_firing_for|interval|query_offset):"
                    r"|field (?P<extra>\S+) not found|invalid label name: (?P<label>\S+))")  # fmt: skip


def _path(parts: list) -> str:
    """jsonschema's path as the dotted form of kms.deploy.yamlpos ("spec.endpoints[0].port")."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _missing(e: ValidationError) -> str:
    """The property a "required" error names."""
    m = re.match(r"'([^']*)' is a required property", e.message)
    return m.group(1) if m else ""


def _schema_finding(doc: Doc, e: ValidationError) -> None:
    where = _path(list(e.absolute_path))
    kind = doc.data.get("kind")
    if e.validator == "additionalProperties":
        allowed = sorted(e.schema.get("properties") or {})
        for key in sorted(set(e.instance) - set(allowed)):
            near = difflib.get_close_matches(str(key), allowed, n=1)
            doc.error("crd-unknown-field", f"{where}.{key}" if where else str(key),
                      f"unknown field {key!r} in the {kind} schema: the API server rejects the resource "
                      "(or prunes the field, so it has no effect)",
                      f"did you mean {near[0]!r}?" if near else f"remove it; known fields: {', '.join(allowed)}")
        return
    if e.validator == "required":
        doc.error("crd-required", where, f"{e.message} of {kind}: the API server rejects the resource",
                  f"add {where + '.' if where else ''}{_missing(e) or 'the field'}")
        return
    if e.validator == "enum":
        options = [str(o) for o in e.validator_value]
        near = difflib.get_close_matches(str(e.instance), options, n=1)
        fix = f"use {near[0]!r}" if near else f"use one of {', '.join(options)}"
    elif e.validator == "type" and e.validator_value == "string":
        fix = f'quote it: "{e.instance}"'
    elif e.validator == "pattern" and "ms)?)$" in str(e.validator_value):
        doc.error("crd-schema", where, f"{e.instance!r} is not a Prometheus duration ({kind} schema)",
                  "write a duration such as 30s, 5m or 1h30m")
        return
    elif e.validator == "type":
        fix = f"write a value of type {e.validator_value}"
    else:
        fix = f"correct it to match the {kind} CRD ({e.validator}: {e.validator_value})"
    doc.error("crd-schema", where, f"{e.message} ({kind} schema)", fix)


def _rule_path(obj: dict, group: str | None, gnum: str | None, rule: str | None, what: str) -> str:
    groups = (obj.get("spec") or {}).get("groups") or []
    gi = int(gnum) - 1 if gnum else next((i for i, g in enumerate(groups) if isinstance(g, dict)
                                          and g.get("name") == group), None)  # fmt: skip
    if gi is None:
        return "spec.groups"
    path = f"spec.groups[{gi}]" + (f".rules[{int(rule) - 1}]" if rule else "")
    if what.startswith("expr:") or "'expr'" in what:
        return f"{path}.expr"
    m = _FIELD.match(what)
    if not m:
        return path
    if m.group("map"):
        return f"{path}.{m.group('map')}s.{m.group('key')}"
    if m.group("label"):
        return f"{path}.labels.{m.group('label')}"
    return f"{path}.{m.group('dur') or m.group('extra')}"


def _spot(doc: Doc, path: str) -> int | str:
    """Where a finding is, for "one finding per spot": its line, or its path when the document has
    no positions (objects linted in memory by ``kms render``)."""
    return doc.line(path) or doc.full_path(path)


def _spots(findings: list[Finding]) -> set[int | str]:
    return {f.line or f.message.split(": ", 1)[0] for f in findings}


def _check_rules(doc: Doc, reported: set[int | str]) -> None:
    from kms.rules.kubernetes import groups_of
    from kms.rules.load import RuleFileError

    try:
        _, groups = groups_of(doc.data, "anonymous", 60.0)
    except RuleFileError as e:
        for msg in e.errors:
            m = _RULE_ERROR.search(msg)
            what = m.group("what") if m else msg.split(": ", 1)[-1]
            path = _rule_path(doc.data, m.group("group"), m.group("gnum"), m.group("rule"), what) if m else "spec.groups"
            if _spot(doc, path) in reported:
                continue  # the schema check already named this line
            what = re.sub(r"^(expr|annotation '[^']*'|label '[^']*'): ", "", what)  # the path names the field
            if path.endswith(".expr") and "must be set" not in what:
                doc.error("prometheusrule-expr", path, f"{what}; Prometheus refuses the whole rule file",
                          "correct the PromQL (kms's ruler parses it the same way: try it in Grafana's Explore)")
            elif what.startswith("template:"):
                doc.error("prometheusrule-template", path, f"{what}; the alert cannot render its text",
                          "close every {{ ... }} action; label values are {{ $labels.name }}, the value {{ $value }}")
            elif what.startswith("invalid recording rule name"):
                doc.error("prometheusrule-invalid", path, f"{what}; the rule file does not load",
                          "name it level:metric:operations, with letters, digits, _ and : only")
            else:
                doc.error("prometheusrule-invalid", path, f"{what}; the rule file does not load",
                          "follow Prometheus's rule-file format (groups of record/alert rules with expr)")
        return
    for gi, g in enumerate(groups):
        for ri, r in enumerate(g.rules):
            if r.lang == "logql":
                doc.warn("prometheusrule-logql", f"spec.groups[{gi}].rules[{ri}].expr", f"{r.name}: the expression is "
                         "LogQL, which Prometheus and Mimir refuse; only kms's and Loki's rulers run it",
                         "write PromQL, or give LogQL rules to the Loki ruler")


def check_custom(doc: Doc) -> None:
    """Schema and rule findings of one manifest document of a kind in kms.deploy.crds."""
    obj = doc.data
    if f"{obj.get('apiVersion')}/{obj.get('kind')}" not in custom_kinds():
        return
    # A line a more specific check already explained (e.g. a numeric sampler argument) is not repeated.
    reported = _spots(doc.findings)
    before = len(doc.findings)
    errors = schema_errors(obj)
    # A misspelt required key (`exp` for `expr`) is one mistake: "did you mean" says it all.
    misspelt = {(_path(list(e.absolute_path)), near) for e in errors if e.validator == "additionalProperties"
                for key in e.instance for near in difflib.get_close_matches(str(key), e.schema.get("properties") or {}, n=1)}
    for e in errors:
        spot = _spot(doc, _path(list(e.absolute_path)))
        if e.validator != "additionalProperties" and spot in reported:
            continue
        if e.validator == "required" and (_path(list(e.absolute_path)), _missing(e)) in misspelt:
            reported.add(spot)  # nor is the rule loader's "field 'expr' must be set" on that rule
            continue
        _schema_finding(doc, e)
    reported |= _spots(doc.findings[before:])
    if obj.get("kind") == "PrometheusRule":
        _check_rules(doc, reported)
