"""Custom resources in `kms lint`: CRD schema errors and PrometheusRule groups parsed by kms's
rule loader, each at the line of the offending key."""

from __future__ import annotations

import copy
from pathlib import Path

from kms.deploy.lint import Doc, lint_docs, lint_paths

CORPUS = Path(__file__).parent / "lint_corpus" / "bad"

RULES = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: shop, namespace: shop}
spec:
  groups:
  - name: a
    rules:
    - alert: Fine
      expr: up == 0
    - alert: BadExpr
      expr: rate(x[5m]
    - alert: BadFor
      expr: up == 0
      for: ten minutes
  - name: b
    rules:
    - alert: BadTemplate
      expr: up == 0
      labels: {team: "{{ $labels.team "}
    - alert: Typo
      exp: up == 0
"""


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_each_rule_error_points_at_its_line(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(RULES)
    findings, _ = lint_paths([f])
    got = {(f.line, f.code) for f in findings}
    assert got == {
        (_line(RULES, "rate(x[5m]"), "prometheusrule-expr"),
        (_line(RULES, "ten minutes"), "crd-schema"),  # the schema names it first; the loader's duplicate is dropped
        (_line(RULES, "$labels.team"), "prometheusrule-template"),
        (_line(RULES, "exp: up"), "crd-unknown-field"),
    }
    expr = next(x for x in findings if x.code == "prometheusrule-expr")
    assert "spec.groups[0].rules[1].expr" in expr.message and "parse error" in expr.message


def test_specific_check_wins_over_the_schema_on_the_same_line() -> None:
    findings, _ = lint_paths([CORPUS / "instrumentation-numeric-argument.yaml"])
    assert [f.code for f in findings] == ["instrumentation-sampler-argument"]


def test_a_broken_own_rule_is_a_render_error(parts: dict) -> None:
    rule = next(copy.deepcopy(o) for p in parts["single-cluster"] for o in p.objects if o["kind"] == "PrometheusRule")
    assert lint_docs([Doc("rule.yaml", rule)]) == []
    rule["spec"]["groups"][0]["rules"][0]["expr"] = "sum(rate(up[5m])"
    rule["spec"]["groups"][0]["rules"][1]["annotations"]["summary"] = "{{ $labels.pod "
    # In memory (no lines), each spot still gets its own finding.
    assert sorted(f.code for f in lint_docs([Doc("rule.yaml", rule)])) == ["prometheusrule-expr",
                                                                           "prometheusrule-template"]


def test_unknown_versions_and_kinds_are_left_alone() -> None:
    obj = {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "ScrapeConfig", "metadata": {"name": "x"},
           "spec": {"anything": True}}  # fmt: skip
    assert lint_docs([Doc("x.yaml", obj)]) == []
