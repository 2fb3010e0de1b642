"""The dotdc Kubernetes dashboards' queries (/work/shared/conformance/dashboards) and Grafana's
template-variable interpolation, for tests and benchmarks that run them.

``dashboard_vars(dash, scenario, label_values)`` resolves a dashboard's variables in dependency
order under one of two selections:

- ``all``:  include-All variables pick All (their ``allValue``, ``.*``), multi-value variables pick
  every option, single-value variables their saved value if it is an option, else the first;
- ``pick``: multi-value variables pick their first and last option (``(a|b)``), the others the last.

``label_values(selector, label)`` answers a ``label_values(<selector>, <label>)`` variable query
the way Grafana's lookup (``/api/v1/label/<label>/values?match[]=<selector>``) does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DIR",
    "QUERIES_FILE",
    "BUILTINS",
    "VAR",
    "load_queries",
    "interpolate",
    "split_label_values",
    "dashboard_vars",
]

DIR = Path("/work/shared/conformance/dashboards")
QUERIES_FILE = DIR / "dotdc-queries.txt"
# $__interval = 30s (the panels' $resolution), scrape interval 15s, so $__rate_interval =
# max(30s + 15s, 4 * 15s) = 1m; $__range = 1h.
BUILTINS = {"__interval": "30s", "__interval_ms": "30000", "__rate_interval": "1m", "__range": "1h",
            "__range_s": "3600", "__range_ms": "3600000"}  # fmt: skip
VAR = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\s*\)$")

LabelValues = Callable[[str, str], list[str]]


def load_queries() -> list[tuple[int, str, str]]:
    """``(line number, dashboard file, expression)`` of every query line (empty if absent)."""
    if not QUERIES_FILE.is_file():
        return []
    out = []
    for n, line in enumerate(QUERIES_FILE.read_text().splitlines(), 1):
        if line.strip():
            dash, expr = line.split("\t", 1)
            out.append((n, dash, expr))
    return out


def _regex_escape(v: str) -> str:
    """Grafana's ``prometheusSpecialRegexEscape`` (result goes inside a PromQL string literal)."""
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), v.replace("\\", "\\\\\\\\"))


def _format(var: dict, selected: list[str] | None) -> str:
    """Grafana's ``interpolateQueryExpr``; ``selected=None`` means All."""
    if selected is None:
        if var.get("allValue"):
            return var["allValue"]
        selected = var["options"]
    if not var.get("multi") and not var.get("includeAll"):
        return selected[0].replace("\\", "\\\\").replace("'", "\\\\'") if selected else ""
    esc = [_regex_escape(v) for v in selected]
    return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"


def interpolate(expr: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name in BUILTINS:
            return BUILTINS[name]
        if name not in values:
            raise KeyError(f"undefined Grafana variable ${name} in {expr!r}")
        return values[name]

    return VAR.sub(sub, expr)


def split_label_values(query: str) -> tuple[str, str]:
    """``(selector, label)`` of a ``label_values(<selector>, <label>)`` query."""
    m = _LABEL_VALUES.match(query.strip())
    if not m:
        raise ValueError(f"not a label_values() query: {query!r}")
    return m.group(1).strip(), m.group(2)


def dashboard_vars(dash: str, scenario: str, label_values: LabelValues) -> dict[str, str]:
    """Resolve the dashboard's variables (in dependency order) to their interpolated text."""
    spec = json.loads((DIR / "dotdc" / dash).read_text())
    pending = {
        v["name"]: v for v in spec["templating"]["list"] if v["type"] in ("query", "custom", "constant")
    }
    values: dict[str, str] = {}
    while pending:
        progress = False
        for name, var in list(pending.items()):
            q = var.get("query")
            q = (q.get("query") if isinstance(q, dict) else q) or var.get("definition", "")
            if any((m.group(1) or m.group(2) or m.group(4)) in pending for m in VAR.finditer(q)):
                continue  # depends on a variable not resolved yet
            if var["type"] == "query":
                var = {**var, "options": label_values(*split_label_values(interpolate(q, values)))}
                opts = var["options"]
                saved = (var.get("current") or {}).get("value")
                if scenario == "all" and var.get("includeAll"):
                    values[name] = _format(var, None)
                elif scenario == "all" and var.get("multi"):
                    values[name] = _format(var, opts)
                elif scenario == "all":  # Grafana keeps the saved value if it is still an option
                    values[name] = _format(var, [saved] if saved in opts else opts[:1])
                elif var.get("multi"):
                    values[name] = _format(var, sorted({opts[0], opts[-1]}) if opts else [])
                else:
                    values[name] = _format(var, opts[-1:])
            else:  # custom / constant: the current value
                cur = var.get("current", {}).get("value") or q.split(",")[0].strip()
                values[name] = cur if isinstance(cur, str) else cur[0]
            del pending[name]
            progress = True
        if not progress:
            raise ValueError(f"{dash}: circular variables {sorted(pending)}")
    return values
