"""Kubernetes label selectors (``matchLabels`` + ``matchExpressions`` with In, NotIn, Exists,
DoesNotExist): checked, matched against labels, and written as the API's selector string."""

from __future__ import annotations

from kms.errors import BadInput

__all__ = ["OPERATORS", "check_selector", "selector_matches", "selector_string"]

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_selector(sel: dict | None, at: str) -> None:
    """BadInput for what the API server would refuse: unknown operators, In/NotIn without
    values, Exists/DoesNotExist with values."""
    sel = sel or {}
    if not isinstance(sel, dict):
        raise BadInput(f"{at}: expected a label selector mapping")
    if not isinstance(sel.get("matchLabels") or {}, dict):
        raise BadInput(f"{at}.matchLabels: expected a mapping")
    for i, e in enumerate(sel.get("matchExpressions") or []):
        op, values = e.get("operator"), e.get("values") or []
        if not e.get("key"):
            raise BadInput(f"{at}.matchExpressions[{i}].key: missing")
        if op not in OPERATORS:
            raise BadInput(f"{at}.matchExpressions[{i}].operator: {op!r} is not a valid label selector operator "
                           f"(one of {', '.join(OPERATORS)})")
        if op in ("In", "NotIn") and not values:
            raise BadInput(f"{at}.matchExpressions[{i}].values: must be non-empty for operator {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise BadInput(f"{at}.matchExpressions[{i}].values: must be empty for operator {op}")


def selector_matches(sel: dict | None, labels: dict[str, str] | None) -> bool:
    """Whether ``labels`` satisfy every term; an empty selector matches everything."""
    sel, labels = sel or {}, labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, values = e["key"], e["operator"], [str(v) for v in e.get("values") or []]
        present = k in labels
        ok = {"In": present and labels.get(k) in values, "NotIn": not present or labels.get(k) not in values,
              "Exists": present, "DoesNotExist": not present}[op]
        if not ok:
            return False
    return True


def selector_string(sel: dict | None) -> str:
    """``app=web,tier in (a,b),!legacy`` — the ``labelSelector`` query parameter's syntax."""
    sel = sel or {}
    terms = [(k, f"{k}={v}") for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        k, op, values = e["key"], e["operator"], sorted(str(v) for v in e.get("values") or [])
        terms.append((k, {"In": f"{k} in ({','.join(values)})", "NotIn": f"{k} notin ({','.join(values)})",
                          "Exists": k, "DoesNotExist": f"!{k}"}[op]))
    # sorted by key, as the API machinery prints a selector
    return ",".join(t for _, t in sorted(terms, key=lambda kt: kt[0]))
